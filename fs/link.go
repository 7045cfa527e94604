package fs

import (
	"bytes"
	"context"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// Link is a symbolic link, stored as s3fs stores them: an object whose
// bytes are the target and whose x-amz-meta-mode says S_IFLNK.
type Link struct {
	fusefs.Inode
	fsys *FS
	mu   sync.Mutex
	key  string // guarded by mu (renames change it)
	size int64
}

// Key is the link's object key.
func (l *Link) Key() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.key
}

func (l *Link) moved(key string) {
	l.mu.Lock()
	l.key = key
	l.mu.Unlock()
}

var (
	_ = (fusefs.NodeReadlinker)((*Link)(nil))
	_ = (fusefs.NodeGetattrer)((*Link)(nil))
	_ = (fusefs.NodeSetattrer)((*Link)(nil))
)

// linkMode is S_IFLNK|0777 as s3fs writes it in x-amz-meta-mode.
const linkMode = syscall.S_IFLNK | 0o777

// maxTarget is the longest symlink target Linux takes (PATH_MAX less its
// NUL): readlink(2) cannot return more. A "symlink" object of any other
// size was not written by a symlink call, and anyone who can write to the
// bucket could plant one of gigabytes for the daemon to read into memory.
const maxTarget = 4095

func (l *Link) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	ctx = detach(ctx) // as every other call (errno.go)
	key := l.Key()
	a, err := l.fsys.meta.get(ctx, key)
	if err != nil {
		return nil, toErrno(err)
	}
	if a.Encryption == store.EncPlain {
		// Not a link: no key holder wrote its metadata (plain.go).
		l.fsys.noticePlain(key)
		return nil, plainErrno
	}
	if a.Size > maxTarget || a.Size < 1 {
		l.fsys.warnOnce(key, "symlink object refused: its target would be longer than 4095 bytes or empty", "size", a.Size)
		return nil, syscall.EIO
	}
	buf := make([]byte, a.Size)
	if _, err := l.fsys.opts.Store.ReadRange(ctx, key, store.Range{IfMatch: a.ETag}, buf); err != nil {
		return nil, toErrno(err)
	}
	return buf, 0
}

func (l *Link) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := l.fsys.meta.get(detach(ctx), l.Key())
	if err != nil {
		return toErrno(err)
	}
	fa := fileAttrs{size: a.Size, mtime: a.LastModified, mode: 0o777}
	l.fsys.applyAttrs(&fa, l.Key(), a)
	l.fsys.fillFile(&out.Attr, fa)
	out.Mode = syscall.S_IFLNK | 0o777
	return 0
}

// Setattr stores a symlink's times and owner (rsync -a sets them) by
// writing the link object again with the new metadata; its mode is
// always 0777.
func (l *Link) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = detach(ctx)
	if l.fsys.stage == nil {
		return syscall.EROFS
	}
	key := l.Key()
	a, err := l.fsys.meta.get(ctx, key)
	if err != nil {
		return toErrno(err)
	}
	target, errno := l.Readlink(ctx)
	if errno != 0 {
		return errno
	}
	fa := fileAttrs{mtime: a.LastModified}
	l.fsys.applyAttrs(&fa, key, a)
	uid, gid := fa.uid, fa.gid
	if !fa.owned {
		uid, gid = caller(ctx)
	}
	if u, ok := in.GetUID(); ok {
		uid = u
	}
	if g, ok := in.GetGID(); ok {
		gid = g
	}
	if t, ok := in.GetMTime(); ok {
		fa.mtime = t
	}
	meta := stage.MetaOf(stage.Attrs{Mtime: fa.mtime, Mode: linkMode, UID: uid, GID: gid})
	if _, err := l.fsys.opts.Store.Put(ctx, key, bytes.NewReader(target), int64(len(target)), meta); err != nil {
		l.fsys.log.Error("setting symlink attributes failed", "key", key, "err", err)
		return toErrno(err)
	}
	l.fsys.meta.forget(key)
	return l.Getattr(ctx, fh, out)
}
