package faultproxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKindOfReadsTheS3Operation(t *testing.T) {
	for _, c := range []struct {
		method, target string
		copy           bool
		want           Kind
	}{
		{"GET", "/b?list-type=2&prefix=a/", false, List},
		{"GET", "/b/", false, List},
		{"GET", "/b/a/c", false, Get},
		{"HEAD", "/b/a", false, Head},
		{"PUT", "/b/a", false, Put},
		{"PUT", "/b/a?partNumber=3&uploadId=x", false, Part},
		{"PUT", "/b/a?partNumber=3&uploadId=x", true, Copy},
		{"PUT", "/b/a", true, Copy},
		{"POST", "/b/a?uploads", false, Create},
		{"POST", "/b/a?uploadId=x", false, Complete},
		{"DELETE", "/b/a", false, Delete},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		if c.copy {
			r.Header.Set("X-Amz-Copy-Source", "/b/z")
		}
		if got := KindOf(r); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.method, c.target, got, c.want)
		}
	}
}

// upstream is a TLS server answering every request with body, counting hits.
func upstream(t *testing.T, body []byte) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hits.Add(1)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func faulty(t *testing.T, up *httptest.Server) (*Faulty, *http.Client) {
	cert := up.TLS.Certificates[0]
	f, err := NewFaulty(up.URL, up.Client().Transport.(*http.Transport).TLSClientConfig, cert, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	c := up.Client()
	c.Transport.(*http.Transport).DisableKeepAlives = true
	return f, c
}

func TestFaultyPassesThroughWithoutRules(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 100000)
	up, hits := upstream(t, body)
	f, c := faulty(t, up)
	resp, err := c.Get(f.URL + "/b/obj")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, body) || hits.Load() != 1 {
		t.Fatalf("%d bytes, %v, %d hits", len(got), err, hits.Load())
	}
	if f.Total() != 0 || f.Seen()[Get] != 1 {
		t.Fatalf("injected %v seen %v", f.Injected(), f.Seen())
	}
}

func TestFaultyInjectsEachAction(t *testing.T) {
	body := bytes.Repeat([]byte("y"), 100000)
	for _, c := range []struct {
		rule     Rule
		hits     int32 // requests that reached the server
		wantErr  bool  // the client sees a transport error (or a short body)
		wantCode int
	}{
		{Rule{Action: Reset, Rate: 1}, 0, true, 0},
		{Rule{Action: Stall, Rate: 1, Wait: time.Millisecond}, 0, true, 0},
		{Rule{Action: Status, Rate: 1}, 0, false, 503},
		{Rule{Action: Status, Rate: 1, Status: 403, Code: "AccessDenied"}, 0, false, 403},
		{Rule{Action: Truncate, Rate: 1}, 1, true, 0},
		{Rule{Action: LoseAnswer, Rate: 1}, 1, true, 0},
		{Rule{Action: Delay, Rate: 1, Wait: time.Millisecond}, 1, false, 200},
		{Rule{Kinds: []Kind{Put}, Action: Reset, Rate: 1}, 1, false, 200}, // a GET is not a PUT
	} {
		t.Run(string(c.rule.Action), func(t *testing.T) {
			up, hits := upstream(t, body)
			f, cl := faulty(t, up)
			f.SetRules(c.rule)
			resp, err := cl.Get(f.URL + "/b/obj")
			if err == nil {
				var got []byte
				got, err = io.ReadAll(resp.Body)
				if err == nil && resp.StatusCode != c.wantCode {
					t.Errorf("status %d, want %d", resp.StatusCode, c.wantCode)
				}
				if err == nil && resp.StatusCode == 200 && !bytes.Equal(got, body) {
					t.Errorf("body of %d bytes", len(got))
				}
			}
			if (err != nil) != c.wantErr {
				t.Errorf("error %v, want one: %v", err, c.wantErr)
			}
			if hits.Load() != c.hits {
				t.Errorf("server saw %d requests, want %d", hits.Load(), c.hits)
			}
		})
	}
}

func TestFaultyMaxLimitsInjections(t *testing.T) {
	up, _ := upstream(t, []byte("ok"))
	f, c := faulty(t, up)
	f.SetRules(Rule{Action: Status, Rate: 1, Max: 2})
	var codes []string
	for i := 0; i < 4; i++ {
		resp, err := c.Get(f.URL + "/b/o")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.Status[:3])
	}
	if strings.Join(codes, ",") != "503,503,200,200" || f.Total() != 2 {
		t.Fatalf("%v, %v", codes, f.Injected())
	}
}

func TestLatencyDelaysEachWayAndKeepsTheBytes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // echo server
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	const delay = 20 * time.Millisecond
	p, err := NewLatency(l.Addr().String(), delay)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("0123456789"), 100000)
	start := time.Now()
	go func() { c.Write(msg); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%d bytes back, %v", len(got), err)
	}
	// A lower bound only: the echo cannot come back before one delay each way.
	if el := time.Since(start); el < 2*delay {
		t.Fatalf("round trip in %v, less than 2 x %v", el, delay)
	}
}

func TestBucketPassesABurstThenHoldsTheRate(t *testing.T) {
	const rate = 1 << 20 // 1 MiB/s: 64 KiB take 62.5 ms
	b := newBucket(rate, 64<<10)
	t0 := time.Now()
	ms := func(at time.Time) float64 { return float64(at.Sub(t0)) / 1e6 }
	// Idle: the first 64 KiB pass at once, the next wait their turn.
	for i, want := range []float64{0, 62.5, 125} {
		if got := ms(b.reserve(t0, 64<<10)); got != want {
			t.Fatalf("chunk %d passes at %v ms, want %v", i, got, want)
		}
	}
	// Booked until 187.5 ms: a chunk asked for at 100 ms still queues.
	if got := ms(b.reserve(t0.Add(100*time.Millisecond), 32<<10)); got != 156.25 {
		t.Fatalf("queued chunk passes at %v ms, want 156.25", got)
	}
	// After a long idle spell only one burst is saved up, not the spell.
	late := t0.Add(10 * time.Second)
	if got := b.reserve(late, 64<<10); !got.Equal(late) {
		t.Fatalf("after idle: passes %v after asking, want at once", got.Sub(late))
	}
	if got := b.reserve(late, 64<<10).Sub(late); got != 62500*time.Microsecond {
		t.Fatalf("second chunk after idle passes %v after asking, want 62.5ms", got)
	}
}

// sumServer listens on loopback; for every connection it reads what
// comes until the client half-closes, answers its SHA-256 and then send.
func sumServer(t *testing.T, send []byte) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				got, _ := io.ReadAll(c)
				sum := sha256.Sum256(got)
				c.Write(sum[:])
				c.Write(send)
			}()
		}
	}()
	return l.Addr().String()
}

// exchange sends up over a fresh connection through p, half-closes, and
// checks that the server got exactly up and that down came back whole.
func exchange(p *Link, up, down []byte) error {
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { c.Write(up); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	want := sha256.Sum256(up)
	switch {
	case len(got) < len(want) || !bytes.Equal(got[:len(want)], want[:]):
		return fmt.Errorf("the server did not get the %d bytes sent", len(up))
	case !bytes.Equal(got[len(want):], down):
		return fmt.Errorf("%d bytes came back, want %d", len(got)-len(want), len(down))
	}
	return nil
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLinkCapIsSharedByAllConnections(t *testing.T) {
	const (
		rate    = 8 << 20 // bytes per second
		perConn = 2 << 20
		conns   = 2
	)
	// 4 MiB at 8 MiB/s take 0.5 s (less one 64 KiB burst); a cap per
	// connection would take half that. The bound leaves a margin and is a
	// lower one only: a busy machine is slower, never faster. The exact
	// arithmetic is TestBucketPassesABurstThenHoldsTheRate's.
	least := time.Duration(0.8 * conns * perConn / rate * float64(time.Second))
	for _, c := range []struct {
		name string
		o    LinkOptions
	}{
		{"up", LinkOptions{Up: rate}},
		{"down", LinkOptions{Down: rate}},
		{"up with delay", LinkOptions{Up: rate, OneWay: 10 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			payload := make([][]byte, conns)
			for i := range payload {
				payload[i] = randomBytes(t, perConn)
			}
			var down []byte
			if c.o.Down > 0 {
				down = payload[0] // the server sends the same to each
			}
			p, err := NewLink(sumServer(t, down), c.o)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			start := time.Now()
			errs := make([]error, conns)
			var wg sync.WaitGroup
			for i := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if down != nil {
						errs[i] = exchange(p, []byte("get"), down)
					} else {
						errs[i] = exchange(p, payload[i], nil)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			for i, err := range errs {
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
			}
			if el < least {
				t.Fatalf("%d x %d bytes in %v through a cap of %d bytes/s shared: under %v", conns, perConn, el, rate, least)
			}
			t.Logf("%d x %d bytes in %v (%.1f MiB/s, cap %d MiB/s)", conns, perConn, el,
				float64(conns*perConn)/el.Seconds()/(1<<20), rate>>20)
		})
	}
}

func TestLinkLeavesTheOtherDirectionUncapped(t *testing.T) {
	// Up capped at 1 MiB/s; 32 MiB come down. Through the cap that would
	// take 32 s; uncapped it takes well under a second on loopback, so a
	// bound of 8 s says which without depending on the machine's speed.
	down := randomBytes(t, 32<<20)
	p, err := NewLink(sumServer(t, down), LinkOptions{Up: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	if err := exchange(p, []byte("get"), down); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Fatalf("32 MiB down in %v: the uncapped direction was slowed", el)
	}
}

// A blackhole answers nothing and resets nothing: a request times out on
// the client's own clock, a connection made before it stays dead after
// it, and a new connection then works.
func TestABlackholeDropsConnectionsSilently(t *testing.T) {
	up, hits := upstream(t, []byte("ok"))
	f, _ := faulty(t, up)
	tr := up.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = false // faulty turned them off for the other tests
	old := &http.Client{Transport: tr, Timeout: 300 * time.Millisecond}
	get := func(c *http.Client) error {
		resp, err := c.Get(f.URL + "/b/obj")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	if err := get(old); err != nil {
		t.Fatal(err) // leaves an idle connection in old's pool
	}
	f.Blackhole(true)
	fresh := &http.Client{Transport: up.Client().Transport.(*http.Transport).Clone(), Timeout: 300 * time.Millisecond}
	if err := get(fresh); err == nil || !isTimeout(err) {
		t.Fatalf("a new connection during the blackhole: %v, want a timeout", err)
	}
	f.Blackhole(false)
	// The first request after the blackhole goes on old's dead idle
	// connection; net/http sends it there and waits.
	if err := get(old); err == nil || !isTimeout(err) {
		t.Fatalf("a connection made before the blackhole: %v, want a timeout", err)
	}
	if err := get(fresh); err != nil {
		t.Fatalf("a new connection after the blackhole: %v", err)
	}
	if hits.Load() != 2 {
		t.Fatalf("%d requests reached the server, want 2", hits.Load())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
