package stage

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// copyJournal copies a journal folder as a crash would leave it: every
// file as the kernel holds it, synced or not (a killed daemon), and
// returns the copy.
func copyJournal(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		if d.Name() == "lock" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, d.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func lazyRecords(t *testing.T, dir string) []string {
	t.Helper()
	n, _ := filepath.Glob(filepath.Join(dir, "*.new"))
	return n
}

// rsyncsFile writes a temporary file, closes it, then sets its mode and
// times and renames it into place, as rsync does.
func rsyncsFile(t *testing.T, mgr *Manager, data []byte) *Entry {
	t.Helper()
	e := writeFile(t, mgr, ".file.XXXXXX", data)
	if err := e.SetAttrs(func(a *Attrs) { a.Mode = 0o600; a.Mtime = time.Unix(1600000000, 1) }); err != nil {
		t.Fatal(err)
	}
	if !mgr.Rename(e, "file") {
		t.Fatal("rename: entry gone")
	}
	return e
}

func TestMetadataChangesAfterCloseAreKeptWithoutWaitingForTheDisk(t *testing.T) {
	dir := t.TempDir()
	mgr := open(t, dir, memstore.New(ours), time.Hour)
	defer mgr.Close()
	e := writeFile(t, mgr, ".file.XXXXXX", []byte("rsync temp"))
	synced := mgr.syncs.Load()
	e.SetAttrs(func(a *Attrs) { a.Mode = 0o600; a.Mtime = time.Unix(1600000000, 1) })
	mgr.Rename(e, "file")
	if n := mgr.syncs.Load() - synced; n != 0 {
		t.Fatalf("chmod, utimes and rename of a closed file waited for the disk %d times", n)
	}
	if len(lazyRecords(t, dir)) != 1 {
		t.Fatal("no lazy record written")
	}

	// Killed now: the change is in the files the kernel holds.
	m2 := memstore.New(ours)
	after := open(t, copyJournal(t, dir), m2, time.Hour)
	if err := after.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	after.Close()
	if got := m2.Keys(); len(got) != 1 || got[0] != "file" {
		t.Fatalf("after a kill the bucket holds %v, want [file]", got)
	}
	if _, meta, _, _ := m2.Object("file"); meta["mtime"] != "1600000000.000000001" || meta["mode"] != "33152" {
		t.Fatalf("after a kill: meta %v", meta)
	}

	// The committer makes it durable: synced, in place of the record.
	mgr.commitLazy()
	if mgr.syncs.Load() == synced {
		t.Fatal("the commit synced nothing")
	}
	if n := lazyRecords(t, dir); len(n) != 0 {
		t.Fatalf("lazy records left after the commit: %v", n)
	}
	m3 := memstore.New(ours)
	again := open(t, copyJournal(t, dir), m3, time.Hour)
	defer again.Close()
	if err := again.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m3.Keys(); len(got) != 1 || got[0] != "file" {
		t.Fatalf("after the commit the bucket holds %v, want [file]", got)
	}
}

func TestALazyRecordTornByAPowerLossLeavesTheFileAsItWasClosed(t *testing.T) {
	dir := t.TempDir()
	mgr := open(t, dir, memstore.New(ours), time.Hour)
	defer mgr.Close()
	data := []byte("closed and synced before the rename")
	rsyncsFile(t, mgr, data)
	for _, tear := range []struct {
		name string
		do   func([]byte) []byte
	}{
		{"cut in half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"empty", func([]byte) []byte { return nil }},
		{"a flipped byte", func(b []byte) []byte { b[len(b)/3] ^= 1; return b }},
	} {
		t.Run(tear.name, func(t *testing.T) {
			crashed := copyJournal(t, dir)
			lazy := lazyRecords(t, crashed)
			if len(lazy) != 1 {
				t.Fatalf("lazy records %v", lazy)
			}
			b, _ := os.ReadFile(lazy[0])
			os.WriteFile(lazy[0], tear.do(b), 0o600)
			m2 := memstore.New(ours)
			var logs bytes.Buffer // the log is written while Open recovers
			after, err := Open(Config{Dir: crashed, Key: sseKey, Store: m2, Window: time.Hour, Parallel: 4, Attempts: 2,
				Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer after.Close()
			if err := after.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			got, meta, _, _ := m2.Object(".file.XXXXXX")
			if !bytes.Equal(got, data) || meta["mode"] != "33184" {
				t.Fatalf("the file as closed: %q, meta %v; bucket %v", got, meta, m2.Keys())
			}
			if !strings.Contains(logs.String(), "never reached the disk") {
				t.Fatalf("no log line:\n%s", logs.String())
			}
			if n := lazyRecords(t, crashed); len(n) != 0 {
				t.Fatalf("torn record left: %v", n)
			}
		})
	}
}

func TestAWriteAfterALazyChangeIsRecordedDurably(t *testing.T) {
	dir := t.TempDir()
	m := memstore.New(ours)
	mgr := open(t, dir, m, time.Hour)
	defer mgr.Close()
	e := rsyncsFile(t, mgr, []byte("first"))
	lazy := lazyRecords(t, dir)
	if len(lazy) != 1 {
		t.Fatalf("lazy records %v", lazy)
	}
	stale, _ := os.ReadFile(lazy[0])
	if mgr.Hold("file", true) != e {
		t.Fatal("the file's entry is gone")
	}
	if _, err := e.WriteAt(ctx, []byte("FIRST, and longer"), 0); err != nil {
		t.Fatal(err)
	}
	synced := mgr.syncs.Load()
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
	if mgr.syncs.Load() == synced {
		t.Fatal("close after a write did not sync")
	}
	if n := lazyRecords(t, dir); len(n) != 0 {
		t.Fatalf("an older lazy record left beside the durable one: %v", n)
	}
	// Stopped between the new record and the removal of the older lazy
	// one: the newer wins.
	crashed := copyJournal(t, dir)
	os.WriteFile(filepath.Join(crashed, filepath.Base(lazy[0])), stale, 0o600)
	m2 := memstore.New(ours)
	after := open(t, crashed, m2, time.Hour)
	defer after.Close()
	if err := after.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := m2.Object("file"); string(got) != "FIRST, and longer" {
		t.Fatalf("file %q, keys %v", got, m2.Keys())
	}
}
