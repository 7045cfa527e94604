package stage

// One upload of an entry, in four steps: take a snapshot of the entry
// (upJob), store it the cheapest way that is right (put), make the stored
// object the file's base and delete the names it was renamed from
// (rebase, deleteOldNames), and settle the outcome in the entry (settle).

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// upJob is what one upload stores: the entry as it was when the upload
// began. A change made meanwhile moves the entry's gen past the job's and
// is uploaded by the next upload.
type upJob struct {
	gen         uint64
	key         string
	size        int64
	meta        map[string]string
	base        *Base    // a copy of the entry's base, or nil
	unchanged   bool     // the base's bytes as they are: a server-side copy will do
	deleteAfter []string // the old names to delete once stored
	stream      *stream  // the upload begun while the file was written, or nil
}

// upload puts e's current state in the bucket. One upload per entry at a
// time (upMu); a change made during the upload is uploaded by the next.
func (m *Manager) upload(ctx context.Context, e *Entry) error {
	e.upMu.Lock()
	defer e.upMu.Unlock()
	e.mu.Lock()
	if e.state().gone() || e.gen == e.cleanGen {
		// Nothing to upload: dropped (no error: the file is gone), or
		// stored by an earlier upload (its error, if any).
		err := e.failed
		if e.state().gone() {
			err = nil
		}
		e.moveIf(stateUploading, stateOpen) // the queue took a file an fsync stored
		e.mu.Unlock()
		return err
	}
	u := e.jobLocked()
	e.mu.Unlock()

	stored, err := m.put(ctx, e, u)
	if err == nil {
		m.rebase(e, u, stored)
		err = m.deleteOldNames(ctx, e, u)
	}
	return m.settle(e, u, stored, err)
}

// jobLocked takes the snapshot an upload stores. The stream, if any, goes
// with it: the upload finishes it or gives it up. Called with e.mu held.
func (e *Entry) jobLocked() *upJob {
	u := &upJob{
		gen: e.gen, key: e.key, size: e.size, meta: MetaOf(e.attrs),
		deleteAfter: append([]string(nil), e.deleteAfter...), stream: e.stream,
	}
	// Truncations from now on are tracked: they cut the new base (rebase).
	e.lowSince = u.size
	if e.base != nil {
		b := *e.base
		u.base = &b
	}
	u.unchanged = e.nPresent == 0 && u.base != nil && e.baseLimit == u.base.Size && u.size == u.base.Size
	if e.stream != nil {
		e.stream = nil
		e.m.reindex(e)
	}
	return u
}

// put stores the job under its key and claims the key (claim.go). It
// holds the locks of the keys it stores throughout, so that a deletion
// of one of them as another file's old name waits, and then spares it.
func (m *Manager) put(ctx context.Context, e *Entry, u *upJob) (store.Attrs, error) {
	// The keys this upload stores: its name, and a stream's first name.
	stores := []string{u.key}
	if u.stream != nil {
		stores = append(stores, u.stream.key)
	}
	unlock := m.lockKeys(stores...)
	defer unlock()
	stored, err := m.send(ctx, e, u)
	if err == nil {
		m.claim(e, u.key)
	}
	return stored, err
}

// send chooses the way to store the job, the cheapest first: the stream
// begun during the write (its parts are mostly sent already), a
// server-side copy of the base (nothing to send), or the bytes from the
// spool and the base (sendSpool).
func (m *Manager) send(ctx context.Context, e *Entry, u *upJob) (store.Attrs, error) {
	if s := u.stream; s != nil {
		stored, done, err := m.finishStream(ctx, e, s, u.key, u.size, u.meta)
		if err != nil && done {
			e.mu.Lock()
			e.stream = s // its parts are the only copy: retried as they are
			m.reindex(e)
			e.mu.Unlock()
		}
		if done {
			return stored, err // the stream carried the file (or failed, to be retried)
		}
		// Broken or failed, and aborted: the usual way.
	}
	if u.unchanged {
		// Only metadata or the name changed: a server-side copy.
		return m.copier.Copy(ctx, u.base.Key, u.key, u.size, u.base.Plain, u.meta)
	}
	return m.sendSpool(ctx, e, u)
}

// sendSpool uploads the file's bytes, read from the spool and the base.
// store.Upload sends one PUT (whose answer echoes our key) up to
// store.MinPartSize, else a multipart upload that it proves with a keyed
// HEAD.
func (m *Manager) sendSpool(ctx context.Context, e *Entry, u *upJob) (store.Attrs, error) {
	if u.size <= store.MinPartSize {
		return store.Upload(ctx, m.st, u.key, e.uploadSource, u.size, u.meta, nil)
	}
	// One multipart upload at a time: each already sends its parts in
	// parallel, and their buffers bound the daemon's memory.
	m.big <- struct{}{}
	defer func() { <-m.big }()
	// Noted in the journal while in flight, so that a crash's leftover
	// parts are aborted at the next start.
	var mpu string
	stored, err := store.Upload(ctx, m.st, u.key, e.uploadSource, u.size, u.meta, func(id string) { mpu = m.trackUpload(u.key, id) })
	m.untrackUpload(mpu)
	return stored, err
}

// uploadSource is the store.Source of an upload: the file as it is now,
// from the spool and the base.
func (e *Entry) uploadSource(ctx context.Context, off int64, buf []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := e.readAtLocked(ctx, buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		// A base read that failed half-way fails the upload (it is
		// retried); zeros in place of those bytes would be stored.
		return err
	}
	clear(buf[n:]) // a concurrent truncation reads as zeros
	e.m.sent.Add(int64(len(buf)))
	return nil
}

// rebase makes the uploaded object the new base, before an old name goes:
// bytes not in the spool now come from it (the old base, if it had this
// key, is gone; if it had an old name, it goes next, and a read meanwhile
// would ask for a deleted object). A truncation during the upload still
// holds: the new base's bytes past the smallest size since the snapshot
// are gone.
func (m *Manager) rebase(e *Entry, u *upJob, stored store.Attrs) {
	e.mu.Lock()
	e.base = &Base{Key: u.key, ETag: stored.ETag, Size: u.size}
	e.baseLimit = min(u.size, e.lowSince)
	e.mu.Unlock()
}

// deleteOldNames deletes the names the file was renamed from, now that it
// is stored under its new one, but a name another file's upload claimed
// meanwhile (claim.go). A failure fails the upload: it is tried again.
func (m *Manager) deleteOldNames(ctx context.Context, e *Entry, u *upJob) error {
	for _, k := range u.deleteAfter {
		if k == u.key {
			continue
		}
		if err := m.deleteOldName(ctx, k, func() bool { return !e.lists(k) }); err != nil {
			return err
		}
	}
	return nil
}

// settle records the upload's outcome in the entry and returns err.
func (m *Manager) settle(e *Entry, u *upJob, stored store.Attrs, err error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		// Sticky until an upload succeeds, and in the journal record:
		// close and fsync return it.
		e.failed = err
		if !e.state().gone() {
			if werr := m.writeRecordLocked(e, e.writers > 0); werr != nil {
				m.log.Error("journal write failed", "key", e.key, "err", werr)
			}
		}
		return err
	}
	m.log.Debug("uploaded", "key", u.key, "size", u.size)
	m.counts.uploaded.Add(1)
	m.counts.uploadedBytes.Add(u.size)
	m.Reached()
	e.failed, e.attempts, e.toldGaveUp = nil, 0, false
	e.cleanGen = u.gen
	e.deleteAfter = slicesWithout(e.deleteAfter, u.deleteAfter)
	if e.key != u.key { // renamed during the upload: the uploaded name goes
		e.deleteAfter = append(e.deleteAfter, u.key)
	} else {
		e.replaces = true
	}
	m.reindex(e)
	// Only the file's current name is news: a name it was renamed or
	// deleted from during the upload must not come back into the listing.
	if m.cfg.Uploaded != nil && e.key == u.key && !e.state().gone() {
		m.cfg.Uploaded(u.key, stored)
	}
	m.keepOrForgetLocked(e, u)
	return nil
}

// keepOrForgetLocked ends a successful upload: an entry with no change
// since and no handle is forgotten; any other is kept, and queued again
// if it changed meanwhile. Called with e.mu held.
func (m *Manager) keepOrForgetLocked(e *Entry, u *upJob) {
	if e.gen == u.gen && e.writers == 0 && e.readers == 0 {
		m.forgetLocked(e)
		return
	}
	// Kept: its record must name the new base, as the old one is gone from
	// the bucket and a crash now would otherwise resume from nothing.
	if werr := m.writeRecordLocked(e, e.writers > 0); werr != nil {
		m.log.Error("journal write failed", "key", e.key, "err", werr)
	}
	if e.gen != u.gen {
		e.to(stateQueued)
		e.due = time.Now()
		m.enqueue(e)
		return
	}
	// Stored as it is: out of the queue's hands (a failure is over).
	if !e.moveIf(stateUploading, stateOpen) {
		e.moveIf(stateFailed, stateOpen)
	}
	// Queued meanwhile (a drain, or an fsync's upload outside the queue):
	// its attempts are back to 0, which may make it due sooner.
	m.enqueue(e)
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
