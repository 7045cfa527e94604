package stage

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// FuzzJournalRecord: whatever a journal record holds once opened (a bug,
// another version), loading it and reading the file it describes fails
// cleanly or gives an entry within its own bounds; nothing panics or
// allocates what the record claims.
func FuzzJournalRecord(f *testing.F) {
	good, _ := json.Marshal(record{Key: "a/b", Size: 100000, Mtime: 1, Mode: 0o644,
		Base: &Base{Key: "a/b", ETag: "e", Size: 70000}, BaseLimit: 70000, Present: []uint64{1},
		DeleteAfter: []string{"a/c"}})
	streamed, _ := json.Marshal(record{Key: "big", Size: 1 << 30, FreedBelow: 1 << 24,
		Stream: &streamRecord{Key: "big", ID: "u", Parts: []store.Part{{Number: 1, ETag: "x"}}}})
	for _, s := range []string{string(good), string(streamed), `{}`, `{"key":"k","size":-1}`,
		`{"key":"k","size":10,"present":[1,2,3,4]}`, `{"key":"k","size":10,"freed_below":11}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	seal, err := newSealer(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	m := &Manager{dir: dir, seal: seal, st: memstore.New("ours")}
	f.Fuzz(func(t *testing.T, plain []byte) {
		const id = "fuzz"
		if err := os.WriteFile(m.recPath(id), seal.seal(nil, plain, []byte("record:"+id)), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(m.dataPath(id))
		e, _, err := m.load(id)
		if err != nil {
			return
		}
		defer e.f.Close()
		if e.size < 0 || e.freedBelow > e.size || e.key == "" || chunkPast(e.present, (e.size+chunkSize-1)/chunkSize) {
			t.Fatalf("loaded out of bounds: size %d freed %d key %q present %d", e.size, e.freedBelow, e.key, len(e.present))
		}
		buf := make([]byte, min(e.size, 2*chunkSize))
		_, _ = e.ReadAt(context.Background(), buf, 0)
	})
}

// A file written long and truncated short keeps a long chunk bitmap (its
// bits cleared): its record must still load after a crash.
func TestATruncatedFileSurvivesACrash(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	mgr := open(t, dir, m, time.Hour)
	e, err := mgr.OpenFile("f", nil, Attrs{Mtime: mtime, Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteAt(ctx, make([]byte, 200*chunkSize), 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Truncate(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
	mgr.Close() // as if killed
	mgr = open(t, dir, m, time.Hour)
	defer mgr.Close()
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if data, _, _, ok := m.Object("f"); !ok || len(data) != 5 {
		t.Fatalf("after the restart f holds %d bytes (ok %v), want 5", len(data), ok)
	}
}
