package stage

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// openWriter opens key for writing and writes data, keeping the handle.
func openWriter(t *testing.T, mgr *Manager, key string, base *Base, data []byte) *Entry {
	t.Helper()
	e, err := mgr.OpenFile(key, base, Attrs{Mtime: mtime, Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	return e
}

func objectIs(t *testing.T, m *memstore.Store, key, want string) {
	t.Helper()
	if got, _, _, ok := m.Object(key); !ok || string(got) != want {
		t.Errorf("%s holds %q (exists: %v), want %q", key, got, ok, want)
	}
}

// An editor's save within the write-back window: the file is renamed away
// (X -> X~) and a new X written. The renamed file's upload deletes its old
// name, X, which by then may be the new file's: whichever upload comes
// first, X must end as the new file and X~ as the old one.
func TestANameTakenAgainAfterARenameSurvivesTheRenamedFilesUpload(t *testing.T) {
	for _, newFirst := range []bool{true, false} {
		m := memstore.New(ours)
		mgr := open(t, t.TempDir(), m, time.Hour)
		old := openWriter(t, mgr, "X", nil, []byte("v1"))
		if err := old.Sync(ctx); err != nil { // X = v1 in the bucket, the file still open
			t.Fatal(err)
		}
		if _, err := old.WriteAt(ctx, []byte("v2"), 0); err != nil {
			t.Fatal(err)
		}
		mgr.Rename(old, "X~")
		fresh := openWriter(t, mgr, "X", nil, []byte("v3"))
		first, second := old, fresh
		if newFirst {
			first, second = fresh, old
		}
		for _, e := range []*Entry{first, second} {
			if err := e.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		objectIs(t, m, "X", "v3")
		objectIs(t, m, "X~", "v2")
		old.Release(true)
		fresh.Release(true)
		if err := mgr.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		objectIs(t, m, "X", "v3")
		mgr.Close()
	}
}

// The new file under the old name is deleted before it is uploaded: the
// renamed file's upload still deletes the old name, which nothing holds.
func TestAnOldNameTakenAndFreedAgainIsDeleted(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, time.Hour)
	defer mgr.Close()
	old := openWriter(t, mgr, "X", nil, []byte("v1"))
	if err := old.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	mgr.Rename(old, "X~")
	fresh := openWriter(t, mgr, "X", nil, []byte("v3"))
	mgr.Drop(fresh)
	fresh.Release(true)
	old.Release(true)
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := m.Object("X"); ok {
		t.Error("X is still in the bucket: nothing holds that name any more")
	}
	objectIs(t, m, "X~", "v1")
}

// A big file streamed under its first name and renamed while being
// written: its stream would complete under the first name, then copy and
// delete it. If a newer file took the first name meanwhile, the stream
// gives way: the file is uploaded under its new name, the newer file stays.
func TestAStreamSparesItsFirstNameWhenANewerFileTookIt(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, time.Hour)
	defer mgr.Close()
	data := bytes.Repeat([]byte("streamed"), 3*streamStart/8)
	big := openWriter(t, mgr, "A", nil, data)
	if big.stream == nil {
		t.Fatal("no stream began")
	}
	mgr.Rename(big, "B")
	fresh := openWriter(t, mgr, "A", nil, []byte("newer"))
	if err := fresh.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := big.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	objectIs(t, m, "A", "newer")
	if got, _, _, ok := m.Object("B"); !ok || !bytes.Equal(got, data) {
		t.Errorf("B: %d bytes (exists: %v), want the %d written", len(got), ok, len(data))
	}
	big.Release(true)
	fresh.Release(true)
}

// deleteThenRead runs after once each delete is done.
type deleteThenRead struct {
	*memstore.Store
	after func()
}

func (d deleteThenRead) Delete(c context.Context, key string) error {
	err := d.Store.Delete(c, key)
	d.after()
	return err
}

// A renamed file's upload deletes its old name, the object its unchanged
// bytes were read from: from then on they must come from the uploaded
// object. A read right after the delete (a program reading the open file)
// asked for the deleted base: 404, and EIO.
func TestARenamedFileReadsFromItsUploadOnceItsOldNameIsDeleted(t *testing.T) {
	m := memstore.New(ours)
	data := bytes.Repeat([]byte("0123456789"), 20_000) // chunks past the first come from the base
	m.Seed("A", data, nil, ours)
	a, err := m.Head(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	var e *Entry
	var got []byte
	var readErr error
	st := deleteThenRead{Store: m, after: func() {
		buf := make([]byte, len(data))
		n, err := e.ReadAt(ctx, buf, 0)
		got, readErr = buf[:n], err
	}}
	mgr, err := Open(Config{Dir: t.TempDir(), Key: sseKey, Store: st, Window: time.Hour, Parallel: 4, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	e = openWriter(t, mgr, "A", &Base{Key: "A", ETag: a.ETag, Size: a.Size}, []byte("x"))
	mgr.Rename(e, "B")
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := "x" + string(data[1:])
	if readErr != nil || string(got) != want {
		t.Fatalf("read after the old name's delete: %d bytes, %v", len(got), readErr)
	}
	objectIs(t, m, "B", want)
	e.Release(true)
}
