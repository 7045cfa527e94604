package fs

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/ns"
	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// File is an object, or a file of this mount waiting for upload.
//
// Lock order: File.mu is a leaf.
type File struct {
	fusefs.Inode
	fsys *FS

	mu       sync.Mutex
	dir      *ns.Folder  // guarded by mu (renames move it)
	key      string      // guarded by mu (renames change it)
	listed   store.Entry // what the last listing or lookup said; guarded by mu
	lastOpen string      // ETag of the last open, to keep the page cache; guarded by mu
	// pinned counts the open handles reading the bucket's object, by the
	// ETag each is pinned to; guarded by mu.
	pinned map[string]int
}

var (
	_ = (fusefs.NodeGetattrer)((*File)(nil))
	_ = (fusefs.NodeSetattrer)((*File)(nil))
	_ = (fusefs.NodeOpener)((*File)(nil))
	_ = (fusefs.NodeReader)((*File)(nil))
	_ = (fusefs.NodeWriter)((*File)(nil))
	_ = (fusefs.NodeFlusher)((*File)(nil))
	_ = (fusefs.NodeFsyncer)((*File)(nil))
	_ = (fusefs.NodeReleaser)((*File)(nil))
)

// Key is the file's object key.
func (f *File) Key() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.key
}

func (f *File) moved(d *ns.Folder, key string) {
	f.mu.Lock()
	f.dir, f.key = d, key
	f.mu.Unlock()
}

// setListed records what the listing (or a lookup) said of the object.
func (f *File) setListed(obj store.Entry) {
	f.mu.Lock()
	f.listed = obj
	f.mu.Unlock()
}

// entry is the file's waiting changes, or nil.
func (f *File) entry() *stage.Entry {
	if f.fsys.stage == nil {
		return nil
	}
	return f.fsys.stage.Lookup(f.Key())
}

// attrs returns the file's attributes (ns.Folder.ObjectAttrs).
func (f *File) attrs(ctx context.Context) (store.Attrs, error) {
	f.mu.Lock()
	d, key := f.dir, f.key
	f.mu.Unlock()
	if d == nil {
		return f.fsys.ns.Head(ctx, key)
	}
	return d.ObjectAttrs(ctx, key)
}

// openAttrs is attrs for opening: a listing's answer is proven by a keyed
// HEAD first, unless the first block of that version is cached or on its
// way (a keyed GET that succeeds proves as much; the folder's read-ahead
// fetches the small files' first blocks with the listing's answer, so that
// `cp -r` out of a folder costs no HEAD per file, nor a round trip of its
// own when it catches up with the read-ahead).
func (f *File) openAttrs(ctx context.Context) (store.Attrs, error) {
	h, err := f.attrs(ctx)
	if err != nil || !h.Listed {
		return h, err
	}
	c, key := f.fsys.opts.Cache, f.Key()
	if id := (cache.BlockID{Key: key, ETag: h.ETag}); h.Size > 0 && c.Present(id) {
		if err := c.Load(ctx, id, int(min(h.Size, c.BlockSize())), f.fsys.fetcher(key, h)); err == nil {
			return h, nil
		}
	}
	return f.fsys.ns.Proven(ctx, key)
}

// Getattr answers from the file's current version (cached for the TTL),
// even when fh is a handle pinned to an older one: the kernel passes no
// handle for stat(2), and go-fuse then hands us any open handle of the
// file, so its pinned attributes would keep a stat of the path stale past
// the TTL for as long as anything holds the file open. Only when the
// object is gone does an open handle's version answer, as an open deleted
// file still answers fstat(2).
func (f *File) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	_, errno := f.fill(detach(ctx), &out.Attr)
	if h, ok := fh.(*handle); ok && h.entry == nil && errno == syscall.ENOENT {
		f.fsys.fillFile(&out.Attr, h.attrs)
		return 0
	}
	return errno
}

// fill answers a stat: a waiting file from its entry, else the size and
// metadata of the HEAD answer. Readdirplus is off, so `find` and plain
// `ls` cost no HEAD at all.
func (f *File) fill(ctx context.Context, out *fuse.Attr) (ns.Attrs, syscall.Errno) {
	if e := f.entry(); e != nil {
		a := ns.Waiting(e.Info())
		f.fsys.fillFile(out, a)
		return a, 0
	}
	h, err := f.attrs(ctx)
	f.mu.Lock()
	a := ns.Listed(f.listed)
	key := f.key
	f.mu.Unlock()
	switch {
	case err == nil && f.fsys.ns.Refused(h):
		f.fsys.ns.NoticePlain(key)
		return a, syscall.ENOENT // hidden (ns/plain.go)
	case err == nil:
		a = f.fsys.ns.Object(key, h, a)
	case errors.Is(err, store.ErrOtherKey) || errors.Is(err, store.ErrAccessDenied):
		// Shown from the listing; opening it gives EACCES.
		f.fsys.ns.WarnOnce(key, "object is encrypted with another key or not readable; it shows but cannot be opened", "err", err)
	default:
		return a, toErrno(err)
	}
	f.fsys.fillFile(out, a)
	return a, 0
}

// handle is one open file: a reader pinned to the object version seen at
// open, or the file's entry when it has changes (or may get them).
type handle struct {
	r      *cache.Reader
	etag   string // the version r reads
	attrs  ns.Attrs
	entry  *stage.Entry
	writer bool
}

const writeFlags = syscall.O_WRONLY | syscall.O_RDWR | syscall.O_TRUNC | syscall.O_APPEND

// Open, like every call, runs detached from the caller's interrupts
// (errno.go).
func (f *File) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	ctx = detach(ctx)
	writer := flags&writeFlags != 0
	if writer && f.fsys.stage == nil {
		return nil, 0, syscall.EROFS
	}
	if e := f.entry(); e != nil || writer {
		h, errno := f.openEntry(ctx, writer, flags&syscall.O_TRUNC != 0)
		return h, 0, errno
	}
	h, err := f.openAttrs(ctx)
	key := f.Key()
	if err != nil {
		switch {
		case errors.Is(err, store.ErrOtherKey):
			f.fsys.ns.WarnOnce(key, "object is encrypted with another key; open refused")
		case !errors.Is(err, store.ErrNotFound):
			// The server could not be asked (its answer proves the key
			// before a read): the reason belongs in the log, as a
			// failed read's does.
			f.fsys.log.Error("open failed", "key", key, "err", err)
		}
		return nil, 0, toErrno(err)
	}
	if f.fsys.ns.Refused(h) {
		f.fsys.ns.NoticePlain(key)
		return nil, 0, plainErrno
	}
	a := f.fsys.ns.Object(key, h, ns.Attrs{Mode: 0o644})
	etag := h.ETag
	fh := &handle{r: f.fsys.opts.Cache.NewReader(key, etag, h.Size, f.fsys.opts.ReadAhead, f.fsys.fetcher(key, h)), etag: etag, attrs: a}
	f.mu.Lock()
	d := f.dir
	f.mu.Unlock()
	if d != nil && len(key) > len(d.Prefix()) {
		f.fsys.filesAhead(ctx, d, key[len(d.Prefix()):])
	}

	// The kernel's page cache of this file is still good if the object is
	// the version it cached last time. The kernel keeps one page cache per
	// file, shared by its handles: while a handle pinned to another
	// version is open, this one bypasses it (direct I/O), or each would
	// read the other's pages, a mix of versions.
	var fuseFlags uint32
	f.mu.Lock()
	older := false
	for e, n := range f.pinned {
		older = older || e != etag && n > 0
	}
	if f.pinned == nil {
		f.pinned = map[string]int{}
	}
	f.pinned[etag]++
	switch {
	case older:
		fuseFlags |= fuse.FOPEN_DIRECT_IO
		f.lastOpen = "" // the pages now cached may be the older version's
	case f.lastOpen == etag:
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	default:
		f.lastOpen = etag
	}
	f.mu.Unlock()
	return fh, fuseFlags, 0
}

// openEntry opens the file through its entry, making one from the object
// (its bytes fetched only where a partial write needs them) if needed.
func (f *File) openEntry(ctx context.Context, writer, trunc bool) (*handle, syscall.Errno) {
	e, errno := f.ensureEntry(ctx, writer)
	if errno != 0 {
		return nil, errno
	}
	f.mu.Lock()
	f.lastOpen = "" // the kernel's cached pages may not match what we write
	f.mu.Unlock()
	if trunc {
		if err := e.Truncate(ctx, 0); err != nil {
			e.Release(writer)
			return nil, toErrno(err)
		}
	}
	return &handle{entry: e, writer: writer}, 0
}

// ensureEntry returns the file's entry, holding one handle on it.
func (f *File) ensureEntry(ctx context.Context, writer bool) (*stage.Entry, syscall.Errno) {
	key := f.Key()
	if e := f.fsys.stage.Hold(key, writer); e != nil {
		return e, 0
	}
	h, err := f.openAttrs(ctx)
	if err != nil {
		if errors.Is(err, store.ErrOtherKey) {
			f.fsys.ns.WarnOnce(key, "object is encrypted with another key; open refused")
		}
		return nil, toErrno(err)
	}
	if f.fsys.ns.Refused(h) {
		f.fsys.ns.NoticePlain(key)
		return nil, plainErrno
	}
	a := f.fsys.ns.Object(key, h, ns.Attrs{Mode: 0o644})
	base := &stage.Base{Key: key, ETag: h.ETag, Size: h.Size, Plain: h.Encryption == store.EncPlain}
	e, err := f.fsys.stage.OpenFile(key, base, stage.Attrs{Mtime: a.Mtime, Mode: a.Mode, UID: a.UID, GID: a.GID}, writer)
	if err != nil {
		return nil, toErrno(err)
	}
	return e, 0
}

func (f *File) Read(ctx context.Context, fh fusefs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ctx = detach(ctx)
	h, ok := fh.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	var n int
	var err error
	if h.entry != nil {
		n, err = h.entry.ReadAt(ctx, dest, off)
	} else {
		n, err = h.r.ReadAt(ctx, dest, off)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		key := f.Key()
		if errors.Is(err, store.ErrChanged) {
			// Drop what we knew; the next open sees the new version.
			f.fsys.ns.Forget(key)
			f.fsys.log.Warn("object changed while open; reads of this handle fail with ESTALE", "key", key)
		} else {
			f.fsys.log.Error("read failed", "key", key, "offset", off, "err", err)
		}
		return nil, toErrno(err)
	}
	f.fsys.read.Add(int64(n))
	return fuse.ReadResultData(dest[:n]), 0
}

func (f *File) Write(ctx context.Context, fh fusefs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	ctx = detach(ctx)
	h, ok := fh.(*handle)
	if !ok || !h.writer {
		return 0, syscall.EBADF
	}
	n, err := h.entry.WriteAt(ctx, data, off)
	f.fsys.written.Add(int64(n))
	if err != nil {
		f.fsys.log.Error("write failed", "key", f.Key(), "offset", off, "err", err)
		if n > 0 {
			return uint32(n), 0 // a short write; the next one reports the error
		}
		return 0, toErrno(err)
	}
	return uint32(n), 0
}

// Flush is every close(2) of the file: the place to report an upload
// error, since the result of Release reaches no one.
func (f *File) Flush(ctx context.Context, fh fusefs.FileHandle) syscall.Errno {
	ctx = detach(ctx)
	h, ok := fh.(*handle)
	if !ok || !h.writer {
		return 0
	}
	if err := h.entry.Flush(ctx); err != nil {
		f.fsys.log.Error("close: the file is not in the bucket", "key", f.Key(), "err", err)
		return toErrno(err)
	}
	return 0
}

// Fsync returns once the file is in the bucket, or with why it is not.
func (f *File) Fsync(ctx context.Context, fh fusefs.FileHandle, flags uint32) syscall.Errno {
	ctx = detach(ctx)
	e := f.entry()
	if h, ok := fh.(*handle); ok && h.entry != nil {
		e = h.entry
	}
	if e == nil {
		return 0 // nothing of this file waits
	}
	// fsync means "in the bucket" even if the program is interrupted
	// while waiting: the upload goes on.
	if err := e.Sync(context.WithoutCancel(ctx)); err != nil {
		f.fsys.log.Error("fsync: the file is not in the bucket", "key", f.Key(), "err", err)
		return toErrno(err)
	}
	return 0
}

func (f *File) Release(ctx context.Context, fh fusefs.FileHandle) syscall.Errno {
	ctx = detach(ctx)
	if h, ok := fh.(*handle); ok && h.entry != nil {
		h.entry.Release(h.writer)
	} else if ok {
		f.mu.Lock()
		if f.pinned[h.etag]--; f.pinned[h.etag] <= 0 {
			delete(f.pinned, h.etag)
		}
		f.mu.Unlock()
	}
	return 0
}

// Setattr changes size, mode, owner and times. A file with no changes yet
// gets an entry whose upload is a server-side copy with the new metadata;
// in the write-back window that copy merges with an upload or rename.
func (f *File) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = detach(ctx)
	if f.fsys.stage == nil {
		return syscall.EROFS
	}
	_, hasSize := in.GetSize()
	_, hasMode := in.GetMode()
	_, hasUID := in.GetUID()
	_, hasGID := in.GetGID()
	_, hasMtime := in.GetMTime()
	if !hasSize && !hasMode && !hasUID && !hasGID && !hasMtime {
		_, errno := f.fill(ctx, &out.Attr) // atime alone is not stored
		return errno
	}
	var e *stage.Entry
	held := false
	if h, ok := fh.(*handle); ok && h.entry != nil {
		e = h.entry
	} else {
		var errno syscall.Errno
		if e, errno = f.ensureEntry(ctx, false); errno != 0 {
			return errno
		}
		held = true
	}
	if sz, ok := in.GetSize(); ok {
		if err := e.Truncate(ctx, int64(sz)); err != nil {
			if held {
				e.Release(false)
			}
			return toErrno(err)
		}
	}
	// SetAttrs records the change in the journal; a truncation alone is
	// recorded by Touch. Either waits for a writer's close if one is open.
	var err error
	if !hasMode && !hasUID && !hasGID && !hasMtime {
		err = e.Touch()
	} else {
		err = e.SetAttrs(func(a *stage.Attrs) {
			if m, ok := in.GetMode(); ok {
				a.Mode = a.Mode&^0o7777 | m&0o7777
			}
			if u, ok := in.GetUID(); ok {
				a.UID = u
			}
			if g, ok := in.GetGID(); ok {
				a.GID = g
			}
			if t, ok := in.GetMTime(); ok {
				a.Mtime = t
			}
		})
	}
	if held {
		e.Release(false) // queues the change once no handle holds the file
	}
	if err != nil {
		return toErrno(err) // the change is not safe in the journal
	}
	f.fsys.fillFile(&out.Attr, ns.Waiting(e.Info()))
	return 0
}
