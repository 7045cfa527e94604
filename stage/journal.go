package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/store"
)

// The journal is a folder (mode 0700) holding, per file waiting for upload,
// ID.dat (the sealed spool) and ID.rec (a sealed JSON record of what to
// upload). A record is written, synced and renamed into place before
// close(2) returns, so a file whose close returned 0 survives a crash of
// the daemon or of the machine; it is removed once the file is in the
// bucket. A change of metadata only may wait a second for the disk in
// ID.new (lazy.go). A lock file keeps a second mount from sharing the
// folder.

type record struct {
	Key         string   `json:"key"`
	Size        int64    `json:"size"`
	Mtime       int64    `json:"mtime_ns"`
	Mode        uint32   `json:"mode"`
	UID         uint32   `json:"uid"`
	GID         uint32   `json:"gid"`
	Base        *Base    `json:"base,omitempty"`
	BaseLimit   int64    `json:"base_limit"`
	Present     []uint64 `json:"present"`
	DeleteAfter []string `json:"delete_after,omitempty"`
	Replaces    bool     `json:"replaces,omitempty"`
	Failed      string   `json:"failed,omitempty"`
	// Open: written while the file was still open for writing (to make
	// room, stream.go); no close returned for that state, so a run that
	// finds it after a crash discards it.
	Open bool `json:"open,omitempty"`
	// Stream is kept once its first parts left the journal: they are in
	// the bucket's multipart upload only, which a restart must finish.
	Stream     *streamRecord `json:"stream,omitempty"`
	FreedBelow int64         `json:"freed_below,omitempty"`
	// Seq numbers the entry's records: of ID.rec and a lazy ID.new
	// (lazy.go), the higher is the newer.
	Seq uint64 `json:"seq,omitempty"`
}

// check refuses a record that no run of this code writes (a bug, a record
// of another version): sizes and offsets out of range would fail later,
// deep in an upload, or make it allocate what they say.
func (r *record) check() error {
	chunks := (r.Size + chunkSize - 1) / chunkSize
	switch {
	case r.Key == "" || strings.HasSuffix(r.Key, "/"):
		return fmt.Errorf("journal record: bad key %q", r.Key)
	case r.Size < 0 || r.BaseLimit < 0 || r.FreedBelow < 0 || r.FreedBelow > r.Size:
		return fmt.Errorf("journal record of %q: sizes out of range", r.Key)
	case chunkPast(r.Present, chunks):
		return fmt.Errorf("journal record of %q: a chunk past its size", r.Key)
	case r.Base != nil && (r.Base.Key == "" || r.Base.Size < 0):
		return fmt.Errorf("journal record of %q: bad base", r.Key)
	case r.Stream != nil && (r.Stream.ID == "" || len(r.Stream.Parts) > 10000):
		return fmt.Errorf("journal record of %q: bad upload", r.Key)
	}
	for _, k := range r.DeleteAfter {
		if k == "" {
			return fmt.Errorf("journal record of %q: empty old name", r.Key)
		}
	}
	return nil
}

// chunkPast says whether present marks a chunk at or past index n. The
// bitmap itself may be longer: a truncation clears bits, it does not
// shorten it.
func chunkPast(present []uint64, n int64) bool {
	for w, word := range present {
		if word != 0 && int64(w)*64+int64(63-bits.LeadingZeros64(word)) >= n {
			return true
		}
	}
	return false
}

type streamRecord struct {
	Key   string            `json:"key"`
	ID    string            `json:"upload_id"`
	Note  string            `json:"note"`
	Meta  map[string]string `json:"meta"`
	Parts []store.Part      `json:"parts"`
}

func (m *Manager) recPath(id string) string  { return filepath.Join(m.dir, id+".rec") }
func (m *Manager) dataPath(id string) string { return filepath.Join(m.dir, id+".dat") }

// lockDir takes the journal's lock, or says who holds it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(filepath.Join(dir, "lock"))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal %s is in use by another ssecfs (pid %s): the same bucket and prefix cannot be mounted twice on one machine", dir, strings.TrimSpace(string(holder)))
		}
		return nil, err
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// writeRecordLocked makes e's record durable. Called with e.mu held.
// open says the file is being written: that state was never closed.
func (m *Manager) writeRecordLocked(e *Entry, open bool) error {
	sealed, err := m.sealRecordLocked(e, open)
	if err != nil {
		return err
	}
	// The spool's chunks first, then the record that points at them.
	f, err := e.spoolLocked()
	if err == nil {
		err = m.sync(f)
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if !e.recCharged {
		// Charged, never refused: a record is what makes the file safe.
		m.mu.Lock()
		m.used += recordCost
		m.mu.Unlock()
		e.recCharged = true
	}
	tmp := m.recPath(e.id) + ".tmp"
	if err := m.writeSync(tmp, sealed); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Rename(tmp, m.recPath(e.id)); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := m.syncDir(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	e.recSeq++
	e.recGen, e.durable, e.spoolChanged = e.gen, !open, false
	m.dropLazyLocked(e) // older than this one
	return nil
}

// sealRecordLocked returns e's next record, sealed. Called with e.mu held.
func (m *Manager) sealRecordLocked(e *Entry, open bool) ([]byte, error) {
	r := record{
		Key: e.key, Size: e.size, Mtime: e.attrs.Mtime.UnixNano(), Mode: e.attrs.Mode,
		UID: e.attrs.UID, GID: e.attrs.GID, Base: e.base, BaseLimit: e.baseLimit,
		Present: e.present, DeleteAfter: e.deleteAfter, Replaces: e.replaces, Seq: e.recSeq + 1,
	}
	if e.failed != nil {
		r.Failed = e.failed.Error()
	}
	r.Open = open
	if s := e.stream; s != nil && e.freedBelow > 0 {
		s.mu.Lock()
		var done []store.Part
		for _, p := range s.parts {
			if p.ETag == "" {
				break
			}
			done = append(done, p)
		}
		r.Stream = &streamRecord{Key: s.key, ID: s.id, Note: s.note, Meta: s.meta, Parts: done}
		s.mu.Unlock()
		r.FreedBelow = e.freedBelow
	}
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	sealed := m.seal.seal(nil, plain, []byte("record:"+e.id))
	clear(plain)
	return sealed, nil
}

// sync is f.Sync, counted (Syncs).
func (m *Manager) sync(f *os.File) error {
	m.syncs.Add(1)
	return f.Sync()
}

func (m *Manager) writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := m.sync(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes the journal folder's entries durable.
func (m *Manager) syncDir() error {
	d, err := os.Open(m.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return m.sync(d)
}

// A multipart upload in flight is noted in ID.mpu (sealed: key and upload
// ID) until it completes or is aborted. If the daemon dies in between, the
// next start aborts it, so no incomplete upload is left in the bucket.
type mpuRecord struct {
	Key      string `json:"key"`
	UploadID string `json:"upload_id"`
}

// trackUpload notes an upload in flight and returns the note's name.
func (m *Manager) trackUpload(key, uploadID string) string {
	id := newID()
	plain, _ := json.Marshal(mpuRecord{Key: key, UploadID: uploadID})
	sealed := m.seal.seal(nil, plain, []byte("mpu:"+id))
	if err := m.writeSync(filepath.Join(m.dir, id+".mpu"), sealed); err != nil {
		m.log.Warn("journal: cannot note a multipart upload; a crash would leave it in the bucket", "key", key, "err", err)
		return ""
	}
	return id
}

func (m *Manager) untrackUpload(id string) {
	if id != "" {
		os.Remove(filepath.Join(m.dir, id+".mpu"))
	}
}

// abortLeftUploads aborts the uploads a dead daemon left in flight.
func (m *Manager) abortLeftUploads(ids []string) {
	for _, id := range ids {
		path := filepath.Join(m.dir, id+".mpu")
		sealed, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		plain, err := m.seal.open(nil, sealed, []byte("mpu:"+id))
		var r mpuRecord
		if err != nil || json.Unmarshal(plain, &r) != nil {
			m.log.Warn("journal: unreadable note of a multipart upload left in place", "file", path)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = m.st.AbortMultipart(ctx, r.Key, r.UploadID)
		cancel()
		if err != nil {
			m.log.Warn("could not abort a multipart upload left by a crash; `ssecfs uploads --abort` can", "key", r.Key, "err", err)
			continue
		}
		m.log.Info("aborted a multipart upload left by a crash", "key", r.Key)
		os.Remove(path)
	}
}

// removeFiles deletes an entry's journal files.
func (m *Manager) removeFiles(id string) {
	os.Remove(m.recPath(id))
	os.Remove(m.newPath(id))
	os.Remove(m.dataPath(id))
}

// recover loads the records a previous run left: each is a file whose
// close had returned, waiting for upload. Spools without a record belong
// to files that were still open when the daemon died; their writers never
// got a successful close, and they are removed.
func (m *Manager) recover() error {
	names, err := os.ReadDir(m.dir)
	if err != nil {
		return err
	}
	withRecord := map[string]bool{}
	resumed := map[string]bool{} // notes of uploads a record resumes
	for _, d := range names {
		id, ok := strings.CutSuffix(d.Name(), ".rec")
		if !ok {
			continue
		}
		withRecord[id] = true
		e, open, err := m.load(id)
		if err != nil {
			m.log.Error("journal record left in place: cannot read it", "file", m.recPath(id), "err", err)
			continue
		}
		if open {
			m.log.Warn("discarding a file that was still being written when the daemon stopped", "key", e.key)
			e.f.Close()
			m.removeFiles(id)
			continue // its upload's note is aborted below
		}
		if e.stream != nil {
			resumed[e.stream.note] = true
		}
		e.restLocked() // opened again by its upload
		m.log.Info("resuming upload from the journal", "key", e.key, "size", e.size)
		m.mu.Lock()
		m.used += e.nPresent*e.cost() + recordCost
		e.recCharged = true
		m.addLocked(e)
		m.mu.Unlock()
	}
	var mpus []string
	for _, d := range names {
		if id, ok := strings.CutSuffix(d.Name(), ".mpu"); ok && !resumed[id] {
			mpus = append(mpus, id)
		}
	}
	m.abortLeftUploads(mpus)
	for _, d := range names {
		name := d.Name()
		if id, ok := strings.CutSuffix(name, ".dat"); ok && !withRecord[id] {
			m.log.Warn("discarding the spool of a file that was never closed before the daemon stopped", "file", name)
			os.Remove(filepath.Join(m.dir, name))
		}
		if id, ok := strings.CutSuffix(name, ".new"); ok && !withRecord[id] {
			os.Remove(filepath.Join(m.dir, name))
		}
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(m.dir, name))
		}
	}
	return nil
}

// load reads a record; open says it was written while the file was open.
func (m *Manager) load(id string) (*Entry, bool, error) {
	r, err := m.readRecord(m.recPath(id), id)
	if err != nil {
		return nil, false, err
	}
	nr := m.newerRecord(id, r)
	if nr != nil {
		r = nr
	}
	f, err := os.OpenFile(m.dataPath(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	e := &Entry{
		m: m, id: id, key: r.Key, size: r.Size, base: r.Base, baseLimit: r.BaseLimit,
		attrs:   Attrs{Mtime: time.Unix(0, r.Mtime), Mode: r.Mode, UID: r.UID, GID: r.GID},
		present: r.Present, f: f, deleteAfter: r.DeleteAfter, replaces: r.Replaces, gen: 1,
		recSeq: r.Seq, durable: true, lazy: nr != nil,
	}
	if e.lazy {
		// Put the newer record in place now (rare: a stop of the machine
		// inside commitDelay).
		if err := m.commitLocked(e); err == nil {
			err = m.syncDir()
		}
		if err != nil {
			f.Close()
			return nil, false, err
		}
	}
	for _, w := range e.present {
		for ; w != 0; w &= w - 1 {
			e.nPresent++
		}
	}
	if r.Stream != nil {
		// Resume the upload whose first parts are only in the bucket.
		s := &stream{key: r.Stream.Key, meta: r.Stream.Meta, id: r.Stream.ID, note: r.Stream.Note,
			ready: make(chan struct{}), parts: r.Stream.Parts, queued: len(r.Stream.Parts)}
		close(s.ready)
		e.stream, e.freedBelow, e.mtimeFixed = s, r.FreedBelow, true
	}
	return e, r.Open, nil
}

// readRecord reads and checks the record at path, of the entry id.
func (m *Manager) readRecord(path, id string) (*record, error) {
	sealed, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	plain, err := m.seal.open(nil, sealed, []byte("record:"+id))
	if err != nil {
		return nil, fmt.Errorf("%w (was the bucket mounted with another key?)", err)
	}
	var r record
	err = json.Unmarshal(plain, &r)
	clear(plain)
	if err == nil {
		err = r.check()
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}
