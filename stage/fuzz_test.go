package stage

import (
	"context"
	"encoding/json"
	"os"
	"testing"

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
		if e.size < 0 || e.freedBelow > e.size || e.key == "" || int64(len(e.present)) > e.size/chunkSize/64+1 {
			t.Fatalf("loaded out of bounds: size %d freed %d key %q present %d", e.size, e.freedBelow, e.key, len(e.present))
		}
		buf := make([]byte, min(e.size, 2*chunkSize))
		_, _ = e.ReadAt(context.Background(), buf, 0)
	})
}
