package ns

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// The namespace's tests run on the in-memory store, as an ordinary user:
// no FUSE, no root. The same store passes the conformance suite that RGW
// and MinIO pass (store/storetest).

const ourMD5 = "ours"

// newNS builds a namespace over st; with a change it is writable, its
// journal in a temporary folder, and change may adjust its options.
func newNS(tb testing.TB, st store.Store, change func(*Options)) *Namespace {
	tb.Helper()
	o := Options{Store: st, MetaTTL: time.Minute}
	if change != nil {
		o.Journal = &stage.Config{Dir: tb.TempDir(), Key: []byte("0123456789abcdefghijklmnopqrstuv"),
			Window: time.Hour, Parallel: 2, Attempts: 2}
		change(&o)
	}
	n, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Close)
	return n
}

func writable(*Options) {}

func listNames(t *testing.T, d *Folder) []string {
	t.Helper()
	names, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		s := n.Name
		if n.Dir {
			s += "/"
		}
		out = append(out, s)
	}
	return out
}

// waitingFile writes a file into the stage, as a program's create, write
// and close would.
func waitingFile(t *testing.T, n *Namespace, key, data string) {
	t.Helper()
	e, err := n.Stage().OpenFile(key, nil, stage.Attrs{Mtime: time.Now(), Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteAt(context.Background(), []byte(data), 0); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
}

// A folder lists the bucket's objects with the files waiting for upload on
// top, and folders on the way to deeper waiting files.
func TestAFolderShowsWaitingFilesOverTheBucket(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("a", []byte("a"), nil, ourMD5)
	m.Seed("sub/x", []byte("x"), nil, ourMD5)
	n := newNS(t, m, writable)
	waitingFile(t, n, "b", "bb")
	waitingFile(t, n, "deep/er/c", "c")
	if got := listNames(t, n.Root()); !slices.Equal(got, []string{"a", "b", "deep/", "sub/"}) {
		t.Fatalf("root lists %v", got)
	}
	e, err := n.Root().Find(context.Background(), "b")
	if err != nil || e.Dir || e.Object.Size != 2 {
		t.Fatalf("find b: %+v %v", e, err)
	}
	if e, err := n.Root().Find(context.Background(), "deep"); err != nil || !e.Dir {
		t.Fatalf("find deep: %+v %v", e, err)
	}
	if _, err := n.Root().Find(context.Background(), "nothing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("find nothing: %v", err)
	}
}

// The stage's notices reach the snapshot of a loaded folder: an upload
// shows, a deleted old name goes, with no listing sent.
func TestTheStagesNoticesPatchTheLoadedFolder(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("d/old", []byte("o"), nil, ourMD5)
	n := newNS(t, m, writable)
	d := n.Folder("d/")
	listNames(t, d)
	m.ResetCalls()
	n.uploaded("d/new", store.Attrs{Size: 3, ETag: "e"})
	n.removed("d/old")
	if got := listNames(t, d); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("folder lists %v, want [new]", got)
	}
	if len(m.Calls()) != 0 {
		t.Fatalf("calls sent: %v", m.Calls())
	}
	if a, err := n.Head(context.Background(), "d/new"); err != nil || a.ETag != "e" {
		t.Fatalf("the upload's HEAD does not answer the stat: %+v %v", a, err)
	}
}

// mkdir writes an encrypted marker and the new folder is known empty: its
// first listing costs nothing.
func TestMkdirWritesAMarkerAndTheFolderIsKnownEmpty(t *testing.T) {
	m := memstore.New(ourMD5)
	n := newNS(t, m, writable)
	sub, err := n.Root().Mkdir(context.Background(), "new", 0o700, Owner{UID: 7, GID: 8})
	if err != nil {
		t.Fatal(err)
	}
	m.ResetCalls()
	if got := listNames(t, sub); len(got) != 0 || len(m.Calls()) != 0 {
		t.Fatalf("new folder lists %v with calls %v", got, m.Calls())
	}
	a, err := sub.Attrs(context.Background())
	if err != nil || a.Mode != 0o700 || !a.Owned || a.UID != 7 {
		t.Fatalf("marker attributes %+v %v", a, err)
	}
	if _, err := m.Head(context.Background(), "new/"); err != nil {
		t.Fatalf("marker: %v", err)
	}
	if _, err := n.Root().Mkdir(context.Background(), "bad\xff", 0o700, Owner{}); !errors.Is(err, ErrNotUTF8) {
		t.Fatalf("mkdir of a name that is not UTF-8: %v", err)
	}
}

// A read-only namespace refuses every change before sending anything.
func TestAReadOnlyNamespaceRefusesChanges(t *testing.T) {
	m := memstore.New(ourMD5)
	n := newNS(t, m, nil)
	ctx := context.Background()
	if _, err := n.Root().Mkdir(ctx, "d", 0o755, Owner{}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("mkdir: %v", err)
	}
	if err := n.Root().Unlink(ctx, "f"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("unlink: %v", err)
	}
	if _, _, err := n.Root().RenameDir(ctx, "a", n.Root(), "b", Owner{}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("rename: %v", err)
	}
	if len(m.Calls()) != 0 {
		t.Errorf("calls sent: %v", m.Calls())
	}
}

// rmdir of a folder with objects answers ErrNotEmpty; of an empty one,
// removes its marker.
func TestRmdirRemovesOnlyAnEmptyFolder(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("full/x", []byte("x"), nil, ourMD5)
	m.Seed("empty/", nil, nil, ourMD5)
	n := newNS(t, m, writable)
	ctx := context.Background()
	if err := n.Root().Rmdir(ctx, "full"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("rmdir full: %v", err)
	}
	if err := n.Root().Rmdir(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, n.Root()); !slices.Equal(got, []string{"full/"}) {
		t.Fatalf("root lists %v", got)
	}
}

// A folder rename moves every object, its loaded folders follow it (their
// notices reach the new prefix), and a rename into itself or past the
// limit is refused with nothing copied.
func TestAFolderRenameMovesObjectsAndLoadedFolders(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("a/x", []byte("x"), nil, ourMD5)
	m.Seed("a/s/y", []byte("y"), nil, ourMD5)
	n := newNS(t, m, func(o *Options) { o.MaxRenameObjects = 2 })
	ctx := context.Background()
	sub := n.Folder("a/s/")
	if _, _, err := n.Root().RenameDir(ctx, "a", n.Folder("a/"), "in", Owner{}); !errors.Is(err, ErrIntoSelf) {
		t.Fatalf("into itself: %v", err)
	}
	from, to, err := n.Root().RenameDir(ctx, "a", n.Root(), "b", Owner{})
	if err != nil || from != "a/" || to != "b/" {
		t.Fatalf("rename: %q %q %v", from, to, err)
	}
	if sub.Prefix() != "b/s/" || n.Folder("b/s/") != sub {
		t.Fatalf("loaded folder at %q", sub.Prefix())
	}
	var keys []string
	_ = m.List(ctx, "", store.ListOptions{Recursive: true}, func(e store.Entry) error { keys = append(keys, e.Key); return nil })
	if !slices.Equal(keys, []string{"b/s/y", "b/x"}) {
		t.Fatalf("bucket holds %v", keys)
	}
	m.Seed("b/z", []byte("z"), nil, ourMD5)
	m.ResetCalls()
	if _, _, err := n.Root().RenameDir(ctx, "b", n.Root(), "c", Owner{}); !errors.Is(err, ErrTooBig) {
		t.Fatalf("past the limit: %v", err)
	}
	for _, c := range m.Calls() {
		if c.Op != "list" {
			t.Fatalf("a refused rename sent %v", c)
		}
	}
}

// deleteHook runs a function before each delete it passes on.
type deleteHook struct {
	*memstore.Store
	before func(key string)
}

func (d deleteHook) Delete(ctx context.Context, key string) error {
	d.before(key)
	return d.Store.Delete(ctx, key)
}

// A listing the server answers just before a folder rename's delete of an
// old object (another program's ls, a listing made ahead) must not bring
// the object back under its old name: the mark of this mount's change is
// dated after the delete.
func TestAListingAnsweredBeforeAFolderRenamesDeleteIsNotFiledAfterIt(t *testing.T) {
	m := memstore.New(ourMD5)
	m.SetListMeta(true)
	m.Seed("old/x", []byte("x"), nil, ourMD5)
	var np atomic.Pointer[Namespace] // set once built, read by the hook
	hook := deleteHook{Store: m, before: func(key string) {
		if key != "old/x" {
			return
		}
		sent := time.Now()
		_ = m.List(context.Background(), "old/", store.ListOptions{Metadata: true}, func(e store.Entry) error {
			if e.Attrs != nil {
				np.Load().meta.putListed(e.Key, *e.Attrs, metadisk.VersionOf(e), sent)
			}
			return nil
		})
	}}
	n := newNS(t, hook, writable)
	np.Store(n)
	if _, _, err := n.Root().RenameDir(context.Background(), "old", n.Root(), "new", Owner{}); err != nil {
		t.Fatal(err)
	}
	if a, ok := n.meta.peek("old/x"); ok {
		t.Errorf("old/x still known after the rename: %+v", a)
	}
}

// An unlink deletes the object at once and drops what of the file waits.
func TestUnlinkDeletesAtOnceAndDropsTheWaitingFile(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("f", []byte("old"), nil, ourMD5)
	n := newNS(t, m, writable)
	waitingFile(t, n, "f", "new")
	if err := n.Root().Unlink(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}
	if n.Stage().Lookup("f") != nil {
		t.Error("the waiting file is still in the stage")
	}
	if _, err := m.Head(context.Background(), "f"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("object: %v", err)
	}
}
