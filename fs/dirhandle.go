package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/ns"
)

// dirHandle is an open folder. It reads as go-fuse's own folder handle
// does (the names of Dir.Readdir, listed at the first read), and answers
// the kernel's readdirplus: each name's attributes come with the listing
// when they are at hand without a request (kept by an earlier mount,
// fetched within the TTL, waiting in the journal: ns.Folder.Known). `ls
// -l`, `du` and `rsync --delete` then stat a whole folder of known files
// with no lookup each; a name whose attributes would need a
// HEAD is sent without them, and the kernel looks it up only if a program
// stats it, so `find` still sends no HEAD.
type dirHandle struct {
	d  *Dir
	ds fusefs.DirStream
}

var (
	_ = (fusefs.NodeOpendirHandler)((*Dir)(nil))
	_ = (fusefs.FileReaddirenter)((*dirHandle)(nil))
	_ = (fusefs.FileSeekdirer)((*dirHandle)(nil))
	_ = (fusefs.FileReleasedirer)((*dirHandle)(nil))
	_ = (fusefs.FileLookuper)((*dirHandle)(nil))
)

func (d *Dir) OpendirHandle(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{d: d}, 0, 0
}

func (h *dirHandle) open(ctx context.Context) syscall.Errno {
	if h.ds != nil {
		return 0
	}
	ds, errno := h.d.Readdir(ctx)
	if errno != 0 {
		return errno
	}
	h.ds = ds
	return 0
}

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := h.open(ctx); errno != 0 {
		return nil, errno
	}
	if !h.ds.HasNext() {
		return nil, 0
	}
	e, errno := h.ds.Next()
	return &e, errno
}

func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if errno := h.open(ctx); errno != 0 {
		return errno
	}
	if sd, ok := h.ds.(fusefs.FileSeekdirer); ok {
		return sd.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (h *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if h.ds != nil {
		h.ds.Close()
	}
}

// Lookup gives the kernel name's attributes when they are known, else an
// error, which go-fuse passes on as an entry without a node: the kernel
// then keeps the name only (fuse_direntplus_link).
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if !h.d.f.Known(name) {
		return nil, syscall.EAGAIN
	}
	return h.d.Lookup(ns.Unasked(ctx), name, out)
}
