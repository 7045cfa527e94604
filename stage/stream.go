package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/store"
)

// A stream uploads a large new file while it is being written: once a
// file written front to back passes streamStart bytes, a multipart upload
// starts, and every part the writer has moved past is uploaded from the
// spool in the background, at most streamSlots parts at a time (a writer
// faster than the network waits: memory stays bounded). At close, only
// the tail is left to send, so the upload overlaps the writing.
//
// The metadata is fixed when the stream starts: the file's mtime stops
// following its writes from then on (an explicit utimes still wins). A
// later chmod, utimes or rename is applied with one server-side copy
// after completion. A write that goes back into a part already handed to
// the stream, or a truncation, breaks it: it is aborted and the file is
// uploaded from the spool as any other.

const (
	streamStart = 2 * store.MinPartSize
	streamSlots = 8
)

// streamPart is the offset and size of part i of a stream: 1,000 parts of
// 8 MiB, then 1,000 of 16 MiB, and so on, so that a stream of unknown
// final size fits the 10,000 parts S3 allows (up to ~8 TiB).
func streamPart(i int) (off, size int64) {
	size = store.MinPartSize
	for i >= 1000 {
		off += 1000 * size
		size *= 2
		i -= 1000
	}
	return off + int64(i)*size, size
}

type stream struct {
	key   string
	meta  map[string]string
	ready chan struct{} // closed once the upload is created (id) or failed (err)
	id    string
	note  string // the journal's note of the upload, for crash cleanup
	wg    sync.WaitGroup

	mu     sync.Mutex   // guards the fields below; a leaf lock
	parts  []store.Part // by part index
	queued int          // parts handed to uploaders
	err    error
	broken bool
	// keyTaken: another file's upload stored key since the stream began
	// (claim.go): a rename's delete of the stream's key must spare it.
	keyTaken bool
}

func (s *stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// queuedEnd is the offset up to which parts are handed to the stream.
// Called with s.mu held.
func (s *stream) queuedEndLocked() int64 { return streamOffset(s.queued) }

// noteWrite is told of every write and truncation (with e.mu held): one
// that is not an append at the end, or that reaches back into queued
// parts, breaks the stream.
func (e *Entry) noteWriteLocked(off int64, appendOnly bool) {
	e.spoolChanged = true
	if !appendOnly {
		e.appendOnly = false
	}
	if s := e.stream; s != nil {
		s.mu.Lock()
		if off < s.queuedEndLocked() {
			s.broken = true
		}
		s.mu.Unlock()
	}
}

// pump starts the stream of e when it qualifies and hands it the parts the
// writer has moved past. It runs in the writer's call, without e.mu, and
// blocks while streamSlots parts are in flight.
func (m *Manager) pump(e *Entry) {
	e.mu.Lock()
	s := e.stream
	if s == nil {
		if e.base != nil || !e.appendOnly || e.size < streamStart || e.state().gone() {
			e.mu.Unlock()
			return
		}
		s = &stream{key: e.key, meta: MetaOf(e.attrs), ready: make(chan struct{})}
		e.stream, e.mtimeFixed = s, true
		m.reindex(e)
		go m.createStream(s)
	}
	size := e.size
	s.mu.Lock()
	var todo []int
	for !s.broken && s.err == nil {
		off, sz := streamPart(s.queued)
		if off+sz > size {
			break
		}
		todo = append(todo, s.queued)
		s.queued++
		s.parts = append(s.parts, store.Part{})
	}
	s.mu.Unlock()
	e.mu.Unlock()
	if m.nearCap() {
		// Let the parts in flight land, then drop them from the journal:
		// a file larger than the journal keeps going.
		s.wg.Wait()
		e.mu.Lock()
		e.dropStreamedLocked()
		e.mu.Unlock()
	}
	for _, i := range todo {
		m.streamSlots <- struct{}{}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-m.streamSlots }()
			m.sendPart(e, s, i)
		}()
	}
}

func (m *Manager) createStream(s *stream) {
	defer close(s.ready)
	id, err := m.st.CreateMultipart(context.Background(), s.key, s.meta)
	if err != nil {
		s.fail(err)
		return
	}
	s.id = id
	s.note = m.trackUpload(s.key, id)
}

// sendPart uploads part i from the spool, trying it three times.
func (m *Manager) sendPart(e *Entry, s *stream, i int) {
	<-s.ready
	if s.id == "" {
		return
	}
	off, size := streamPart(i)
	ctx := context.Background()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		buf := store.PartBuffer(size)
		if err = readFull(ctx, e, buf, off); err != nil {
			break
		}
		var p store.Part
		if p, err = m.st.UploadPart(ctx, s.key, s.id, i+1, bytes.NewReader(buf), size); err == nil {
			m.sent.Add(size)
			store.ReleasePart(buf)
			s.mu.Lock()
			s.parts[i] = p
			s.mu.Unlock()
			return
		}
	}
	s.fail(fmt.Errorf("part %d: %w", i+1, err))
}

// finishStream completes e's stream with the tail from the spool, and
// applies the final name and metadata. done false means the stream could
// not be used (broken or failed) and was aborted: upload the file as
// usual. A stream whose parts left the full journal is never aborted: its
// failure is returned, to be retried.
func (m *Manager) finishStream(ctx context.Context, e *Entry, s *stream, key string, size int64, meta map[string]string) (store.Attrs, bool, error) {
	s.wg.Wait()
	<-s.ready
	e.mu.Lock()
	dropped := e.freedBelow > 0
	e.mu.Unlock()
	giveUp := func(err error) (store.Attrs, bool, error) {
		if dropped {
			return store.Attrs{}, true, fmt.Errorf("finishing the upload begun during the write (its first parts already left the full journal): %w", err)
		}
		m.abortStream(s)
		m.log.Warn("the upload begun during the write cannot be used; uploading the file again", "key", s.key, "err", err)
		return store.Attrs{}, false, nil
	}
	s.mu.Lock()
	err := s.err
	if s.broken {
		err = errors.New("a write went back into parts already sent")
	} else if err == nil && s.id == "" {
		err = errors.New("the upload was not created")
	}
	parts := append([]store.Part(nil), s.parts...)
	queued := s.queued
	s.mu.Unlock()
	if err != nil {
		return giveUp(err)
	}
	if parts, err = m.sendTail(ctx, e, s, parts, queued, size); err != nil {
		return giveUp(err)
	}
	s.mu.Lock()
	taken := s.keyTaken
	s.mu.Unlock()
	if taken && key != s.key {
		// Completing would store the stream under its first name, which
		// a newer file now holds (claim.go); the caller holds that key.
		return giveUp(errors.New("its first name now holds a newer file"))
	}
	if err := store.Complete(ctx, m.st, s.key, s.id, parts); err != nil {
		return giveUp(err)
	}
	m.untrackUpload(s.note)
	a, err := store.Verify(ctx, m.st, s.key, size)
	if err != nil {
		return store.Attrs{}, true, err
	}
	if key == s.key && maps.Equal(meta, s.meta) {
		return a, true, nil
	}
	// Renamed or changed after the stream began: one server-side copy.
	a, err = m.copier.Copy(ctx, s.key, key, size, false, meta)
	if err == nil && key != s.key {
		if err = m.st.Delete(ctx, s.key); err == nil {
			m.removed(s.key)
		}
	}
	return a, true, err
}

// sendTail sends the parts of e's stream from part queued on, those the
// writer had not moved past when the file was closed, and returns parts
// with them appended: at close, the tail is all that is left to send.
func (m *Manager) sendTail(ctx context.Context, e *Entry, s *stream, parts []store.Part, queued int, size int64) ([]store.Part, error) {
	for i, off := queued, streamOffset(queued); off < size; i++ {
		_, psize := streamPart(i)
		n := min(psize, size-off)
		buf := store.PartBuffer(n)
		if err := readFull(ctx, e, buf, off); err != nil {
			return parts, err
		}
		p, err := m.st.UploadPart(ctx, s.key, s.id, i+1, bytes.NewReader(buf), n)
		if err != nil {
			return parts, err
		}
		store.ReleasePart(buf)
		parts = append(parts, p)
		s.mu.Lock()
		s.parts = append(s.parts, p)
		s.queued++
		s.mu.Unlock()
		off += n
	}
	return parts, nil
}

// readFull fills buf from the spool at off. Bytes past the file's end (a
// truncation meanwhile, which breaks the stream anyway) read as zeros, as
// in a new buffer: this one is reused and holds another part's bytes.
func readFull(ctx context.Context, e *Entry, buf []byte, off int64) error {
	n, err := e.ReadAt(ctx, buf, off)
	clear(buf[n:])
	return err
}

func streamOffset(i int) int64 {
	off, _ := streamPart(i)
	return off
}

// dropStreamedLocked makes room in a full journal by dropping the chunks
// of parts the stream has uploaded, so that a file far larger than the
// journal can be written. The journal record is written first: it holds
// the stream, so that a crash can still finish the upload. Called with
// e.mu held; it reports whether anything was dropped.
func (e *Entry) dropStreamedLocked() bool {
	s := e.stream
	if s == nil {
		return false
	}
	s.mu.Lock()
	end := e.freedBelow
	for i := 0; i < len(s.parts) && s.parts[i].ETag != ""; i++ {
		off, size := streamPart(i)
		if off+size > end {
			end = off + size
		}
	}
	usable := !s.broken && s.err == nil
	s.mu.Unlock()
	if !usable || end <= e.freedBelow {
		return false
	}
	old := e.freedBelow
	e.freedBelow = end
	if err := e.m.writeRecordLocked(e, e.writers > 0); err != nil {
		e.freedBelow = old
		e.m.log.Error("journal write failed; cannot make room", "key", e.key, "err", err)
		return false
	}
	// The disk first, then the room: a writer waiting for it must not
	// find the disk still holding the parts.
	if f, err := e.spoolLocked(); err == nil {
		_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE,
			old/chunkSize*e.slot(), (end-old)/chunkSize*e.slot())
	}
	var freed int64
	for i := old / chunkSize; i < end/chunkSize; i++ {
		if e.has(i) {
			e.mark(i, false)
			freed += e.cost()
		}
	}
	e.m.release(freed)
	e.m.log.Info("journal full: dropped parts already uploaded", "key", e.key, "bytes", end-old)
	return true
}

// isBroken says the stream can no longer carry the file.
func (s *stream) isBroken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken || s.err != nil
}

// abortStream gives a stream up, removing its parts from the bucket.
func (m *Manager) abortStream(s *stream) {
	if s.id != "" {
		_ = m.st.AbortMultipart(context.Background(), s.key, s.id)
	}
	m.untrackUpload(s.note)
}
