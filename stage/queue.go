package stage

// The upload queue: due entries are uploaded, at most Parallel at once,
// failures retried with backoff; one upload per entry at a time.

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// loop starts due uploads, at most Parallel at once.
func (m *Manager) loop() {
	defer close(m.done)
	timer := time.NewTimer(time.Hour)
	for {
		next := m.startDue()
		timer.Reset(next)
		select {
		case <-m.stop:
			return
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// startDue starts the uploads that are due and returns how long until the
// next one is.
func (m *Manager) startDue() time.Duration {
	m.mu.Lock()
	all := make([]*Entry, 0, len(m.byKey))
	for _, e := range m.byKey {
		all = append(all, e)
	}
	// Under pressure (a writer waits for room, or the journal is nearly
	// full) the window ends as for a drain: the uplink must not idle.
	draining := m.draining || m.pressureLocked()
	m.mu.Unlock()
	type cand struct {
		e    *Entry
		wait time.Duration
	}
	var due []cand
	next := time.Hour
	now := time.Now()
	for _, e := range all {
		e.mu.Lock()
		ready := e.state() == stateQueued && e.writers == 0
		wait := e.due.Sub(now)
		if draining && e.attempts == 0 {
			wait = 0 // the write-back window ends now; retry backoff does not
		}
		e.mu.Unlock()
		if !ready {
			continue
		}
		if wait > 0 {
			next = min(next, wait)
			continue
		}
		due = append(due, cand{e, wait})
	}
	sort.Slice(due, func(i, j int) bool { return due[i].wait < due[j].wait })
	for _, c := range due {
		e := c.e
		m.mu.Lock()
		if m.running >= m.cfg.Parallel {
			m.mu.Unlock()
			return next // woken again when one ends
		}
		m.running++
		m.mu.Unlock()
		e.mu.Lock()
		// Taken off the queue. If it left the queue meanwhile (a drain
		// found it clean, or it was dropped), its state stays: the upload
		// then has nothing to do.
		e.moveIf(stateQueued, stateUploading)
		e.mu.Unlock()
		go func() {
			err := m.upload(context.Background(), e)
			m.retryLater(e, err) // before Drain is woken: it must see the retry queued
			m.mu.Lock()
			m.running--
			m.signalLocked()
			m.mu.Unlock()
			m.poke()
		}()
	}
	return next
}

// retryLater requeues a failed upload with backoff: 1 s doubling up to
// Config.RetryCap. A failure that may heal by itself (transient: the
// server unreachable, slow or answering 5xx) is retried for as long as the
// mount lives, and a request that succeeds again retries at once
// (Reached). Any other failure (access denied, another key) is retried
// until Config.Attempts are spent; then the file stays failed, in the
// journal, until the next write, fsync, remount or unmount.
func (m *Manager) retryLater(e *Entry, err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.attempts++
	heals := transient(err)
	if !heals && e.attempts >= m.cfg.Attempts {
		m.log.Error("upload failed; the file stays in the journal", "key", e.key, "attempts", e.attempts, "err", err)
		// The queue gives up, unless something queued it again during
		// the upload (a close, a drain), or another upload stored it.
		e.moveIf(stateUploading, stateFailed)
		return
	}
	delay := min(time.Second<<min(e.attempts-1, 16), m.retryCap())
	if heals {
		m.backingOff.Store(true)
		m.mu.Lock()
		if m.unreachable.IsZero() {
			m.unreachable = time.Now()
		}
		m.netErr = err
		m.mu.Unlock()
	}
	if e.attempts <= m.cfg.Attempts {
		m.log.Warn("upload failed; retrying", "key", e.key, "in", delay, "err", err)
	} else {
		m.log.Debug("upload failed; retrying", "key", e.key, "in", delay, "attempts", e.attempts, "err", err)
	}
	e.to(stateQueued)
	e.due = time.Now().Add(delay)
}

// transient says whether an upload's failure may heal by itself: the
// server or the network unreachable, too slow, or answering 5xx.
func transient(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// DefaultRetryCap is the longest wait between two tries of an upload.
const DefaultRetryCap = 15 * time.Second

func (m *Manager) retryCap() time.Duration {
	if m.cfg.RetryCap > 0 {
		return m.cfg.RetryCap
	}
	return DefaultRetryCap
}

// Reached is told that a request to the server succeeded (a listing, a
// HEAD, an upload): uploads waiting out a backoff after a network failure
// are tried at once, rather than up to RetryCap later.
func (m *Manager) Reached() {
	if m.backingOff.CompareAndSwap(true, false) {
		m.mu.Lock()
		m.unreachable, m.netErr = time.Time{}, nil
		m.mu.Unlock()
		go m.retryNow()
	}
}

// Unreachable says since when uploads fail on the network, and the last
// such failure; a zero time while they do not.
func (m *Manager) Unreachable() (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unreachable, m.netErr
}

func (m *Manager) retryNow() {
	now := time.Now()
	n := 0
	for _, e := range m.Under("") {
		e.mu.Lock()
		if e.state() == stateQueued && e.attempts > 0 && e.due.After(now) {
			e.due = now
			n++
		}
		e.mu.Unlock()
	}
	if n > 0 {
		m.log.Info("the server answers again: retrying the uploads that failed", "files", n)
		m.poke()
	}
}
