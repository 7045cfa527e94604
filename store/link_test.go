package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Offline with a silent server, every request waits for one shared probe
// and fails with ErrOffline (also ErrUnavailable) without being sent; a
// failed probe stands for the next requests; once a probe is answered the
// link is online and requests go. With a server that refuses at once,
// requests go as usual (their retries ride over a restart).
func TestOfflineRequestsShareOneProbeAndFailWithoutBeingSent(t *testing.T) {
	var probes atomic.Int32
	var up atomic.Bool
	silent := context.DeadlineExceeded
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	var l *Link
	l = newLink(slog.New(slog.DiscardHandler), time.Second, func(ctx context.Context) error {
		probes.Add(1)
		if up.Load() {
			l.answered()
			return nil
		}
		l.failed(silent)
		return silent
	})
	if err := l.admit(context.Background()); err != nil {
		t.Fatalf("online link refused a request: %v", err)
	}
	l.failed(refused)
	if since, _ := l.Offline(); since.IsZero() {
		t.Fatal("a refused connection did not take the link offline")
	}
	if err := l.admit(context.Background()); err != nil || probes.Load() != 0 {
		t.Fatalf("a server that refuses at once: request held (%v, %d probes)", err, probes.Load())
	}
	l.failed(silent)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.admit(context.Background()) }()
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, ErrOffline) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("offline request: %v, want ErrOffline", err)
		}
	}
	if err := l.admit(context.Background()); !errors.Is(err, ErrOffline) {
		t.Fatalf("request right after a failed probe: %v", err)
	}
	if n := probes.Load(); n != 1 {
		t.Fatalf("%d probes for 21 requests within the probe's standing, want 1", n)
	}
	up.Store(true)
	l.mu.Lock()
	l.probeValid = 0 // the failed probe's standing has passed
	l.mu.Unlock()
	if err := l.admit(context.Background()); err != nil {
		t.Fatalf("request once the server answers a probe: %v", err)
	}
	if since, _ := l.Offline(); !since.IsZero() || probes.Load() != 2 {
		t.Fatalf("after an answered probe: offline since %v, %d probes", since, probes.Load())
	}
}

// Through a real S3 client: a server that stops answering (its requests
// wait past --timeout) takes the link offline; the next call fails at once
// with the reason, without reaching the server; once a probe is answered,
// calls go again.
func TestASilentServerIsOfflineUntilItAnswers(t *testing.T) {
	var answer atomic.Bool
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if !answer.Load() {
			<-r.Context().Done() // silent: the client gives up
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	s, list := lister(t, srv.URL, 200*time.Millisecond)
	if err := list(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("listing with the server silent: %v", err)
	}
	if since, _ := s.Link().Offline(); since.IsZero() {
		t.Fatal("the link is not offline")
	}
	before := seen.Load()
	start := time.Now()
	err := list()
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("listing while offline: %v, want ErrOffline", err)
	}
	t.Logf("offline listing failed after %v: %v", time.Since(start), err)
	if n := seen.Load() - before; n != 1 {
		t.Fatalf("%d requests reached the server for an offline listing, want the probe alone", n)
	}
	answer.Store(true)
	if err := list(); !errors.Is(err, ErrOffline) || seen.Load()-before != 1 {
		t.Fatalf("listing within the failed probe's standing: %v, %d requests", err, seen.Load()-before)
	}
	s.link.mu.Lock()
	s.link.probeValid = 0
	s.link.mu.Unlock()
	if err := list(); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("listing once the server answers: %v, want its 404", err)
	}
	if since, _ := s.Link().Offline(); !since.IsZero() {
		t.Fatal("the link stays offline although the server answered")
	}
}

// A server that refuses connections is offline too (status, and listings
// answered from what the mount knew), but requests still go: each fails
// within its retries, and one that outlasts a restart succeeds.
func TestARefusedServerIsOfflineButRequestsStillGo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connections are refused
	s, list := lister(t, "http://"+addr, time.Second)
	if err := list(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("listing with the server gone: %v", err)
	}
	if since, _ := s.Link().Offline(); since.IsZero() {
		t.Fatal("the link is not offline")
	}
	if err := list(); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOffline) {
		t.Fatalf("second listing: %v, want it sent and refused", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	if srv.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	srv.Start()
	defer srv.Close()
	if err := list(); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("listing once the server is back: %v, want its 404", err)
	}
	if since, _ := s.Link().Offline(); !since.IsZero() {
		t.Fatal("the link stays offline although the server answered")
	}
}

// A request waiting for its answer when the clock shows a pause (a
// suspend) is cut and sent again at once on a new connection, not left to
// wait for --timeout on a connection the pause killed; the link stays
// online.
func TestAWakeUpResendsTheRequestsWaitingForAnAnswer(t *testing.T) {
	arrived := make(chan struct{}, 1)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			arrived <- struct{}{}
			<-r.Context().Done() // a dead connection: no answer, ever
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	s, err := New(Config{Bucket: "bucket", Endpoint: srv.URL, AllowHTTP: true, Region: "r", Timeout: time.Hour, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.List(context.Background(), "", ListOptions{Limit: 1}, func(Entry) error { return nil })
	}()
	<-arrived
	s.guard.wake(20*time.Second, s.transport)
	if err := <-done; !errors.Is(err, ErrNoBucket) {
		t.Fatalf("listing across the wake-up: %v, want the second attempt's 404", err)
	}
	if n.Load() != 2 {
		t.Fatalf("%d requests, want 2", n.Load())
	}
	if since, _ := s.Link().Offline(); !since.IsZero() {
		t.Fatal("a wake-up took the link offline")
	}
}

// Only a missing server takes the link offline: a connection refused or a
// silence past the deadline; not a connection cut after it was made, nor a
// caller giving up.
func TestOnlyAMissingServerIsNoAnswer(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{context.DeadlineExceeded, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, false},
		{io.ErrUnexpectedEOF, false},
		{context.Canceled, false},
	} {
		if got := noAnswer(c.err); got != c.want {
			t.Errorf("noAnswer(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// The clock's watch ends with the S3 it serves: nothing it holds refers
// back to the S3.
func TestTheClockWatchEndsWithItsStore(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		if _, err := New(Config{Bucket: "bucket", Endpoint: "https://127.0.0.1:1", Region: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; runtime.NumGoroutine() > before+2; i++ {
		if i == 10000 {
			t.Fatalf("%d goroutines left after 20 stores were dropped (%d before)", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		runtime.Gosched() // the cleanups run in their own goroutine
	}
}

// lister is an S3 client of endpoint (plain HTTP on loopback) and a
// one-key listing through it.
func lister(t *testing.T, endpoint string, timeout time.Duration) (*S3, func() error) {
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	s, err := New(Config{Bucket: "bucket", Endpoint: endpoint, AllowHTTP: true, Region: "r",
		Timeout: timeout, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s, func() error {
		return s.List(context.Background(), "", ListOptions{Limit: 1}, func(Entry) error { return nil })
	}
}
