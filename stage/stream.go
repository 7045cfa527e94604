package stage

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"

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
	streamSlots = 4
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
func (s *stream) queuedEndLocked() int64 {
	off, _ := streamPart(s.queued)
	return off
}

// noteWrite is told of every write and truncation (with e.mu held): one
// that is not an append at the end, or that reaches back into queued
// parts, breaks the stream.
func (e *Entry) noteWriteLocked(off int64, appendOnly bool) {
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
		if e.base != nil || !e.appendOnly || e.size < streamStart || e.dropped {
			e.mu.Unlock()
			return
		}
		s = &stream{key: e.key, meta: metaOf(e.attrs), ready: make(chan struct{})}
		e.stream, e.mtimeFixed = s, true
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
	buf := make([]byte, size)
	ctx := context.Background()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = e.ReadAt(ctx, buf, off); err != nil {
			break
		}
		var p store.Part
		if p, err = m.st.UploadPart(ctx, s.key, s.id, i+1, bytes.NewReader(buf), size); err == nil {
			s.mu.Lock()
			s.parts[i] = p
			s.mu.Unlock()
			return
		}
	}
	s.fail(fmt.Errorf("part %d: %w", i+1, err))
}

// finishStream completes e's stream with the tail from the spool, and
// applies the final name and metadata. ok false means the stream could not
// be used (broken or failed) and was aborted: upload the file as usual.
func (m *Manager) finishStream(ctx context.Context, e *Entry, s *stream, key string, size int64, meta map[string]string) (store.Attrs, bool, error) {
	s.wg.Wait()
	<-s.ready
	s.mu.Lock()
	usable := !s.broken && s.err == nil && s.id != ""
	err := s.err
	parts := append([]store.Part(nil), s.parts...)
	queued := s.queued
	s.mu.Unlock()
	if !usable {
		m.abortStream(s)
		if err != nil {
			m.log.Warn("upload during the write failed; uploading the file again", "key", s.key, "err", err)
		}
		return store.Attrs{}, false, nil
	}
	tailOff, _ := streamPart(queued)
	for i, off := queued, tailOff; off < size; i++ {
		_, psize := streamPart(i)
		n := min(psize, size-off)
		buf := make([]byte, n)
		if _, err := e.ReadAt(ctx, buf, off); err != nil {
			m.abortStream(s)
			return store.Attrs{}, false, err
		}
		p, err := m.st.UploadPart(ctx, s.key, s.id, i+1, bytes.NewReader(buf), n)
		if err != nil {
			m.abortStream(s)
			return store.Attrs{}, false, err
		}
		parts = append(parts, p)
		off += n
	}
	if err := m.st.CompleteMultipart(ctx, s.key, s.id, parts); err != nil {
		m.abortStream(s)
		return store.Attrs{}, false, err
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
		err = m.st.Delete(ctx, s.key)
	}
	return a, true, err
}

// abortStream gives a stream up, removing its parts from the bucket.
func (m *Manager) abortStream(s *stream) {
	if s.id != "" {
		_ = m.st.AbortMultipart(context.Background(), s.key, s.id)
	}
	m.untrackUpload(s.note)
}
