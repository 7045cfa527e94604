package stage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Status is the state of one file waiting for upload.
type Status struct {
	Key    string
	Size   int64
	Failed string
}

// Pending lists the files not yet in the bucket.
func (m *Manager) Pending() []Status {
	var out []Status
	m.eachWaiting(func(e *Entry) {
		s := Status{Key: e.key, Size: e.size}
		if e.failed != nil {
			s.Failed = e.failed.Error()
		}
		out = append(out, s)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// eachWaiting calls f with every entry not yet in the bucket, locked.
func (m *Manager) eachWaiting(f func(e *Entry)) {
	m.mu.Lock()
	entries := make([]*Entry, 0, len(m.byKey))
	for _, e := range m.byKey {
		entries = append(entries, e)
	}
	m.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		if e.gen != e.cleanGen {
			f(e)
		}
		e.mu.Unlock()
	}
}

// ErrNotDrained: files remain in the journal after a drain.
var ErrNotDrained = errors.New("files could not be uploaded and remain in the journal")

// DefaultDrainTimeout is how long a drain waits while no upload succeeds.
const DefaultDrainTimeout = 10 * time.Minute

// Drain uploads everything now, ignoring the window, retrying failures
// once more each, and waits. It returns ErrNotDrained listing what is
// left: files failed for good, or every file still waiting once no upload
// has succeeded for Config.DrainTimeout (the server gone: the next mount
// uploads them).
func (m *Manager) Drain(ctx context.Context) error {
	timeout := m.cfg.DrainTimeout
	if timeout <= 0 {
		timeout = DefaultDrainTimeout
	}
	progress, before := time.Now(), -1
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
	for _, e := range m.Under("") {
		e.mu.Lock()
		e.attempts = 0
		if e.gen != e.cleanGen {
			e.to(stateQueued)
			m.enqueue(e)
		} else {
			e.moveIf(stateQueued, stateOpen) // nothing left to upload
		}
		e.mu.Unlock()
	}
	m.poke()
	// A look at what is left costs every file left, and uploads end one
	// by one: a look per upload would cost N for each of N files. So the
	// looks are paced: the next comes no sooner than ten times the last
	// one took after it (a second at most), which keeps them to a tenth
	// of the time. Pacing delays noting the end or progress by a pace at
	// most; it never makes the drain give up sooner.
	var scanned time.Time
	var pace time.Duration
	for {
		if err := sleepUntil(ctx, scanned.Add(pace)); err != nil {
			return err
		}
		m.mu.Lock()
		seen := m.changes
		m.mu.Unlock()
		start := time.Now()
		left := m.Pending()
		m.mu.Lock()
		busy := m.running > 0
		m.mu.Unlock()
		// Stuck: failed for good. A file still open is not: the kernel
		// releases handles a little after close(2) returns.
		stuck := 0
		for _, s := range left {
			e := m.Lookup(s.Key)
			if e == nil {
				continue
			}
			e.mu.Lock()
			if e.state() != stateQueued && e.failed != nil && e.writers == 0 {
				stuck++
			}
			e.mu.Unlock()
		}
		scanned = time.Now()
		pace = min(10*scanned.Sub(start), time.Second)
		if before < 0 || len(left) < before {
			progress, before = time.Now(), len(left)
		}
		gaveUp := time.Since(progress) >= timeout
		if len(left) == 0 || (!busy && stuck == len(left)) || gaveUp {
			if len(left) == 0 {
				return nil
			}
			var names []string
			for _, s := range left {
				names = append(names, fmt.Sprintf("%q (%s)", s.Key, s.Failed))
			}
			if gaveUp {
				return fmt.Errorf("%w: no upload succeeded for %s: %s", ErrNotDrained, timeout, strings.Join(names, ", "))
			}
			return fmt.Errorf("%w: %s", ErrNotDrained, strings.Join(names, ", "))
		}
		if err := m.waitChangeFor(ctx, seen, time.Second); err != nil {
			return err
		}
	}
}

// sleepUntil waits until t, or returns ctx's error once it is done. A
// time past returns nil at once: the caller looked at ctx just before.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Abandon counts every handle still open as closed. The daemon calls it
// once the kernel has ended the mount, after which no release can come: a
// lazily detached mount can end with the last close's release unread, and
// Drain would wait for it for ever. Such files are uploaded as they were
// last written.
func (m *Manager) Abandon() {
	for _, e := range m.Under("") {
		e.mu.Lock()
		open, writing, key := e.writers+e.readers > 0, e.writers > 0, e.key
		e.writers, e.readers = 0, 0
		e.mu.Unlock()
		if writing {
			m.log.Warn("the mount ended with the file still open for writing; it is uploaded as last written", "key", key)
		}
		if open {
			_ = m.persistIfClosed(e) // logged; the upload reads the spool
		}
	}
}

// waitChangeFor is waitChange for d at most: waiters that also watch a
// clock (a drain's timeout, a writer's stall) look again at least that
// often. It returns ctx's error, not the bound's.
func (m *Manager) waitChangeFor(ctx context.Context, seen uint64, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_ = m.waitChange(wctx, seen)
	return ctx.Err()
}

// waitChange waits until something changed since seen, or ctx is done.
func (m *Manager) waitChange(ctx context.Context, seen uint64) error {
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		m.signalLocked()
		m.mu.Unlock()
	})
	defer stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.changes == seen && ctx.Err() == nil {
		m.changed.Wait()
	}
	return ctx.Err()
}
