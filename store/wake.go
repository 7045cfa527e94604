package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// After a laptop's suspend (or a SIGSTOP), the connections the mount held
// are dead: the network forgot them, or the server closed them meanwhile,
// and nothing says so. A request sent on one waits for an answer that
// never comes until --timeout, then is retried; a request that was waiting
// when the pause began waits as long. So the clock is watched: a tick that
// comes late by more than pauseGap, on the monotonic clock (SIGSTOP; the
// monotonic clock stops during a suspend on Linux) or on the wall clock (a
// suspend), is a pause. Then the idle connections are closed, so the next
// requests dial afresh, and the requests still waiting for an answer are
// cut and sent again at once (minio-go retries them, as any network
// failure). TCP keepalive (config.go) finds the dead connections the
// clock cannot show, those of a network that went away while the machine
// ran.
const (
	tick     = time.Second
	pauseGap = 5 * time.Second
)

// errWoke cuts a request that was waiting for an answer across a pause. It
// is not a failure of the server: the link stays as it was.
var errWoke = errors.New("connection dropped after a pause (suspend or stop)")

// watchClock calls woke(gap) after each pause, until stop is closed.
func watchClock(stop <-chan struct{}, woke func(time.Duration)) {
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		gap := max(now.Sub(last), now.Round(0).Sub(last.Round(0))) - tick
		last = now
		if gap > pauseGap {
			woke(gap)
		}
	}
}

// wake drops the connections a pause may have killed.
func (g *guard) wake(gap time.Duration, idle interface{ CloseIdleConnections() }) {
	idle.CloseIdleConnections()
	g.mu.Lock()
	n := len(g.waiting)
	for _, cut := range g.waiting {
		cut(errWoke)
	}
	g.mu.Unlock()
	g.log.Info("the clock jumped: woke from a pause; connections redialled", "pause", gap.Round(time.Second).String(), "requests_resent", n)
}

// send passes req on, cut by a wake-up while no answer has come. A request
// cut so comes back as a network error, which minio-go retries.
func (g *guard) send(req *http.Request) (*http.Response, error) {
	// Not cancelled on return: the answer's body is read under this
	// context. It ends with the request's own context, which every Store
	// method cancels.
	ctx, cut := context.WithCancelCause(req.Context())
	g.mu.Lock()
	if g.waiting == nil {
		g.waiting = map[*http.Request]context.CancelCauseFunc{}
	}
	g.waiting[req] = cut
	g.mu.Unlock()
	resp, err := g.next.RoundTrip(req.WithContext(ctx))
	g.mu.Lock()
	delete(g.waiting, req)
	g.mu.Unlock()
	if err != nil && req.Context().Err() == nil && errors.Is(context.Cause(ctx), errWoke) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, errWoke)
	}
	return resp, err
}
