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
	"github.com/ssecfs/ssecfs/store"
)

// File is an object.
//
// Lock order: File.mu is a leaf.
type File struct {
	fusefs.Inode
	fsys *FS
	dir  *Dir
	key  string

	mu       sync.Mutex
	listed   store.Entry // what the last listing or lookup said; guarded by mu
	lastOpen string      // ETag of the last open, to keep the page cache; guarded by mu
}

var (
	_ = (fusefs.NodeGetattrer)((*File)(nil))
	_ = (fusefs.NodeOpener)((*File)(nil))
	_ = (fusefs.NodeReader)((*File)(nil))
)

func (f *File) defaults(obj store.Entry) fileAttrs {
	return fileAttrs{size: obj.Size, mtime: obj.LastModified, mode: 0o644}
}

// setListed records what the listing (or a lookup) said of the object.
func (f *File) setListed(obj store.Entry) {
	f.mu.Lock()
	f.listed = obj
	f.mu.Unlock()
}

// attrs returns the HEAD answer for the file, starting the HEADs of the
// files listed after it so that a program stat'ing a whole folder gets
// them in parallel.
func (f *File) attrs(ctx context.Context) (store.Attrs, error) {
	if h, ok := f.fsys.meta.peek(f.key); ok {
		return h, nil
	}
	if f.dir != nil {
		f.dir.metaAhead(ctx, f.Name())
	}
	return f.fsys.meta.get(ctx, f.key)
}

// Name is the file's name in its directory.
func (f *File) Name() string { return f.key[len(f.dir.prefix):] }

func (f *File) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		f.fsys.fillFile(&out.Attr, h.attrs)
		return 0
	}
	return f.fill(ctx, &out.Attr)
}

// fill answers a stat: the size and metadata of the HEAD answer, which
// lookups and getattrs wait for (the HEADs of the files listed after this
// one are started at the same time, so `ls -l` runs in parallel).
// Readdirplus is off, so `find` and plain `ls` cost no HEAD at all.
func (f *File) fill(ctx context.Context, out *fuse.Attr) syscall.Errno {
	h, err := f.attrs(ctx)
	f.mu.Lock()
	a := f.defaults(f.listed)
	f.mu.Unlock()
	switch {
	case err == nil:
		a.size, a.mtime = h.Size, h.LastModified
		applyMeta(&a, h.Meta)
	case errors.Is(err, store.ErrOtherKey) || errors.Is(err, store.ErrAccessDenied):
		// Shown from the listing; opening it gives EACCES.
		f.fsys.warnOnce(f.key, "object is encrypted with another key or not readable; it shows but cannot be opened", "err", err)
	default:
		return toErrno(err)
	}
	f.fsys.fillFile(out, a)
	return 0
}

// handle is one open file: a reader pinned to the object version seen at
// open.
type handle struct {
	r     *cache.Reader
	attrs fileAttrs
}

func (f *File) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	h, err := f.attrs(ctx)
	if err != nil {
		if errors.Is(err, store.ErrOtherKey) {
			f.fsys.warnOnce(f.key, "object is encrypted with another key; open refused")
		}
		return nil, 0, toErrno(err)
	}
	a := f.defaults(store.Entry{Size: h.Size, LastModified: h.LastModified})
	applyMeta(&a, h.Meta)
	key, etag, plain := f.key, h.ETag, h.Encryption == store.EncPlain
	st := f.fsys.opts.Store
	fetch := func(ctx context.Context, off int64, buf []byte) error {
		_, err := st.ReadRange(ctx, key, store.Range{Offset: off, IfMatch: etag, Plaintext: plain}, buf)
		return err
	}
	fh := &handle{r: f.fsys.opts.Cache.NewReader(key, etag, h.Size, f.fsys.opts.ReadAhead, fetch), attrs: a}

	// The kernel's page cache of this file is still good if the object is
	// the version it cached last time.
	var fuseFlags uint32
	f.mu.Lock()
	if f.lastOpen == etag {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	f.lastOpen = etag
	f.mu.Unlock()
	return fh, fuseFlags, 0
}

func (f *File) Read(ctx context.Context, fh fusefs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	n, err := h.r.ReadAt(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, store.ErrChanged) {
			// Drop what we knew; the next open sees the new version.
			f.fsys.meta.forget(f.key)
			f.fsys.log.Warn("object changed while open; reads of this handle fail with ESTALE", "key", f.key)
		} else {
			f.fsys.log.Error("read failed", "key", f.key, "offset", off, "err", err)
		}
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}
