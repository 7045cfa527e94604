package faultproxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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
