// Package metrics counts what a mount does and exports it to Prometheus.
// The counts come from the other packages' Stats calls and from the
// store's request observer; nothing here knows FUSE or names an object.
package metrics

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// Buckets are the request latency histogram's upper bounds, in seconds:
// from a cached HEAD on loopback to a part's upload over a slow uplink.
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Requests counts the requests to the server by operation and status,
// with their latency. Safe for concurrent use.
type Requests struct {
	mu      sync.Mutex
	by      map[reqKey]*reqStat // guarded by mu
	total   atomic.Int64
	errors  atomic.Int64
	retries atomic.Int64
}

type reqKey struct{ op, status string }

type reqStat struct {
	count   uint64
	sum     float64
	buckets []uint64 // per Buckets, not cumulative
}

// Observe is the store's observer (store.Config.Observe).
func (r *Requests) Observe(q store.Request) {
	r.total.Add(1)
	if IsError(q.Status) {
		r.errors.Add(1)
	}
	if q.Retry {
		r.retries.Add(1)
	}
	status := "none"
	if q.Status != 0 {
		status = strconv.Itoa(q.Status)
	}
	secs := q.Duration.Seconds()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[reqKey]*reqStat{}
	}
	k := reqKey{q.Op, status}
	s := r.by[k]
	if s == nil {
		s = &reqStat{buckets: make([]uint64, len(Buckets))}
		r.by[k] = s
	}
	s.count++
	s.sum += secs
	for i, b := range Buckets {
		if secs <= b {
			s.buckets[i]++
			break
		}
	}
}

// IsError says whether a request's outcome counts as an error: no answer,
// or an answer that refused it. 404 (a lookup of a name that does not
// exist), 304 and 412 (a condition not met) are answers a filesystem
// expects, not errors.
func IsError(status int) bool {
	switch {
	case status == 0:
		return true
	case status == 304 || status == 404 || status == 412:
		return false
	}
	return status >= 400
}

// Totals are the requests sent, how many failed (IsError) and how many
// were retries of a request that failed.
func (r *Requests) Totals() (total, errors, retries int64) {
	return r.total.Load(), r.errors.Load(), r.retries.Load()
}

// Series is one (operation, status) pair's count and latency.
type Series struct {
	Op, Status string
	Count      uint64
	Sum        float64            // seconds
	Buckets    map[float64]uint64 // cumulative, as Prometheus wants them
}

// Series lists every pair seen, sorted.
func (r *Requests) Series() []Series {
	r.mu.Lock()
	out := make([]Series, 0, len(r.by))
	for k, s := range r.by {
		cum := make(map[float64]uint64, len(Buckets))
		var n uint64
		for i, b := range Buckets {
			n += s.buckets[i]
			cum[b] = n
		}
		out = append(out, Series{Op: k.op, Status: k.status, Count: s.count, Sum: s.sum, Buckets: cum})
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Op != out[j].Op {
			return out[i].Op < out[j].Op
		}
		return out[i].Status < out[j].Status
	})
	return out
}

// Rate estimates bytes per second over a sliding window of samples of a
// growing counter (bytes handed to uploads).
type Rate struct {
	mu      sync.Mutex
	window  time.Duration
	samples []sample // guarded by mu; oldest first
}

type sample struct {
	at time.Time
	n  int64
}

// NewRate keeps samples for window.
func NewRate(window time.Duration) *Rate { return &Rate{window: window} }

// Add records the counter's value now.
func (r *Rate) Add(at time.Time, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, sample{at, n})
	cut := 0
	for cut < len(r.samples)-2 && at.Sub(r.samples[cut].at) > r.window {
		cut++
	}
	r.samples = r.samples[cut:]
}

// PerSecond is the counter's growth per second across the window; 0 with
// fewer than two samples.
func (r *Rate) PerSecond() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) < 2 {
		return 0
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 || last.n < first.n {
		return 0
	}
	return float64(last.n-first.n) / dt
}
