package stage

// The upload queue: due entries are uploaded, at most Parallel at once,
// failures retried with backoff; one upload per entry at a time.

import (
	"context"
	"errors"
	"io"
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
	draining := m.draining
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
		ready := e.queued && e.writers == 0 && !e.dropped
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
		e.queued = false
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

// retryLater requeues a failed upload with backoff until its attempts are
// spent; then it stays failed, in the journal, until the next write,
// fsync, remount or unmount.
func (m *Manager) retryLater(e *Entry, err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.attempts++
	if e.attempts >= m.cfg.Attempts {
		m.log.Error("upload failed; the file stays in the journal", "key", e.key, "attempts", e.attempts, "err", err)
		return
	}
	delay := time.Second << min(e.attempts-1, 6)
	m.log.Warn("upload failed; retrying", "key", e.key, "in", delay, "err", err)
	e.queued = true
	e.due = time.Now().Add(delay)
}

// upload puts e's current state in the bucket. One upload per entry at a
// time (upMu); a change made during the upload is uploaded by the next.
func (m *Manager) upload(ctx context.Context, e *Entry) error {
	e.upMu.Lock()
	defer e.upMu.Unlock()
	e.mu.Lock()
	if e.dropped || e.gen == e.cleanGen {
		err := e.failed
		if e.dropped {
			err = nil
		}
		e.mu.Unlock()
		return err
	}
	gen, key, size, attrs := e.gen, e.key, e.size, e.attrs
	e.lowSince = size
	var base *Base
	if e.base != nil {
		b := *e.base
		base = &b
	}
	unchanged := e.nPresent == 0 && base != nil && e.baseLimit == base.Size && size == base.Size
	deleteAfter := append([]string(nil), e.deleteAfter...)
	s := e.stream
	e.stream = nil
	e.mu.Unlock()

	meta := MetaOf(attrs)
	var (
		stored store.Attrs
		err    error
		done   bool
	)
	// The keys this upload stores: its name, and a stream's first name.
	stores := []string{key}
	if s != nil {
		stores = append(stores, s.key)
	}
	unlock := m.lockKeys(stores...)
	if s != nil {
		stored, done, err = m.finishStream(ctx, e, s, key, size, meta)
		if err != nil && done {
			e.mu.Lock()
			e.stream = s // its parts are the only copy: retried as they are
			e.mu.Unlock()
		}
	}
	if done {
		// The stream carried the file (or failed, to be retried).
	} else if unchanged {
		// Only metadata or the name changed: a server-side copy.
		stored, err = m.copier.Copy(ctx, base.Key, key, size, base.Plain, meta)
	} else {
		src := func(ctx context.Context, off int64, buf []byte) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			n, err := e.readAtLocked(ctx, buf, off)
			if err != nil && !errors.Is(err, io.EOF) {
				// A base read that failed half-way fails the upload (it is
				// retried); zeros in place of those bytes would be stored.
				return err
			}
			clear(buf[n:]) // a concurrent truncation reads as zeros
			return nil
		}
		if size > store.MinPartSize {
			m.big <- struct{}{}
			var mpu string
			stored, err = store.Upload(ctx, m.st, key, src, size, meta, func(id string) { mpu = m.trackUpload(key, id) })
			m.untrackUpload(mpu)
			<-m.big
		} else {
			stored, err = store.Upload(ctx, m.st, key, src, size, meta, nil)
		}
	}
	if err == nil {
		m.claim(e, key)
	}
	unlock()
	if err == nil {
		// The uploaded object is the new base before an old name goes:
		// bytes not in the spool now come from it (the old base, if it
		// had this key, is gone; if it had an old name, it goes next, and
		// a read meanwhile would ask for a deleted object). A truncation
		// during the upload still holds: the new base's bytes past the
		// smallest size since the snapshot are gone.
		e.mu.Lock()
		e.base = &Base{Key: key, ETag: stored.ETag, Size: size}
		e.baseLimit = min(size, e.lowSince)
		e.mu.Unlock()
		for _, k := range deleteAfter {
			if k == key {
				continue
			}
			if err = m.deleteOldName(ctx, k, func() bool { return !e.lists(k) }); err != nil {
				break
			}
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.failed = err
		if !e.dropped {
			if werr := m.writeRecordLocked(e, e.writers > 0); werr != nil {
				m.log.Error("journal write failed", "key", e.key, "err", werr)
			}
		}
		return err
	}
	m.log.Debug("uploaded", "key", key, "size", size)
	e.failed, e.attempts = nil, 0
	e.cleanGen = gen
	e.deleteAfter = slicesWithout(e.deleteAfter, deleteAfter)
	if e.key != key { // renamed during the upload: the uploaded name goes
		e.deleteAfter = append(e.deleteAfter, key)
	} else {
		e.replaces = true
	}
	// Only the file's current name is news: a name it was renamed or
	// deleted from during the upload must not come back into the listing.
	if m.cfg.Uploaded != nil && e.key == key && !e.dropped {
		m.cfg.Uploaded(key, stored)
	}
	if e.gen == gen && e.writers == 0 && e.readers == 0 {
		m.forgetLocked(e)
		return nil
	}
	// Kept: its record must name the new base, as the old one is gone from
	// the bucket and a crash now would otherwise resume from nothing.
	if werr := m.writeRecordLocked(e, e.writers > 0); werr != nil {
		m.log.Error("journal write failed", "key", e.key, "err", werr)
	}
	if e.gen != gen {
		e.queued = true
		e.due = time.Now()
		m.poke()
	}
	return nil
}

func slicesWithout(s, drop []string) []string {
	var out []string
	for _, k := range s {
		keep := true
		for _, d := range drop {
			if k == d {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, k)
		}
	}
	return out
}
