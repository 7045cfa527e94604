package fs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// appendAndClose appends to a file of the mount, making it wait for upload
// with the object as its base.
func appendAndClose(t *testing.T, p, more string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(more); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func fsyncPath(t *testing.T, p string) error {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Sync()
}

func holds(m *memstore.Store, key, want string) bool {
	data, _, _, ok := m.Object(key)
	return ok && string(data) == want
}

// A folder's fsync (borg's sync_dir, restic's) uploads what waits directly
// in it: new and changed files, a file renamed in, the old name of a file
// renamed out. Not deeper, and not a file still open for writing.
func TestFolderFsyncUploadsWhatWaitsDirectlyInIt(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("d/x", []byte("x"), nil, ourMD5)
	m.Seed("e/y", []byte("y"), nil, ourMD5)
	dir, _ := rwMount(t, m, time.Hour)
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(p("d/new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p("d/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("d/sub/deep"), []byte("deep"), 0o644); err != nil {
		t.Fatal(err)
	}
	appendAndClose(t, p("d/x"), "+x")
	if err := os.Rename(p("d/x"), p("e/x")); err != nil { // out of d
		t.Fatal(err)
	}
	appendAndClose(t, p("e/y"), "+y")
	if err := os.Rename(p("e/y"), p("d/y")); err != nil { // into d
		t.Fatal(err)
	}
	open, err := os.Create(p("d/open"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	open.WriteString("half")

	if err := fsyncPath(t, p("d")); err != nil {
		t.Fatalf("fsync of the folder: %v", err)
	}
	for key, want := range map[string]string{"d/new": "new", "e/x": "x+x", "d/y": "y+y"} {
		if !holds(m, key, want) {
			t.Errorf("%s is not in the bucket as %q after the folder's fsync", key, want)
		}
	}
	keys := m.Keys()
	for _, gone := range []string{"d/x", "e/y"} {
		if slices.Contains(keys, gone) {
			t.Errorf("the old name %s is still in the bucket", gone)
		}
	}
	for _, waits := range []string{"d/sub/deep", "d/open"} {
		if slices.Contains(keys, waits) {
			t.Errorf("%s was uploaded by the fsync of its parent's parent or while open", waits)
		}
	}
}

// git writes its pack files in a temporary folder, renames them out and
// removes the folder. Files renamed out while waiting read their bytes
// from their old objects: rmdir must not find those and say ENOTEMPTY.
func TestRmdirOfAFolderWhoseWaitingFilesWereRenamedOut(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("tmp/pack", bytes.Repeat([]byte("p"), 100000), nil, ourMD5)
	m.Seed("packs/", nil, nil, ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	appendAndClose(t, filepath.Join(dir, "tmp/pack"), "+tail")
	if err := os.Rename(filepath.Join(dir, "tmp/pack"), filepath.Join(dir, "packs/pack")); err != nil {
		t.Fatal(err)
	}
	if got := names(t, filepath.Join(dir, "tmp")); len(got) != 0 {
		t.Fatalf("tmp shows %v", got)
	}
	if err := os.Remove(filepath.Join(dir, "tmp")); err != nil {
		t.Fatalf("rmdir of the emptied folder: %v", err)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := string(bytes.Repeat([]byte("p"), 100000)) + "+tail"
	if !holds(m, "packs/pack", want) {
		t.Fatal("the renamed file is not in the bucket whole")
	}
	if keys := m.Keys(); !slices.Equal(keys, []string{"packs/", "packs/pack"}) {
		t.Fatalf("bucket holds %v", keys)
	}
}

// A folder renamed after a waiting file was renamed out of it must not
// carry that file's old object along (nor delete it under the file, whose
// upload then failed on a missing base).
func TestFolderRenameLeavesFilesRenamedOutOfItAlone(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("a/f", []byte("f"), nil, ourMD5)
	m.Seed("a/g", []byte("g"), nil, ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	appendAndClose(t, filepath.Join(dir, "a/f"), "+f")
	if err := os.Rename(filepath.Join(dir, "a/f"), filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := m.Keys(); !slices.Equal(keys, []string{"b/g", "f"}) {
		t.Fatalf("bucket holds %v, want [b/g f]", keys)
	}
	if !holds(m, "f", "f+f") {
		t.Fatal("the file renamed out is not in the bucket as written")
	}
}

// The kernel passes sync(1) and syncfs(2) to no FUSE daemon but
// virtiofs's (fuse_sync_fs returns early): a file in the write-back window
// stays there. `ssecfs sync` is the command for it.
func TestSyncfsDoesNotReachTheMount(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		t.Fatalf("syncfs: %v", err)
	}
	unix.Sync()
	if len(mgr.Pending()) != 1 || len(m.Keys()) != 0 {
		t.Fatalf("syncfs reached the daemon on this kernel: pending %v, bucket %v; docs/SEMANTICS.md says it does not", mgr.Pending(), m.Keys())
	}
}
