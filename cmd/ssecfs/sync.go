package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ssecfs/ssecfs/stage"
)

const syncUsage = `Usage: ssecfs sync MOUNTPOINT [PATH]

Uploads now every file of the mount waiting for upload (under PATH, a file
or folder inside the mount, if given), without waiting for the write-back
window and without unmounting, and returns once they are in the bucket.
Files still open for writing are uploaded as written so far (and again
after their close). The kernel does not pass sync(1) on to the mount: a
backup script runs this after its backup.

Exit status: 0 all uploaded; 1 some files could not be uploaded (listed;
they stay in the journal, and the next sync, fsync or unmount tries them
again); 2 usage, or no mount there.
`

// runSync asks the daemon of MOUNTPOINT to upload what waits now.
func runSync(args []string) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Print(syncUsage)
		return 0
	}
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprint(os.Stderr, "ssecfs sync: expected MOUNTPOINT [PATH]\n\n"+syncUsage)
		return 2
	}
	mp, err := filepath.Abs(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs sync:", err)
		return 2
	}
	rel := "."
	if len(args) == 2 {
		p, err := filepath.Abs(args[1])
		if err == nil {
			rel, err = filepath.Rel(mp, p)
		}
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			fmt.Fprintf(os.Stderr, "ssecfs sync: %s is not inside the mount %s\n", args[1], mp)
			return 2
		}
	}
	r, err := send(mp, request{Op: "sync", Path: rel}, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs sync:", noDaemon(mp))
		return 2
	}
	if r.Error != "" {
		fmt.Fprintf(os.Stderr, "ssecfs sync: %s: %s\n", mp, r.Error)
		return 2
	}
	fmt.Printf("%s uploaded (%d bytes)\n", plural(r.Synced, "file"), r.SyncedBytes)
	if len(r.Pending) == 0 {
		return 0
	}
	fmt.Fprintf(os.Stderr, "ssecfs sync: %s could not be uploaded; they stay in the journal, and the next sync, fsync or unmount tries them again:\n", plural(len(r.Pending), "file"))
	for _, p := range r.Pending {
		fmt.Fprintf(os.Stderr, "  %s  %d bytes  FAILED: %s\n", p.Key, p.Size, p.Failed)
	}
	return 1
}

// syncUnder is the daemon's side: rel is a path inside the mount, "."
// for all of it. A file's own key and everything under the folder of that
// name are both covered: the path may be either.
func syncUnder(mgr *stage.Manager, prefix, rel string) reply {
	r := reply{OK: true}
	if mgr == nil {
		return r // a read-only mount has nothing waiting
	}
	sel := stage.Selection{Open: true}
	if rel == "." {
		sel.Name = stage.KeysUnder(prefix)
	} else {
		key := prefix + filepath.ToSlash(filepath.Clean(rel))
		under := stage.KeysUnder(key + "/")
		sel.Name = func(k string) bool { return k == key || under(k) }
	}
	sel.OldName = sel.Name
	res := mgr.Sync(context.Background(), sel)
	r.Synced, r.SyncedBytes = res.Synced, res.Bytes
	for _, f := range res.Failed {
		r.Pending = append(r.Pending, pendingFile{Key: f.Key, Size: f.Size, Failed: f.Failed})
	}
	r.OK = len(res.Failed) == 0
	return r
}

// plural is "1 file", "2 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
