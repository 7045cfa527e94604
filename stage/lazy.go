package stage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Records written lazily. What rsync and backup tools do to each file once
// written (chmod, utimes, rename into place) changes only its metadata:
// the spool and the record before it are already on disk. Waiting for the
// disk three times per change (a new record, its folder) made those calls
// 1-2 ms each, most of a small file's cost. So such a change is written at
// once to ID.new, which survives the daemon being killed (it is in the
// kernel's page cache), and a committer makes it durable within
// commitDelay: synced, renamed over ID.rec, the folder synced once for
// every change of that second. A local filesystem does the same with its
// metadata (ext4 commits every 5 s). After a power loss inside that second
// the file resumes with its data under its earlier name and attributes:
// ID.rec stays whole, since ID.new is written beside it, never over it,
// and a torn ID.new fails authentication. Each record carries a sequence
// number, so a run that finds both takes the newer.

// commitDelay bounds how long a lazily recorded change waits for the disk.
const commitDelay = time.Second

func (m *Manager) newPath(id string) string { return filepath.Join(m.dir, id+".new") }

// recordChangeLocked records e's changes not yet in its record, if any
// (a chmod or rename seen while a writer was still open is recorded by its
// release, which the kernel sends after close(2) returned). Called with
// e.mu held.
func (m *Manager) recordChangeLocked(e *Entry) error {
	if e.state().gone() || e.gen == e.cleanGen || e.gen == e.recGen && e.durable {
		return nil
	}
	return m.recordLocked(e)
}

// recordLocked records a change of e made with no open writer: lazily
// when only its metadata changed since its last durable record, else
// durably. Called with e.mu held.
func (m *Manager) recordLocked(e *Entry) error {
	if !e.durable || e.spoolChanged || e.writers > 0 {
		return m.writeRecordLocked(e, false)
	}
	sealed, err := m.sealRecordLocked(e, false)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(m.newPath(e.id), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(sealed)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	e.recSeq++
	e.recGen, e.lazy = e.gen, true
	m.mu.Lock()
	m.lazies[e] = struct{}{}
	if m.commitTimer == nil {
		m.commitTimer = time.AfterFunc(commitDelay, m.commitLazy)
	}
	m.mu.Unlock()
	return nil
}

// commitLazy makes every record written lazily durable.
func (m *Manager) commitLazy() {
	m.mu.Lock()
	set := m.lazies
	m.lazies = map[*Entry]struct{}{}
	m.commitTimer = nil
	m.mu.Unlock()
	n := 0
	for e := range set {
		e.mu.Lock()
		if e.lazy && !e.state().gone() {
			if err := m.commitLocked(e); err != nil {
				m.log.Error("journal write failed: a metadata change is not yet on disk", "key", e.key, "err", err)
			}
			n++
		}
		e.mu.Unlock()
	}
	if n > 0 {
		if err := m.syncDir(); err != nil {
			m.log.Error("journal write failed: metadata changes are not yet on disk", "err", err)
		}
	}
}

// commitLocked syncs e's lazy record and puts it in place of ID.rec; the
// caller syncs the folder. Called with e.mu held.
func (m *Manager) commitLocked(e *Entry) error {
	f, err := os.OpenFile(m.newPath(e.id), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = m.sync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(m.newPath(e.id), m.recPath(e.id))
	}
	if err == nil {
		e.lazy = false
	}
	return err
}

// dropLazyLocked removes e's lazy record: a durable one newer than it was
// just written. Called with e.mu held.
func (m *Manager) dropLazyLocked(e *Entry) {
	if e.lazy {
		os.Remove(m.newPath(e.id))
		e.lazy = false
	}
}

// newerRecord returns the lazy record of id if it is newer than r (the
// one in ID.rec), or nil. A lazy record that cannot be read was torn by a
// stop of the machine before its commit: the file resumes as ID.rec has it.
func (m *Manager) newerRecord(id string, r *record) *record {
	nr, err := m.readRecord(m.newPath(id), id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		m.log.Warn("a metadata change made just before the machine stopped never reached the disk: the file resumes with its earlier name and attributes", "key", r.Key, "err", err)
	case nr.Seq > r.Seq:
		return nr
	}
	os.Remove(m.newPath(id))
	return nil
}

// commitNow makes e's lazy record durable at once: an fsync(2) of the file
// returns an error without uploading it, and must leave it safe on disk.
func (m *Manager) commitNow(e *Entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.lazy || e.state().gone() {
		return
	}
	err := m.commitLocked(e)
	if err == nil {
		err = m.syncDir()
	}
	if err != nil {
		m.log.Error("journal write failed: a metadata change is not yet on disk", "key", e.key, "err", err)
	}
}
