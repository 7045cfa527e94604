package ns

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// statFolders stats every folder of the root as rsync's receiver does
// (each by its path, in order) and returns their attributes.
func statFolders(t *testing.T, n *Namespace) map[string]Attrs {
	t.Helper()
	out := map[string]Attrs{}
	root := n.Root() // held, as the mount's node holds it
	defer runtime.KeepAlive(root)
	for _, name := range listNames(t, root) {
		if !strings.HasSuffix(name, "/") {
			continue
		}
		a, err := n.Folder(name).Attrs(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out[name] = a
	}
	return out
}

func markerHeads(m *memstore.Store) (keys []string) {
	for _, c := range m.Calls() {
		if c.Op == "head" && strings.HasSuffix(c.Key, "/") {
			keys = append(keys, c.Key)
		}
	}
	return keys
}

// A folder's mode, owner and mtime live in its marker object. Its version
// shows in the folder's own listing, made ahead of a walk: a fresh mount
// stats the folders an earlier one learnt without a HEAD of their
// markers, and a marker changed since by another client (a chmod: same
// size and ETag, a new LastModified) is asked again and shows the change.
func TestAFreshMountStatsFoldersFromTheirKeptMarkers(t *testing.T) {
	const folders = 40
	m := memstore.New(ourMD5)
	for i := range folders {
		m.Seed(fmt.Sprintf("d%02d/", i), nil, map[string]string{"mode": "16832", "mtime": fmt.Sprint(1600000000 + i)}, ourMD5)
		m.Seed(fmt.Sprintf("d%02d/f", i), []byte("data"), nil, ourMD5)
	}
	st, dir := sameETags{m}, t.TempDir()
	mount := func() *Namespace {
		n, err := New(Options{Store: st, MetaTTL: time.Minute, Known: knownDisk(t, dir)})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n1 := mount()
	first := statFolders(t, n1)
	n1.meta.prefetching.Wait()
	if got := len(markerHeads(m)); got != folders {
		t.Fatalf("first mount: %d marker HEADs, want %d", got, folders)
	}
	n1.Close()

	m.Seed("d07/", nil, map[string]string{"mode": "16877", "mtime": "1600000007"}, ourMD5) // chmod 755
	m.ResetCalls()
	n2 := mount()
	second := statFolders(t, n2)
	n2.meta.prefetching.Wait()
	if heads := markerHeads(m); len(heads) != 1 || heads[0] != "d07/" {
		t.Fatalf("second mount: marker HEADs %v, want one, of d07/", heads)
	}
	for name, a := range first {
		b := second[name]
		switch {
		case name == "d07/":
			if b.Mode != 0o755 {
				t.Errorf("d07/ changed by another client shows mode %o", b.Mode)
			}
		case a != b || a.Mode != 0o700 || a.Mtime.Unix() < 1600000000:
			t.Errorf("%s: %+v, first mount %+v", name, b, a)
		}
	}
	n2.Close()
	if recs := knownDisk(t, dir).Load("d07/"); recs[""].Attrs.Meta["mode"] != "16877" {
		t.Fatalf("kept for d07/: %+v", recs)
	}
}
