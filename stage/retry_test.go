package stage

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// close(2) with no write-back window and fsync(2) give an upload that
// failed on the network (the store's own retries spent) two more tries
// before they report it: the program cannot retry a close.
func TestCloseAndFsyncTryANetworkFailureTwiceMore(t *testing.T) {
	for _, tc := range []struct {
		failures int32
		ok       bool
	}{{2, true}, {3, false}} {
		m := memstore.New(ours)
		var left atomic.Int32
		left.Store(tc.failures)
		m.Fail = func(op, key string) error {
			if op == "put" && left.Add(-1) >= 0 {
				return store.ErrUnavailable
			}
			return nil
		}
		mgr := open(t, t.TempDir(), m, 0)
		e, err := mgr.OpenFile("f", nil, Attrs{Mtime: mtime, Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.WriteAt(ctx, []byte("data"), 0); err != nil {
			t.Fatal(err)
		}
		err = e.Flush(ctx) // window 0: close uploads (Sync)
		puts := 0
		for _, c := range m.Calls() {
			if c.Op == "put" {
				puts++
			}
		}
		// Counted before the release: a file still not uploaded is queued
		// then, and the queue's own tries begin.
		e.Release(true)
		if tc.ok && (err != nil || puts != 3) {
			t.Errorf("%d failures: close %v after %d PUTs, want success on the third", tc.failures, err, puts)
		}
		if !tc.ok && (!errors.Is(err, store.ErrUnavailable) || puts != 3) {
			t.Errorf("%d failures: close %v after %d PUTs, want the failure after three", tc.failures, err, puts)
		}
		mgr.Close()
	}
}
