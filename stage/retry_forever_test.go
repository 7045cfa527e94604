package stage

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// downStore is a memstore whose uploads fail as an unreachable server's
// do while down is set; puts counts them.
func downStore() (*memstore.Store, *atomic.Bool, *atomic.Int32) {
	m := memstore.New(ours)
	var down atomic.Bool
	var puts atomic.Int32
	down.Store(true)
	m.Fail = func(op, key string) error {
		if op == "put" {
			puts.Add(1)
			if down.Load() {
				return store.ErrUnavailable
			}
		}
		return nil
	}
	return m, &down, &puts
}

// waitUploaded waits for the Uploaded notice of key, at most a generous
// bound.
func waitUploaded(t *testing.T, ch <-chan string, key string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case k := <-ch:
			if k == key {
				return
			}
		case <-deadline:
			t.Fatalf("%s not uploaded within 30 s", key)
		}
	}
}

// An upload that fails on the network is retried for as long as the mount
// lives, past every attempt count, and reaches the bucket with no write,
// fsync or unmount once the server is back.
func TestANetworkFailureIsRetriedUntilTheServerIsBack(t *testing.T) {
	m, down, puts := downStore()
	uploaded := make(chan string, 16)
	mgr, err := Open(Config{Dir: t.TempDir(), Key: sseKey, Store: m, Window: 0, Parallel: 2, Attempts: 2,
		RetryCap: 20 * time.Millisecond, Uploaded: func(k string, _ store.Attrs) { uploaded <- k }})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	e, _ := mgr.OpenFile("f", nil, Attrs{Mtime: mtime}, true)
	data := bytes.Repeat([]byte("f"), 1000)
	if _, err := e.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err == nil {
		t.Fatal("close succeeded with the server down")
	}
	e.Release(true)
	for puts.Load() < 10 { // the queue keeps trying, past Attempts
		select {
		case <-time.After(30 * time.Second):
			t.Fatalf("%d tries, then none", puts.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if s := e.state(); s == stateFailed {
		t.Fatal("a network failure made the file failed")
	}
	down.Store(false)
	waitUploaded(t, uploaded, "f")
	if got, _, _, _ := m.Object("f"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes", len(got))
	}
}

// A request that succeeds again (here the stage is told so) retries the
// uploads waiting out a backoff at once, rather than when it ends.
func TestTheServerAnsweringAgainRetriesAtOnce(t *testing.T) {
	m, down, _ := downStore()
	uploaded := make(chan string, 16)
	mgr, err := Open(Config{Dir: t.TempDir(), Key: sseKey, Store: m, Window: 0, Parallel: 2, Attempts: 2,
		Uploaded: func(k string, _ store.Attrs) { uploaded <- k }})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	e, _ := mgr.OpenFile("f", nil, Attrs{Mtime: mtime}, true)
	if _, err := e.WriteAt(ctx, []byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err == nil {
		t.Fatal("close succeeded with the server down")
	}
	e.Release(true) // queued: the queue tries it, fails, and backs off
	deadline := time.After(30 * time.Second)
	for {
		e.mu.Lock()
		tried := e.attempts > 0 && e.state() == stateQueued
		if tried {
			e.due = time.Now().Add(time.Hour) // a backoff that outlasts the test
		}
		e.mu.Unlock()
		if tried {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the queue did not try the file")
		case <-time.After(10 * time.Millisecond):
		}
	}
	down.Store(false)
	mgr.Reached()
	waitUploaded(t, uploaded, "f")
}

// A drain (unmount) while the server is gone stops once no upload has
// succeeded for DrainTimeout, listing what is left; the files stay in the
// journal and the next mount uploads them.
func TestADrainWithTheServerGoneStopsAndTheNextMountUploads(t *testing.T) {
	m, down, _ := downStore()
	dir := t.TempDir()
	mgr, err := Open(Config{Dir: dir, Key: sseKey, Store: m, Window: time.Hour, Parallel: 2, Attempts: 2,
		RetryCap: 20 * time.Millisecond, DrainTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, mgr, "left", []byte("left behind"))
	err = mgr.Drain(ctx)
	if !errors.Is(err, ErrNotDrained) || !strings.Contains(err.Error(), "no upload succeeded for 300ms") || !strings.Contains(err.Error(), `"left"`) {
		t.Fatalf("drain: %v", err)
	}
	mgr.Close()
	down.Store(false)
	again := open(t, dir, m, time.Hour)
	defer again.Close()
	if err := again.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := m.Object("left"); string(got) != "left behind" {
		t.Fatalf("left: %q", got)
	}
}
