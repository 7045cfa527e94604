package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// The metrics listen on loopback or a private unix socket; another
// address only when asked.
func TestListenIsLoopbackOrPrivateUnlessAsked(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		l, err := Listen(addr, false)
		if err != nil {
			if strings.Contains(err.Error(), "not a loopback") {
				t.Errorf("%s refused: %v", addr, err)
			}
			continue // no IPv6 here
		}
		l.Close()
	}
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:9101", "example.net:9101"} {
		if _, err := Listen(addr, false); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("%s: %v, want refused", addr, err)
		}
	}
	if l, err := Listen("0.0.0.0:0", true); err != nil {
		t.Errorf("--metrics-remote: %v", err)
	} else {
		l.Close()
	}
	if _, err := Listen("9101", false); err == nil || !strings.Contains(err.Error(), "want HOST:PORT") {
		t.Errorf("a bare port: %v", err)
	}
	for _, addr := range []string{"unix:" + filepath.Join(t.TempDir(), "m.sock"), filepath.Join(t.TempDir(), "m.sock")} {
		l, err := Listen(addr, false)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(strings.TrimPrefix(addr, "unix:"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", addr, st.Mode(), err)
		}
		l.Close()
	}
}

// Requests count by operation and status, errors as a filesystem sees
// them, retries, and a latency histogram whose buckets add up.
func TestRequestsAreCountedByOperationAndStatus(t *testing.T) {
	var r Requests
	r.Observe(store.Request{Op: "get", Status: 200, Duration: 3 * time.Millisecond})
	r.Observe(store.Request{Op: "get", Status: 200, Duration: 2 * time.Second})
	r.Observe(store.Request{Op: "head", Status: 404, Duration: time.Millisecond})
	r.Observe(store.Request{Op: "put", Status: 503, Duration: time.Millisecond})
	r.Observe(store.Request{Op: "put", Status: 0, Retry: true, Duration: 90 * time.Second})
	total, errs, retries := r.Totals()
	if total != 5 || errs != 2 || retries != 1 {
		t.Fatalf("totals %d %d %d, want 5 2 1", total, errs, retries)
	}
	series := r.Series()
	if len(series) != 4 {
		t.Fatalf("%d series: %+v", len(series), series)
	}
	get := series[0]
	if get.Op != "get" || get.Status != "200" || get.Count != 2 || get.Buckets[0.005] != 1 || get.Buckets[2.5] != 2 || get.Buckets[60] != 2 {
		t.Errorf("get: %+v", get)
	}
	if last := series[3]; last.Op != "put" || last.Status != "none" || last.Count != 1 || last.Buckets[60] != 0 {
		t.Errorf("a request past the last bucket: %+v", last)
	}
}

func TestRateIsTheGrowthOverTheWindow(t *testing.T) {
	r := NewRate(30 * time.Second)
	if r.PerSecond() != 0 {
		t.Fatal("a rate from nothing")
	}
	t0 := time.Unix(1000, 0)
	r.Add(t0, 0)
	r.Add(t0.Add(10*time.Second), 100)
	if got := r.PerSecond(); got != 10 {
		t.Fatalf("%v, want 10", got)
	}
	// Old samples leave the window: a stall shows as 0.
	r.Add(t0.Add(50*time.Second), 100)
	r.Add(t0.Add(60*time.Second), 100)
	if got := r.PerSecond(); got != 0 {
		t.Fatalf("after a stall: %v, want 0", got)
	}
}
