package fs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// unlink deletes the object before it returns, and drops what waited to
// be uploaded under that name.
func TestUnlinkDeletesTheObjectAtOnceAndDropsWaitingData(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("f", []byte("old"), nil, ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("new, waiting"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("after unlink the bucket holds %v", keys)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("the dropped data was uploaded: %v", keys)
	}
}

// A folder's chmod and utimes are stored in its marker, written if it had
// none; the bucket root has no marker, so its attributes last the mount.
func TestFolderAttributesAreStoredInItsMarker(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("d/f", []byte("x"), nil, ourMD5) // an implicit folder: no marker
	dir, _ := rwMount(t, m, time.Hour)
	mt := time.Unix(1600000000, 0)
	if err := os.Chmod(filepath.Join(dir, "d"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "d"), mt, mt); err != nil {
		t.Fatal(err)
	}
	_, meta, ours, ok := m.Object("d/")
	if !ok || !ours || meta["mode"] != "16872" || meta["mtime"] != "1600000000.000000000" { // S_IFDIR|0750
		t.Fatalf("marker: ok=%v encrypted=%v meta=%v", ok, ours, meta)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("root after chmod: %v %v", st.Mode(), err)
	}
	if _, _, _, ok := m.Object(""); ok {
		t.Fatal("the root got a marker object")
	}
}
