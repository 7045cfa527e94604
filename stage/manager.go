package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// Config sets up a Manager.
type Config struct {
	Dir string // the journal folder; created 0700
	// Key is the journal's AES-256 key, derived from the SSE-C key and
	// bound to the endpoint, bucket and prefix (keys.Key.JournalKey): the
	// SSE-C key itself never reaches the stage. The Manager keeps only
	// the cipher made from it.
	Key   []byte
	Store store.Store
	Log   *slog.Logger
	// Window is how long a closed file waits before upload, so that a
	// rename, chmod or utimes right after close costs no second upload.
	// 0 uploads before close returns.
	Window time.Duration
	// Cap bounds the journal's disk use. A writer that needs room waits
	// for uploads to make some (room.go).
	Cap int64
	// Stall is how long writers wait for room while no upload frees any
	// before they get ENOSPC; 0 is DefaultStall.
	Stall time.Duration
	// Parallel bounds concurrent uploads.
	Parallel int
	// Attempts is how many times an upload that failed for a reason that
	// does not heal by itself (access denied, another key) is tried before
	// it is reported failed (it stays in the journal). A network failure
	// is retried for as long as the mount lives (queue.go).
	Attempts int
	// RetryCap is the longest wait between two tries of an upload; 0 is
	// DefaultRetryCap.
	RetryCap time.Duration
	// DrainTimeout ends a drain (unmount, SIGTERM) once no upload has
	// succeeded for that long; 0 is DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Uploaded is told of every file that reached the bucket, with the
	// keyed HEAD that proved it. It is called with the entry locked: it
	// must not call back into the Manager.
	Uploaded func(key string, attrs store.Attrs)
	// Removed is told of every key the stage deleted: a file's old name
	// once it is uploaded under its new one. Called with no lock but the
	// key's (claim.go) held.
	Removed func(key string)
	// GaveUp is told of every upload that failed for good (its attempts
	// spent on a failure that does not heal by itself), with the entry
	// locked: it must not block or call back into the Manager.
	GaveUp func(key string, err error)
}

// Manager owns the entries of one mount.
//
// Lock order: Entry.upMu, a key lock (claim.go), Entry.mu, then
// Manager.mu; never two key locks.
type Manager struct {
	cfg    Config
	dir    string
	seal   sealer
	st     store.Store
	copier *store.Copier
	log    *slog.Logger
	window time.Duration
	lock   *os.File

	mu      sync.Mutex
	byKey   map[string]*Entry // entries by current key; guarded by mu, changed only by bindLocked and unbindLocked
	ix      index             // byKey by folder, old name and stream (index.go); guarded by mu
	queue   queue             // the queued entries by due time (heap.go); guarded by mu
	used    int64             // journal disk in use (room.go); guarded by mu
	waiting int               // writers waiting for room; guarded by mu
	freedAt time.Time         // when room was last freed; guarded by mu
	full    error             // why writers last got ENOSPC, nil once room was freed; guarded by mu
	// unreachable is since when uploads fail on the network, zero once
	// one succeeds; netErr is the last such failure. Guarded by mu.
	unreachable time.Time
	netErr      error
	draining    bool       // upload everything now; guarded by mu
	changed     *sync.Cond // signalled when an upload ends or a file is released; uses mu
	changes     uint64     // counts those signals, so a waiter misses none; guarded by mu
	// big admits one multipart upload at a time: each already sends its
	// parts in parallel, and their buffers bound the daemon's memory.
	big chan struct{}
	// streamSlots bounds the parts of streams in flight (stream.go).
	streamSlots chan struct{}
	wake        chan struct{}
	stop        chan struct{}
	done        chan struct{}
	running     int // uploads in flight; guarded by mu
	// backingOff: an upload waits out a backoff after a network failure,
	// to be cut short when the server answers again (Reached).
	backingOff atomic.Bool
	keyLocks   map[string]*keyLock // claim.go; guarded by mu
	// lazies are the entries with a record not yet synced, committed by
	// commitTimer (lazy.go). Guarded by mu.
	lazies      map[*Entry]struct{}
	commitTimer *time.Timer
	syncs       atomic.Int64 // fsyncs of the journal, for tests
	sent        atomic.Int64 // bytes handed to uploads (Progress)
	counts      counts       // stats.go
}

// Open takes the journal folder's lock, resumes what a previous run left,
// and starts the upload queue.
func Open(cfg Config) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Parallel = max(cfg.Parallel, 1)
	cfg.Attempts = max(cfg.Attempts, 1)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal folder: %w", err)
	}
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal folder: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if len(cfg.Key) != 32 {
		lock.Close()
		return nil, fmt.Errorf("journal key: %d bytes, want 32", len(cfg.Key))
	}
	seal, err := newSealer(cfg.Key)
	cfg.Key = nil // the sealer has it; the caller wipes its copy
	if err != nil {
		lock.Close()
		return nil, err
	}
	m := &Manager{
		cfg: cfg, dir: cfg.Dir, seal: seal, st: cfg.Store, copier: store.NewCopier(cfg.Store, cfg.Log),
		log: cfg.Log, window: cfg.Window, lock: lock, byKey: map[string]*Entry{}, ix: newIndex(), keyLocks: map[string]*keyLock{},
		lazies: map[*Entry]struct{}{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		big: make(chan struct{}, 1), streamSlots: make(chan struct{}, streamSlots),
	}
	m.changed = sync.NewCond(&m.mu)
	if err := m.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	go m.loop()
	return m, nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// addLocked puts a recovered entry in the Manager, queued. Called with
// m.mu held, before anyone else has e.
func (m *Manager) addLocked(e *Entry) {
	if old := m.byKey[e.key]; old != nil && old != e {
		old.to(stateDropped)
	}
	m.bindLocked(e.key, e)
	e.to(stateQueued)
	e.due = time.Now()
	m.queue.push(e, e.due, e.attempts > 0)
	m.poke()
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Lookup returns the entry of key, or nil.
func (m *Manager) Lookup(key string) *Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byKey[key]
}

// Hold returns the entry of key with one more handle counted on it, or nil
// if there is none. Unlike Lookup followed by OpenFile, an entry cannot be
// forgotten in between (which would turn the handle into an empty file).
func (m *Manager) Hold(key string, writer bool) *Entry {
	m.mu.Lock()
	e := m.byKey[key]
	m.mu.Unlock()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state().gone() { // forgotten or deleted meanwhile
		return nil
	}
	e.hold(writer, 1)
	return e
}

// OpenFile returns the entry for writing key, making one if there is none.
// base is the object's current version (nil for a new file); the entry
// starts from it, fetching its bytes only where a partial write needs
// them. writer counts an open handle that may write.
func (m *Manager) OpenFile(key string, base *Base, attrs Attrs, writer bool) (*Entry, error) {
	m.mu.Lock()
	e := m.byKey[key]
	m.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		if !e.state().gone() {
			e.hold(writer, 1)
			e.mu.Unlock()
			return e, nil
		}
		e.mu.Unlock() // forgotten meanwhile: start afresh
	}
	id := newID()
	f, err := os.OpenFile(m.dataPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	e = &Entry{m: m, id: id, key: key, attrs: attrs, f: f, gen: 1, appendOnly: base == nil}
	if base != nil {
		b := *base
		e.base, e.size, e.baseLimit = &b, b.Size, b.Size
		e.replaces = b.Key == key
	}
	e.hold(writer, 1)
	m.mu.Lock()
	if other := m.byKey[key]; other != nil { // raced with another opener
		m.mu.Unlock()
		f.Close()
		os.Remove(m.dataPath(id))
		return m.OpenFile(key, base, attrs, writer)
	}
	m.bindLocked(key, e)
	m.mu.Unlock()
	return e, nil
}

// Rename moves an entry to newKey; it replaces any entry there. If the
// entry's old name exists in the bucket (an uploaded file, or one being
// uploaded), that object is deleted once the file is uploaded under its
// new name, so a rename costs no copy. It reports false if the entry was
// forgotten meanwhile (uploaded): then the object is renamed in the bucket.
func (m *Manager) Rename(e *Entry, newKey string) bool {
	e.mu.Lock()
	if e.state().gone() {
		e.mu.Unlock()
		return false
	}
	old := e.key
	if e.replaces || e.base != nil && e.base.Key == old || e.cleanGen > 0 {
		e.deleteAfter = append(e.deleteAfter, old)
	}
	e.replaces = false
	e.key = newKey
	e.gen++
	m.mu.Lock()
	if other := m.byKey[newKey]; other != nil && other != e {
		other.to(stateDropped) // without other.mu, which lock order forbids here
		go m.discard(other)
	}
	m.bindLocked(newKey, e) // off old, onto newKey, with the old name indexed
	m.mu.Unlock()
	e.mu.Unlock()
	_ = m.persistIfClosed(e) // logged; the rename stands in memory and in the next record
	return true
}

// Drop forgets an entry (its file was deleted): no upload, journal removed.
func (m *Manager) Drop(e *Entry) {
	e.mu.Lock()
	e.to(stateDropped)
	m.mu.Lock()
	m.unbindLocked(e)
	m.mu.Unlock()
	e.mu.Unlock()
	m.discard(e)
}

func (m *Manager) discard(e *Entry) {
	e.upMu.Lock() // wait out an upload in flight
	defer e.upMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	m.closeDroppedLocked(e)
}

// closeDroppedLocked frees a dropped entry's spool, unless a handle still
// has the file open (POSIX lets a program use a deleted file it holds);
// the last Release frees it then.
func (m *Manager) closeDroppedLocked(e *Entry) {
	if s := e.stream; s != nil {
		e.stream = nil
		m.reindex(e)
		go func() {
			s.wg.Wait()
			<-s.ready
			m.abortStream(s)
		}()
	}
	if e.writers+e.readers > 0 {
		return
	}
	if e.f != nil {
		e.f.Close()
		e.f = nil
	}
	m.removeFiles(e.id) // before its room is given back
	m.release(e.nPresent * e.cost())
	e.nPresent = 0
	e.dischargeLocked()
}

// signalLocked wakes Drain. Called with m.mu held.
func (m *Manager) signalLocked() {
	m.changes++
	m.changed.Broadcast()
}

// reserve takes n bytes of the journal's cap.
func (m *Manager) reserve(n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.Cap > 0 && m.used+n > m.spoolCap() {
		return errNoSpace
	}
	m.used += n
	return nil
}

// nearCap says the spool has less than a few stream parts of room left.
func (m *Manager) nearCap() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.Cap > 0 && m.used > m.spoolCap()-(streamSlots+2)*store.MinPartSize*(chunkSize+28)/chunkSize
}

// release gives n bytes of the cap back and wakes the writers waiting
// for room.
func (m *Manager) release(n int64) {
	m.mu.Lock()
	m.used -= n
	if n > 0 {
		m.freedAt, m.full = time.Now(), nil
	}
	m.signalLocked()
	m.mu.Unlock()
}

func (m *Manager) readBase(ctx context.Context, b Base, off int64, buf []byte) error {
	_, err := m.st.ReadRange(ctx, b.Key, store.Range{Offset: off, IfMatch: b.ETag, Plaintext: b.Plain}, buf)
	return err
}

// persist makes e durable in the journal (if it has changes).
func (m *Manager) persist(e *Entry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state().gone() || e.gen == e.cleanGen {
		return nil
	}
	return m.writeRecordLocked(e, false)
}

// persistIfClosed records a change made to a file with no open writer
// (a rename or chmod after close), which no later close would record:
// lazily if only its metadata changed (lazy.go).
func (m *Manager) persistIfClosed(e *Entry) error {
	e.mu.Lock()
	var err error
	closed, key := e.writers == 0, e.key
	if closed {
		err = m.recordChangeLocked(e)
	}
	e.mu.Unlock()
	if closed {
		if err != nil {
			m.log.Error("journal write failed", "key", key, "err", err)
		}
		m.schedule(e)
	}
	return err
}

// schedule queues e for upload after the write-back window, once no
// handle may write it any more.
func (m *Manager) schedule(e *Entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.writers > 0 || e.state().gone() {
		return
	}
	if e.gen == e.cleanGen {
		if e.readers == 0 {
			m.forgetLocked(e)
		} else {
			// Still queued from before a writer opened it (an fsync
			// stored it since): the queue passed it over while the writer
			// held it, and takes it now, to find nothing left to upload.
			m.enqueue(e)
		}
		return
	}
	e.to(stateQueued)
	e.due = time.Now().Add(m.window)
	m.mu.Lock()
	m.queue.push(e, e.due, e.attempts > 0)
	m.signalLocked() // a file released: a Drain may go on
	m.mu.Unlock()
	m.poke()
}

// forgetLocked removes a clean, closed entry: it is uploaded. Called with
// e.mu held.
func (m *Manager) forgetLocked(e *Entry) {
	m.mu.Lock()
	m.unbindLocked(e)
	m.mu.Unlock()
	e.to(stateUploaded)
	// The files go before their room is given back: a writer waiting for
	// it must not find the disk still holding them.
	var freed int64
	if e.f != nil {
		e.f.Close()
		e.f = nil
		freed = e.nPresent * e.cost()
	}
	m.removeFiles(e.id)
	m.release(freed)
	e.dischargeLocked()
	m.mu.Lock()
	m.signalLocked()
	m.mu.Unlock()
}

// MetaOf is the x-amz-meta-* metadata of a file, as rclone and s3fs write
// it: mtime as decimal seconds with nine decimals (exact nanoseconds, for
// rsync), mode as s3fs's decimal st_mode, uid and gid.
func MetaOf(a Attrs) map[string]string {
	mode := a.Mode
	if mode&0o170000 == 0 {
		mode |= 0o100000 // a regular file, as s3fs writes it
	}
	return map[string]string{
		"mtime": fmt.Sprintf("%d.%09d", a.Mtime.Unix(), a.Mtime.Nanosecond()),
		"mode":  fmt.Sprint(mode),
		"uid":   fmt.Sprint(a.UID),
		"gid":   fmt.Sprint(a.GID),
	}
}

// Progress counts the bytes handed to uploads so far: it rises while
// uploads move (a multipart upload reads its parts as they go), and stands
// still while the network does.
func (m *Manager) Progress() int64 { return m.sent.Load() }

// Close stops the queue and releases the journal. Entries not uploaded
// stay in the journal for the next mount.
func (m *Manager) Close() {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	if m.commitTimer != nil {
		m.commitTimer.Stop()
	}
	m.mu.Unlock()
	m.commitLazy()
	m.lock.Close()
}
