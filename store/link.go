package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOffline is a request refused without being sent: the server could not
// be reached a moment ago and a probe just now got no answer either. It
// is also ErrUnavailable: the callers that retry network failures (the
// stage's uploads) retry it.
var ErrOffline = fmt.Errorf("%w: offline", ErrUnavailable)

// Link is what the mount knows of its connection to the server. It is
// offline from the first request that got no answer at all (no
// connection, or a server silent past its deadline: noAnswer) until any
// answer arrives: an answer of any status counts, a 403 or a 503 comes
// from a server that can be reached. A connection reset or cut after it
// was made is not the server gone: such requests are retried as before.
//
// Offline, what a request costs depends on how the server is gone:
//   - refused or unreachable (a server restarting or stopped, a network
//     down): every attempt fails at once, so a request goes as usual and
//     fails within its retries, seconds; a server that restarts in that
//     time is ridden over, as before;
//   - silent (packets dropped: a dead route, a captive Wi-Fi, a host
//     gone), where each attempt would wait --timeout: a request first
//     waits for a probe (a HEAD of the bucket with a deadline of at most
//     5 s, shared by every request that asks meanwhile); if the probe gets
//     no answer the request fails at once with ErrOffline, instead of
//     spending --timeout on each of its --retries. A failed probe stands
//     for probeValid (5 s): requests within that time fail without another.
//
// So while the server is gone every call fails within seconds, and the
// first one after it is back goes through.
type Link struct {
	down atomic.Bool // the fast path: most requests find the link up
	log  *slog.Logger
	// probe sends one cheap request with the probe's deadline.
	probe        func(context.Context) error
	probeTimeout time.Duration
	probeValid   time.Duration // how long a failed probe stands for every request

	mu       sync.Mutex
	since    time.Time     // start of the outage; zero while online
	lastErr  error         // the last failure that kept it offline
	silent   bool          // that failure waited for its deadline: requests wait for a probe
	probedAt time.Time     // when the last failed probe ended
	probing  chan struct{} // closed when the probe in flight ends; nil if none
}

func newLink(log *slog.Logger, probeTimeout time.Duration, probe func(context.Context) error) *Link {
	return &Link{log: log, probeTimeout: probeTimeout, probeValid: 5 * time.Second, probe: probe}
}

// Offline says since when the server cannot be reached and the last
// failure; a zero time while it can.
func (l *Link) Offline() (time.Time, error) {
	if l == nil || !l.down.Load() {
		return time.Time{}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.since, l.lastErr
}

// failed records a request that got no answer.
func (l *Link) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr, l.silent = err, timedOut(err)
	if l.since.IsZero() {
		l.since = time.Now()
		l.down.Store(true)
		l.log.Warn("server unreachable: offline; requests fail within seconds until it answers", "err", err)
	}
}

// answered records an answer: the server can be reached.
func (l *Link) answered() {
	if !l.down.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.since.IsZero() {
		l.log.Info("server answers again: online", "offline_for", time.Since(l.since).Round(time.Second).String())
	}
	l.since, l.lastErr, l.silent, l.probedAt = time.Time{}, nil, false, time.Time{}
	l.down.Store(false)
}

// admit lets a request go while online, or offline with a server that
// refuses; with a silent one, once a probe got an answer. Otherwise it
// returns the offline error, without sending.
func (l *Link) admit(ctx context.Context) error {
	if !l.down.Load() {
		return nil
	}
	l.mu.Lock()
	if l.since.IsZero() || !l.silent {
		l.mu.Unlock()
		return nil
	}
	if time.Since(l.probedAt) < l.probeValid {
		err := l.offlineErrLocked()
		l.mu.Unlock()
		return err
	}
	ch := l.probing
	if ch == nil {
		ch = make(chan struct{})
		l.probing = ch
		go l.runProbe(ch)
	}
	l.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.since.IsZero() || !l.silent {
		return nil // answered, or refused at once: the request may go
	}
	return l.offlineErrLocked()
}

func (l *Link) runProbe(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), l.probeTimeout)
	if err := l.probe(ctx); err == nil || !noAnswer(err) {
		l.answered() // an answer, or a connection made and then cut
	}
	cancel()
	l.mu.Lock()
	if !l.since.IsZero() {
		l.probedAt = time.Now()
	}
	l.probing = nil
	l.mu.Unlock()
	close(done)
}

func (l *Link) offlineErrLocked() error {
	return &offlineError{since: l.since, last: l.lastErr, probe: l.probeTimeout}
}

// offlineError is ErrOffline with what the user needs to know.
type offlineError struct {
	since time.Time
	last  error
	probe time.Duration
}

func (e *offlineError) Error() string {
	return fmt.Sprintf("offline since %s: the server did not answer a probe within %s (last error: %v)",
		e.since.Format(time.TimeOnly), e.probe, e.last)
}

func (e *offlineError) Is(target error) bool { return target == ErrOffline || target == ErrUnavailable }

// noAnswer says a request failed for want of a server: no connection
// could be made (refused, no route, a dial or TLS handshake that timed
// out), or no answer came in time.
func noAnswer(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return timedOut(err)
}

// timedOut says a request waited for its deadline: a dial, a handshake or
// an answer that never came.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}
