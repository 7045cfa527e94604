package fs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// A folder whose files' attributes the mount already holds (here: fetched
// by the namespace before any program looked; in a nightly walk: kept by
// the last mount) is stat'ed whole by `ls -l` with no lookup per file: the
// attributes came with the listing (readdirplus). A folder whose files are
// unknown lists without a HEAD (find), and a stat then looks its file up.
func TestKnownAttributesComeWithTheListing(t *testing.T) {
	m := memstore.New(ourMD5)
	for _, d := range []string{"known", "unknown"} {
		for i := range 20 {
			m.Seed(fmt.Sprintf("%s/f%02d", d, i), []byte(fmt.Sprint("data ", i)),
				map[string]string{"mtime": fmt.Sprint(1500000000+i, ".25"), "mode": "0600"}, ourMD5)
		}
	}
	for _, sub := range []string{"a", "b", "c", "d"} {
		m.Seed("tree/"+sub+"/", nil, map[string]string{"mode": "0700"}, "")
		m.Seed("tree/"+sub+"/x", []byte("x"), nil, ourMD5)
	}
	dir, f, logs := testMountLog(t, m, "", time.Minute, MountOptions{FsName: "ssecfs:test", Debug: true})
	ctx := context.Background()
	known := f.ns.Folder("known/")
	if _, err := known.List(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := known.ObjectAttrs(ctx, fmt.Sprintf("known/f%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	lookups := func() int { return strings.Count(logs.String(), ": LOOKUP ") }
	heads := func(prefix string) (n int) {
		for _, c := range m.Calls() {
			if c.Op == "head" && strings.HasPrefix(c.Key, prefix) {
				n++
			}
		}
		return n
	}
	statAll := func(d string) {
		t.Helper()
		for i := range 20 {
			st, err := os.Lstat(filepath.Join(dir, d, fmt.Sprintf("f%02d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Unix(int64(1500000000+i), 25e7); !st.ModTime().Equal(want) || st.Mode().Perm() != 0o600 {
				t.Errorf("%s/f%02d: mtime %v mode %v, want %v and 0600", d, i, st.ModTime(), st.Mode(), want)
			}
		}
	}

	names(t, filepath.Join(dir, "known"))
	before := lookups()
	statAll("known")
	if n := lookups() - before; n != 0 {
		t.Errorf("ls -l of a folder of known files: %d lookups, want 0", n)
	}

	if _, err := os.Stat(filepath.Join(dir, "unknown")); err != nil {
		t.Fatal(err)
	}
	h := heads("unknown/f")
	names(t, filepath.Join(dir, "unknown"))
	if n := heads("unknown/f") - h; n != 0 {
		t.Errorf("listing a folder of unknown files: %d HEADs, want 0", n)
	}
	before = lookups()
	statAll("unknown")
	if n := lookups() - before; n != 20 {
		t.Errorf("stat of 20 unknown files: %d lookups, want 20", n)
	}

	// A folder of folders, one of which is known: reading it names them
	// all and starts no HEAD of the others' markers (find would not).
	if _, err := f.ns.Folder("tree/a/").Attrs(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tree")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(t, filepath.Join(dir, "tree")), " "); got != "a/ b/ c/ d/" {
		t.Fatalf("tree: %s", got)
	}
	if n := heads("tree/") - 2; n != 0 { // tree/a/ asked above, tree/ by the stat
		t.Errorf("reading a folder of folders, one known: %d HEADs, want 0", n)
	}
}
