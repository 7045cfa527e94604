package stage

// The upload queue: due entries are uploaded, at most Parallel at once,
// failures retried with backoff; one upload per entry at a time.

import (
	"context"
	"errors"
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
// next one is. It looks only at the queue's heads (heap.go): k uploads
// started cost O(k log N) with N files waiting, not N.
func (m *Manager) startDue() time.Duration {
	for {
		m.mu.Lock()
		if m.running >= m.cfg.Parallel {
			m.mu.Unlock()
			return time.Hour // woken again when one ends
		}
		// Under pressure (a writer waits for room, or the journal is nearly
		// full) the window ends as for a drain: the uplink must not idle.
		windowEnds := m.draining || m.pressureLocked()
		it, retry, wait, ok := m.queue.next(windowEnds, time.Now())
		if !ok || wait > 0 {
			m.mu.Unlock()
			if !ok {
				return time.Hour
			}
			return wait
		}
		m.queue.pop(retry)
		m.mu.Unlock()
		e := it.e
		e.mu.Lock()
		if !it.current(retry) {
			// Stale: a later push stands for the entry, or it left the
			// queue, or a writer holds it.
			m.repushStale(e)
			e.mu.Unlock()
			continue
		}
		m.mu.Lock()
		m.running++ // only this loop adds to running: the check above holds
		m.mu.Unlock()
		// Taken off the queue. A drop without e.mu (Rename onto it) may
		// have ended it meanwhile: its upload then has nothing to do.
		e.moveIf(stateQueued, stateUploading)
		e.mu.Unlock()
		go func() {
			err := m.upload(context.Background(), e)
			m.retryLater(e, err) // before Drain is woken: it must see the retry queued
			e.mu.Lock()
			e.restLocked()
			e.mu.Unlock()
			m.mu.Lock()
			m.running--
			m.signalLocked()
			m.mu.Unlock()
			m.poke()
		}()
	}
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
		// Told once per failure: a drain's or a room wait's retry that
		// fails again is not news.
		if !e.toldGaveUp {
			e.toldGaveUp = true
			m.counts.gaveUp.Add(1)
			if m.cfg.GaveUp != nil {
				m.cfg.GaveUp(e.key, err)
			}
		}
		// The queue gives up, unless something queued it again during
		// the upload (a close, a drain), or another upload stored it:
		// queued, it is now a retry, due when that queued it.
		e.moveIf(stateUploading, stateFailed)
		m.enqueue(e)
		return
	}
	m.counts.retries.Add(1)
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
	m.enqueue(e)
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

// retryNow makes the uploads waiting out a backoff due now. Those are
// all in the retry heap: it looks at them only, not at every file waiting.
func (m *Manager) retryNow() {
	now := time.Now()
	n := 0
	m.mu.Lock()
	retrying := m.queue.retrying()
	m.mu.Unlock()
	for _, e := range retrying {
		e.mu.Lock()
		if e.state() == stateQueued && e.attempts > 0 && e.due.After(now) {
			e.due = now
			m.enqueue(e)
			n++
		}
		e.mu.Unlock()
	}
	if n > 0 {
		m.log.Info("the server answers again: retrying the uploads that failed", "files", n)
		m.poke()
	}
}
