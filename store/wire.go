package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// The SSE-C headers, as they appear on requests and (all but the key) on
// answers.
const (
	hdrAlgo   = "X-Amz-Server-Side-Encryption-Customer-Algorithm"
	hdrKey    = "X-Amz-Server-Side-Encryption-Customer-Key"
	hdrKeyMD5 = "X-Amz-Server-Side-Encryption-Customer-Key-Md5"
)

// opKind tells the wire guard what a request is for. Every Store method
// marks its context; minio-go's own bookkeeping requests stay unmarked.
type opKind int

const (
	opBucket    opKind = iota + 1 // listing, bucket checks: no object data
	opData                        // touches object data: must carry the key
	opDataPlain                   // reads an object known to be plaintext
	opCopy                        // server-side copy: both sides carry the key
	opProbe                       // the link's probe: sent even while offline
)

const hdrCopyKey = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key"

type opKey struct{}

// exchange records what the last answer to a marked request said about
// SSE-C, because minio-go does not return answer headers from every call.
type exchange struct {
	mu     sync.Mutex
	status int
	algo   string
	keyMD5 string
	last   string // the last request's method and URL: the same again is a retry
}

func (x *exchange) echo() (algo, keyMD5 string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.algo, x.keyMD5
}

type opValue struct {
	kind opKind
	x    *exchange
}

// withOp marks ctx with the kind of request it will carry and returns the
// exchange where the guard records the answer's SSE-C echo.
func withOp(ctx context.Context, kind opKind) (context.Context, *exchange) {
	x := &exchange{}
	return context.WithValue(ctx, opKey{}, opValue{kind: kind, x: x}), x
}

// guard is the RoundTripper in front of every request: it refuses a data
// request that lacks the key, holds requests back while the link is
// offline (link.go), records on the link whether an answer came, records
// the echo of the answer, and traces requests without their headers (the
// key is a header).
type guard struct {
	next  http.RoundTripper
	log   *slog.Logger
	trace bool
	link  *Link
	// observe is told of every request sent (requests.go); nil: nobody.
	observe func(Request)
	bucket  string // tells an object's request from the bucket's
	// waiting are the requests sent and not yet answered, with the cancel
	// that cuts them when the clock shows a pause (wake.go).
	mu      sync.Mutex
	waiting map[*http.Request]context.CancelCauseFunc // guarded by mu
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	op, _ := req.Context().Value(opKey{}).(opValue)
	keyed := req.Header.Get(hdrKey) != "" && req.Header.Get(hdrKeyMD5) != ""
	if (op.kind == opData && !keyed) || (op.kind == opCopy && (!keyed || req.Header.Get(hdrCopyKey) == "")) {
		return nil, fmt.Errorf("%w: %s %s", ErrUnkeyed, req.Method, req.URL.Path)
	}
	if op.kind != opProbe {
		if err := g.link.admit(req.Context()); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	resp, err := g.send(req)
	if g.observe != nil {
		g.observe(describe(req, g.bucket, op.x, resp, time.Since(start)))
	}
	switch {
	case resp != nil:
		g.link.answered()
	case noAnswer(err) && !errors.Is(err, errWoke):
		// No server: refused, unreachable, or silent past the deadline.
		// A caller that gave up, or a cut at a wake-up, proves nothing.
		g.link.failed(err)
	}
	if g.trace {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		g.log.Debug("request", "method", req.Method, "path", req.URL.Path, "query", req.URL.RawQuery,
			"keyed", req.Header.Get(hdrKeyMD5) != "", "status", status,
			"ms", time.Since(start).Milliseconds(), "err", err)
	}
	if op.x != nil && resp != nil {
		op.x.mu.Lock()
		op.x.status = resp.StatusCode
		op.x.algo = resp.Header.Get(hdrAlgo)
		op.x.keyMD5 = resp.Header.Get(hdrKeyMD5)
		op.x.mu.Unlock()
	}
	return resp, err
}
