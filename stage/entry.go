package stage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/store"
)

// chunkSize is the unit of the spool: a write smaller than a chunk reads,
// changes and rewrites one sealed chunk.
const chunkSize = 64 << 10

// Base is the object a file's unchanged bytes come from.
type Base struct {
	Key   string
	ETag  string
	Size  int64
	Plain bool // stored without SSE-C
}

// Attrs is the metadata a file is uploaded with.
type Attrs struct {
	Mtime    time.Time
	Mode     uint32 // permission bits, or S_IFLNK|0777 for a symlink
	UID, GID uint32
}

// Entry is one file with changes not yet in the bucket: its bytes are the
// chunks in the spool where present, else the base object's bytes below
// baseLimit, else zeros. Its life (open, queued, uploading, failed, and
// the ends uploaded and dropped) is its state (state.go).
//
// Lock order: upMu before mu before Manager.mu. upMu is held for a whole
// upload, so one entry is never uploaded twice at once; mu guards the
// fields and is never held across a network request except to fetch base
// bytes for a partial chunk write.
type Entry struct {
	m  *Manager
	id string

	upMu sync.Mutex

	// st is the entry's state (state.go): read with e.state(), moved with
	// e.to or e.moveIf (with mu held, but for a drop: see state), never
	// stored directly.
	st atomic.Uint32

	mu        sync.Mutex
	key       string
	size      int64
	attrs     Attrs
	base      *Base
	baseLimit int64 // base bytes at or past this offset are gone (truncated)
	// lowSince is the smallest size since the running upload took its
	// snapshot: base bytes past it are gone even if the upload read them.
	lowSince    int64
	present     []uint64 // bitset of chunks held in the spool
	nPresent    int64
	f           *os.File // the spool: chunk i at i*slot, sealed; nil while idle (spoolLocked)
	writers     int      // open handles that may write
	readers     int      // open handles that only read
	gen         uint64   // bumped by every change
	cleanGen    uint64   // gen of the last successful upload
	due         time.Time
	attempts    int
	failed      error    // last upload failure; sticky until an upload succeeds
	toldGaveUp  bool     // Config.GaveUp was told of this failure; until an upload succeeds
	deleteAfter []string // keys to delete once uploaded (the names before renames)
	// replaces: the bucket holds an object under key that this file
	// replaces (its base, even once truncated away, or its own upload), so
	// a rename must delete it.
	replaces   bool
	appendOnly bool    // a new file written front to back so far: it may stream
	stream     *stream // its upload while it is written (stream.go), or nil
	mtimeFixed bool    // writes no longer move the mtime (the stream holds it)
	// freedBelow: bytes before it were uploaded by the stream and dropped
	// from the spool to make room (stream.go); they cannot be read back
	// or rewritten until the upload completes.
	freedBelow int64
	// recCharged: the record's cost is counted in the journal's use
	// (room.go) until its files are removed.
	recCharged bool
	// Its records (journal.go, lazy.go): recSeq numbers the last one and
	// recGen is the gen it recorded; durable says ID.rec holds a synced
	// record of the closed file (one written while open is discarded by a
	// restart); spoolChanged says the spool changed since, so the next
	// record must be synced with it; lazy says ID.new holds a newer record
	// not yet synced.
	recSeq       uint64
	recGen       uint64
	durable      bool
	spoolChanged bool
	lazy         bool

	ix indexed // what the Manager's indexes hold of it (index.go); guarded by Manager.mu
}

func (e *Entry) slot() int64 { return int64(chunkSize + e.m.seal.overhead()) }

func (e *Entry) ad(i int64) []byte {
	ad := make([]byte, len(e.id)+8)
	copy(ad, e.id)
	binary.BigEndian.PutUint64(ad[len(e.id):], uint64(i))
	return ad
}

func (e *Entry) has(i int64) bool {
	w := i / 64
	return w < int64(len(e.present)) && e.present[w]&(1<<(i%64)) != 0
}

func (e *Entry) mark(i int64, on bool) {
	w := i / 64
	for int64(len(e.present)) <= w {
		e.present = append(e.present, 0)
	}
	was := e.present[w]&(1<<(i%64)) != 0
	if on && !was {
		e.present[w] |= 1 << (i % 64)
		e.nPresent++
	} else if !on && was {
		e.present[w] &^= 1 << (i % 64)
		e.nPresent--
	}
}

// sealedPool holds buffers for one sealed chunk: every chunk written or
// read back passes through one, and a 1 GiB file is 16,384 chunks.
var sealedPool = sync.Pool{New: func() any { return new([chunkSize + 64]byte) }}

// openChunkLocked decrypts chunk i, which the spool holds, into dst[:0]
// (whose capacity is at least chunkSize) and returns the plaintext.
func (e *Entry) openChunkLocked(i int64, dst []byte) ([]byte, error) {
	pooled := sealedPool.Get().(*[chunkSize + 64]byte)
	defer sealedPool.Put(pooled)
	sealed := pooled[:e.slot()]
	f, err := e.spoolLocked()
	if err != nil {
		return nil, err
	}
	if _, err := f.ReadAt(sealed, i*e.slot()); err != nil && err != io.EOF {
		return nil, fmt.Errorf("spool of %q: %w", e.key, err)
	}
	out, err := e.m.seal.open(dst[:0], sealed, e.ad(i))
	if err != nil {
		return nil, fmt.Errorf("spool of %q chunk %d: %w", e.key, i, err)
	}
	return out, nil
}

// baseRunLocked returns how many bytes from pos, a chunk boundary, up to
// end are whole chunks that the spool lacks and the base holds entirely,
// or 0 if the chunk at pos is not one.
func (e *Entry) baseRunLocked(pos, end int64) int64 {
	if e.base == nil || pos%chunkSize != 0 || pos < e.freedBelow {
		return 0
	}
	run := int64(0)
	for i := pos / chunkSize; ; i++ {
		next := (i + 1) * chunkSize
		if next > end || next > e.baseLimit || e.has(i) {
			return run
		}
		run += chunkSize
	}
}

// readChunkLocked returns chunk i's plaintext (chunkSize bytes).
func (e *Entry) readChunkLocked(ctx context.Context, i int64) ([]byte, error) {
	buf := make([]byte, chunkSize)
	if e.has(i) {
		return e.openChunkLocked(i, buf)
	}
	start := i * chunkSize
	if start < e.freedBelow {
		return nil, errDropped
	}
	if e.base != nil && start < e.baseLimit {
		n := min(int64(chunkSize), e.baseLimit-start)
		if err := e.m.readBase(ctx, *e.base, start, buf[:n]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// writeChunkLocked seals plain as chunk i.
func (e *Entry) writeChunkLocked(i int64, plain []byte) error {
	if !e.has(i) {
		err := e.m.reserve(e.cost())
		if errors.Is(err, errNoSpace) && e.dropStreamedLocked() {
			err = e.m.reserve(e.cost())
		}
		if err != nil {
			return err
		}
	}
	pooled := sealedPool.Get().(*[chunkSize + 64]byte)
	defer sealedPool.Put(pooled)
	sealed := e.m.seal.seal(pooled[:0], plain, e.ad(i))
	f, err := e.spoolLocked()
	if err == nil {
		_, err = f.WriteAt(sealed, i*e.slot())
	}
	if err != nil {
		if !e.has(i) {
			e.m.release(e.cost())
		}
		return fmt.Errorf("spool of %q: %w", e.key, err)
	}
	e.mark(i, true)
	return nil
}

// WriteAt writes p at off. When the journal is full it waits for uploads
// to make room (room.go); a full disk, or a journal that cannot make room,
// is ENOSPC, with what was written before it accepted.
func (e *Entry) WriteAt(ctx context.Context, p []byte, off int64) (int, error) {
	done := 0
	var waiting time.Time // since when the writer waits for room
	for {
		n, err := e.writeAt(ctx, p[done:], off+int64(done))
		if e.afterOwnUpload(err) {
			n, err = e.writeAt(ctx, p[done:], off+int64(done))
		}
		done += n
		if n > 0 {
			e.m.pump(e) // a streaming file's parts go, and leave room
		}
		if !errors.Is(err, errNoSpace) { // a want of room that waiting may cure
			return done, err
		}
		if waiting.IsZero() {
			waiting = time.Now()
		}
		if werr := e.m.waitRoom(ctx, e, waiting); werr != nil {
			return done, werr
		}
	}
}

func (e *Entry) writeAt(ctx context.Context, p []byte, off int64) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if off < e.freedBelow {
		return 0, errDropped
	}
	e.noteWriteLocked(off, off == e.size)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		i := pos / chunkSize
		in := pos - i*chunkSize
		k := min(int64(len(p)-n), chunkSize-in)
		var plain []byte
		if k == chunkSize {
			plain = p[n : n+chunkSize]
		} else {
			c, err := e.readChunkLocked(ctx, i)
			if err != nil {
				return n, err
			}
			copy(c[in:], p[n:n+int(k)])
			plain = c
		}
		if err := e.writeChunkLocked(i, plain); err != nil {
			return n, err
		}
		n += int(k)
		e.size = max(e.size, off+int64(n))
		e.gen++
	}
	if !e.mtimeFixed {
		e.attrs.Mtime = time.Now() // as write(2) does; a later utimes wins
	}
	return n, nil
}

// ReadAt reads the file as written so far.
func (e *Entry) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	read := func() (int, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.readAtLocked(ctx, p, off)
	}
	n, err := read()
	if e.afterOwnUpload(err) {
		n, err = read()
	}
	return n, err
}

// afterOwnUpload reports whether err says the base object changed and, if
// so, waits for the upload in flight: it is this file's own upload that
// replaced the base, and it ends by making the new object the base. The
// caller then tries once more; a change by someone else stays ESTALE.
func (e *Entry) afterOwnUpload(err error) bool {
	if !errors.Is(err, store.ErrChanged) {
		return false
	}
	e.upMu.Lock()
	e.upMu.Unlock() //nolint:staticcheck // waiting, not guarding
	return true
}

func (e *Entry) readAtLocked(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= e.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), e.size)
	n := 0
	for pos := off; pos < end; pos = off + int64(n) {
		i := pos / chunkSize
		if pos == i*chunkSize && end-pos >= chunkSize && e.has(i) {
			// A whole chunk (an upload's part is 128 of them): decrypted
			// straight into p, with no copy.
			if _, err := e.openChunkLocked(i, p[n:n+chunkSize]); err != nil {
				return n, err
			}
			n += chunkSize
			continue
		}
		if run := e.baseRunLocked(pos, end); run > 0 {
			// Whole chunks only the base holds (the unchanged bytes of an
			// edited file): one ranged GET for all of them, not one each.
			if err := e.m.readBase(ctx, *e.base, pos, p[n:n+int(run)]); err != nil {
				return n, err
			}
			n += int(run)
			continue
		}
		c, err := e.readChunkLocked(ctx, i)
		if err != nil {
			return n, err
		}
		n += copy(p[n:end-off], c[pos-i*chunkSize:])
	}
	return n, nil
}

// Truncate sets the size. Bytes past the new end are forgotten: a later
// extension reads zeros there, not the old bytes.
func (e *Entry) Truncate(ctx context.Context, size int64) error { return e.resize(ctx, size, false) }

// Extend grows the file to size with zeros if it is shorter (fallocate(2)
// without FALLOC_FL_KEEP_SIZE), in one step with respect to writes.
func (e *Entry) Extend(ctx context.Context, size int64) error { return e.resize(ctx, size, true) }

func (e *Entry) resize(ctx context.Context, size int64, growOnly bool) error {
	err := e.truncate(ctx, size, growOnly)
	if e.afterOwnUpload(err) {
		err = e.truncate(ctx, size, growOnly)
	}
	return err
}

func (e *Entry) truncate(ctx context.Context, size int64, growOnly bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if growOnly && size <= e.size {
		return nil
	}
	e.lowSince = min(e.lowSince, size)
	if size < e.freedBelow {
		return errDropped
	}
	e.noteWriteLocked(size, false)
	if size == 0 && e.stream == nil {
		// Nothing of the old content is left: a new file (O_TRUNC), which
		// may stream.
		e.base, e.baseLimit, e.appendOnly = nil, 0, true
	}
	if size < e.size {
		first := (size + chunkSize - 1) / chunkSize // first chunk wholly past the end
		// Give the disk space back (the file keeps its length), then the
		// room in the journal's cap.
		if off := first * e.slot(); off < (e.size/chunkSize+1)*e.slot() {
			if f, err := e.spoolLocked(); err == nil {
				_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, (e.size/chunkSize+1)*e.slot()-off)
			}
		}
		var freed int64
		for i := first; i*chunkSize < e.size; i++ {
			if e.has(i) {
				e.mark(i, false)
				freed += e.cost()
			}
		}
		e.m.release(freed)
		if in := size % chunkSize; in != 0 {
			i := size / chunkSize
			c, err := e.readChunkLocked(ctx, i)
			if err != nil {
				return err
			}
			clear(c[in:])
			if err := e.writeChunkLocked(i, c); err != nil {
				return err
			}
		}
		e.baseLimit = min(e.baseLimit, size)
	}
	if size != e.size && !e.mtimeFixed {
		e.attrs.Mtime = time.Now()
	}
	e.size = size
	e.gen++
	return nil
}

// Info is a snapshot of an entry for attributes and listings.
type Info struct {
	Key     string
	Size    int64
	Attrs   Attrs
	Failed  error
	Pending bool // changes not yet in the bucket
}

// Info returns the entry's current state.
func (e *Entry) Info() Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Info{Key: e.key, Size: e.size, Attrs: e.attrs, Failed: e.failed, Pending: e.gen != e.cleanGen}
}

// SetAttrs changes the metadata the file will be uploaded with.
func (e *Entry) SetAttrs(f func(*Attrs)) error {
	e.mu.Lock()
	f(&e.attrs)
	e.gen++
	e.mu.Unlock()
	return e.m.persistIfClosed(e)
}

// Flush is close(2): with no write-back window the file is uploaded now
// and the result returned; otherwise it is made durable in the journal,
// and an earlier upload failure of this file is returned.
func (e *Entry) Flush(ctx context.Context) error {
	if e.m.window <= 0 {
		return e.Sync(ctx)
	}
	if err := e.m.persist(e); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failed
}

// Sync is fsync(2): it returns once the file's current state is in the
// bucket, or with the error that kept it out. A network failure the store
// already retried (a connection reset or a body cut again and again) is
// given two more tries: the caller cannot retry a close. Offline (the
// server did not answer a probe either), the first answer stands: the
// file stays queued and goes when the server is back.
func (e *Entry) Sync(ctx context.Context) error {
	err := e.m.upload(ctx, e)
	for try := 0; try < 2 && errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrOffline) && ctx.Err() == nil; try++ {
		err = e.m.upload(ctx, e)
	}
	if err != nil {
		e.m.commitNow(e) // it stays in the journal: all of it on disk
	}
	return err
}

// Release is the last close of one open handle.
func (e *Entry) Release(writer bool) {
	e.mu.Lock()
	e.hold(writer, -1)
	if e.state().gone() {
		e.m.closeDroppedLocked(e)
		e.mu.Unlock()
		return
	}
	if writer && e.writers == 0 {
		if err := e.m.recordChangeLocked(e); err != nil {
			e.m.log.Error("journal write failed", "key", e.key, "err", err)
		}
	}
	e.restLocked()
	e.mu.Unlock()
	e.m.schedule(e)
}

// spoolLocked returns the spool, opening it again if it rests. A file
// waiting for upload with no handle open holds no descriptor: a copy of
// 100,000 small files that outruns its uploads must not need 100,000 (the
// hard limit is often 4,096 to 524,288). Called with e.mu held.
func (e *Entry) spoolLocked() (*os.File, error) {
	if e.f != nil {
		return e.f, nil
	}
	if e.state().gone() {
		return nil, fmt.Errorf("spool of %q: the file is gone", e.key)
	}
	f, err := os.OpenFile(e.m.dataPath(e.id), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool of %q: %w", e.key, err)
	}
	e.f = f
	return f, nil
}

// restLocked closes the spool while nothing uses it: no handle open, no
// upload reading it. Its data is in the page cache or on disk; fsync of
// the next record syncs the file through any descriptor. Called with e.mu
// held.
func (e *Entry) restLocked() {
	if e.f != nil && e.writers == 0 && e.readers == 0 && e.state() != stateUploading && !e.state().gone() {
		e.f.Close()
		e.f = nil
	}
}

// hold counts an open handle in or out. Called with e.mu held.
func (e *Entry) hold(writer bool, n int) {
	if writer {
		e.writers += n
	} else {
		e.readers += n
	}
}

// Touch records a change made without an open handle (truncate by path).
func (e *Entry) Touch() error { return e.m.persistIfClosed(e) }

// DeleteAfter lists the old names to delete once the file is uploaded.
func (e *Entry) DeleteAfter() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.deleteAfter...)
}

// errNoSpace is the writer's ENOSPC when the spool is at its cap.
var errNoSpace = fmt.Errorf("spool full: %w", syscall.ENOSPC)

// errDropped: the bytes were uploaded and dropped from a full journal.
var errDropped = fmt.Errorf("this part of the file is already uploaded and no longer in the journal (it was full); it cannot be read or changed until the upload completes: %w", syscall.EIO)
