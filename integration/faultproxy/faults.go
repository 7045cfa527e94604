package faultproxy

import (
	"crypto/tls"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Kind is what an S3 request does, read from its method, path and query.
type Kind string

const (
	List     Kind = "list"     // GET of the bucket (ListObjects, ListMultipartUploads)
	Head     Kind = "head"     // HEAD of an object or the bucket
	Get      Kind = "get"      // GET of an object
	Put      Kind = "put"      // PUT of a whole object
	Copy     Kind = "copy"     // PUT with x-amz-copy-source (CopyObject, UploadPartCopy)
	Part     Kind = "part"     // PUT of one part of a multipart upload
	Create   Kind = "create"   // POST ?uploads
	Complete Kind = "complete" // POST ?uploadId=
	Delete   Kind = "delete"   // DELETE of an object or an upload
)

// KindOf classifies a path-style S3 request.
func KindOf(r *http.Request) Kind {
	q := r.URL.Query()
	objectPath := strings.Count(strings.Trim(r.URL.Path, "/"), "/") > 0
	switch r.Method {
	case http.MethodHead:
		return Head
	case http.MethodGet:
		if objectPath {
			return Get
		}
		return List
	case http.MethodPut:
		switch {
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return Copy
		case q.Has("partNumber"):
			return Part
		}
		return Put
	case http.MethodPost:
		if q.Has("uploads") {
			return Create
		}
		return Complete
	case http.MethodDelete:
		return Delete
	}
	return Kind(strings.ToLower(r.Method))
}

// Action is what the proxy does to a request a rule picked.
type Action string

const (
	Reset      Action = "reset"       // cut the connection before forwarding
	Stall      Action = "stall"       // say nothing for Wait (or until the client gives up), then cut
	Status     Action = "status"      // answer Status/Code without forwarding (503 SlowDown by default)
	Truncate   Action = "truncate"    // forward, then cut the answer's body halfway
	LoseAnswer Action = "lose-answer" // forward (the server acts), then cut before the answer
	Delay      Action = "delay"       // wait Wait, then forward
)

// Rule injects Action into a share Rate (0..1) of the requests of Kinds
// (all kinds when empty), at most Max times when Max > 0.
type Rule struct {
	Kinds  []Kind
	Action Action
	Rate   float64
	Status int           // Status: the HTTP status, 503 when 0
	Code   string        // Status: the S3 error code, SlowDown when empty
	Wait   time.Duration // Stall, Delay
	Max    int
	used   int
}

func (r *Rule) matches(k Kind) bool {
	if r.Max > 0 && r.used >= r.Max {
		return false
	}
	if len(r.Kinds) == 0 {
		return true
	}
	for _, x := range r.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Faulty is a TLS-terminating reverse proxy in front of one S3 server. It
// presents the given certificate (the test CA's, for 127.0.0.1), so that a
// client keeps full TLS verification, and sees each request whole.
type Faulty struct {
	URL      string // https://127.0.0.1:port
	srv      *http.Server
	proxy    *httputil.ReverseProxy
	mu       sync.Mutex
	rng      *rand.Rand     // guarded by mu: seeded, so a run can be replayed
	rules    []*Rule        // guarded by mu
	injected map[string]int // guarded by mu: "kind action" -> count
	seen     map[Kind]int   // guarded by mu: requests per kind
	closed   chan struct{}
	hole     *blackhole
}

// NewFaulty starts a proxy to upstream (an https URL) that trusts upstream
// with upstreamTLS and serves cert.
func NewFaulty(upstream string, upstreamTLS *tls.Config, cert tls.Certificate, seed int64) (*Faulty, error) {
	up, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hole := &blackhole{}
	l := tls.NewListener(holeListener{Listener: raw, hole: hole}, &tls.Config{Certificates: []tls.Certificate{cert}})
	f := &Faulty{
		hole:     hole,
		URL:      "https://" + l.Addr().(*net.TCPAddr).String(),
		rng:      rand.New(rand.NewSource(seed)),
		injected: map[string]int{},
		seen:     map[Kind]int{},
		closed:   make(chan struct{}),
	}
	// The Host header stays the proxy's, which is what the client signed.
	f.proxy = httputil.NewSingleHostReverseProxy(up)
	f.proxy.Transport = &http.Transport{TLSClientConfig: upstreamTLS, MaxIdleConnsPerHost: 64}
	f.proxy.ErrorLog = quietLog()
	f.srv = &http.Server{Handler: f, ErrorLog: quietLog()}
	go f.srv.Serve(l)
	return f, nil
}

// SetRules replaces the rules; nil turns faults off.
func (f *Faulty) SetRules(rules ...Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = f.rules[:0]
	for i := range rules {
		r := rules[i]
		f.rules = append(f.rules, &r)
	}
}

// Injected returns how many faults were injected, per "kind action".
func (f *Faulty) Injected() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.injected {
		out[k] = v
	}
	return out
}

// Total is the number of faults injected so far.
func (f *Faulty) Total() int {
	n := 0
	for _, v := range f.Injected() {
		n += v
	}
	return n
}

// Seen returns how many requests of each kind passed through.
func (f *Faulty) Seen() map[Kind]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[Kind]int{}
	for k, v := range f.seen {
		out[k] = v
	}
	return out
}

// Close stops the proxy and cuts its connections.
func (f *Faulty) Close() {
	close(f.closed)
	f.srv.Close()
}

// pick draws the rule to apply to a request of kind k, if any.
func (f *Faulty) pick(k Kind) *Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[k]++
	for _, r := range f.rules {
		if r.matches(k) && f.rng.Float64() < r.Rate {
			r.used++
			f.injected[fmt.Sprintf("%s %s", k, r.Action)]++
			return r
		}
	}
	return nil
}

func (f *Faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rule := f.pick(KindOf(r))
	if rule == nil {
		f.proxy.ServeHTTP(w, r)
		return
	}
	switch rule.Action {
	case Reset:
		panic(http.ErrAbortHandler) // net/http closes the connection, answerless
	case Stall:
		wait := rule.Wait
		if wait == 0 {
			wait = time.Hour
		}
		select { // the stall is the fault itself
		case <-r.Context().Done():
		case <-time.After(wait):
		case <-f.closed:
		}
		panic(http.ErrAbortHandler)
	case Status:
		status, code := rule.Status, rule.Code
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		if code == "" {
			code = "SlowDown"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<Error><Code>%s</Code><Message>injected by faultproxy</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId></Error>`,
			code, r.URL.Path)
	case Truncate:
		f.proxy.ServeHTTP(&cutWriter{ResponseWriter: w}, r)
	case LoseAnswer:
		f.proxy.ServeHTTP(&cutWriter{ResponseWriter: w, atHeader: true}, r)
	case Delay:
		select {
		case <-time.After(rule.Wait):
		case <-r.Context().Done():
			return
		}
		f.proxy.ServeHTTP(w, r)
	}
}

// cutWriter passes an answer on until it decides to cut the connection:
// before the status line (atHeader) or at half the announced body.
type cutWriter struct {
	http.ResponseWriter
	atHeader bool
	left     int64 // bytes of body still allowed; set at WriteHeader
}

func (c *cutWriter) WriteHeader(status int) {
	if c.atHeader {
		panic(http.ErrAbortHandler)
	}
	var n int64
	fmt.Sscan(c.Header().Get("Content-Length"), &n)
	c.left = n / 2
	c.ResponseWriter.WriteHeader(status)
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > c.left {
		c.ResponseWriter.Write(b[:c.left])
		if fl, ok := c.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(b))
	return c.ResponseWriter.Write(b)
}

func (c *cutWriter) Flush() {
	if fl, ok := c.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
