package fs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// afterAKill opens a copy of a mount's journal as a killed daemon leaves
// it (every file as the kernel holds it), uploads what it holds into a new
// bucket and returns that bucket.
func afterAKill(t *testing.T, journal string) *memstore.Store {
	t.Helper()
	crashed := t.TempDir()
	ents, err := os.ReadDir(journal)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		if d.Name() == "lock" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(journal, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(crashed, d.Name()), b, 0o600)
	}
	m := memstore.New(ourMD5)
	mgr, err := stage.Open(stage.Config{Dir: crashed, Key: []byte("0123456789abcdefghijklmnopqrstuv"), Store: m, Window: time.Hour, Parallel: 2, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestChangesToAClosedFileByPathAreInTheJournal(t *testing.T) {
	journal := t.TempDir()
	dir, _, _ := rwMountJournal(t, memstore.New(ourMD5), time.Hour, time.Minute, journal)
	data := bytes.Repeat([]byte("0123456789"), 20000)
	if err := os.WriteFile(filepath.Join(dir, ".big.tmp"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, ".big.tmp"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, ".big.tmp"), filepath.Join(dir, "big")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "big"), 70000); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(journal)
	for _, d := range ents {
		i, _ := d.Info()
		t.Log(d.Name(), i.Size())
	}
	m := afterAKill(t, journal)
	got, meta, _, _ := m.Object("big")
	if !bytes.Equal(got, data[:70000]) || meta["mode"] != "33188" {
		t.Fatalf("after a kill: %d bytes, meta %v, bucket %v", len(got), meta, m.Keys())
	}
}
