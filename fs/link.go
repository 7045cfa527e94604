package fs

import (
	"context"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/ns"
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

// maxTarget is the longest symlink target Linux takes (PATH_MAX less its
// NUL): readlink(2) cannot return more. A "symlink" object of any other
// size was not written by a symlink call, and anyone who can write to the
// bucket could plant one of gigabytes for the daemon to read into memory.
const maxTarget = 4095

func (l *Link) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	ctx = detach(ctx) // as every other call (errno.go)
	key := l.Key()
	a, err := l.fsys.ns.Head(ctx, key)
	if err != nil {
		return nil, toErrno(err)
	}
	if a.Encryption == store.EncPlain {
		// Not a link: no key holder wrote its metadata (ns/plain.go).
		l.fsys.ns.NoticePlain(key)
		return nil, plainErrno
	}
	if a.Size > maxTarget || a.Size < 1 {
		l.fsys.ns.WarnOnce(key, "symlink object refused: its target would be longer than 4095 bytes or empty", "size", a.Size)
		return nil, syscall.EIO
	}
	buf := make([]byte, a.Size)
	if _, err := l.fsys.ns.Store().ReadRange(ctx, key, store.Range{IfMatch: a.ETag}, buf); err != nil {
		return nil, toErrno(err)
	}
	return buf, 0
}

func (l *Link) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := l.fsys.ns.Head(detach(ctx), l.Key())
	if err != nil {
		return toErrno(err)
	}
	l.fsys.fillFile(&out.Attr, l.fsys.ns.Object(l.Key(), a, ns.Attrs{Mode: 0o777}))
	out.Mode = syscall.S_IFLNK | 0o777
	return 0
}

// Setattr stores a symlink's times and owner (rsync -a sets them) by
// writing the link object again with the new metadata
// (ns.Namespace.SetLinkAttrs); its mode is always 0777.
func (l *Link) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = detach(ctx)
	if l.fsys.stage == nil {
		return syscall.EROFS
	}
	key := l.Key()
	a, err := l.fsys.ns.Head(ctx, key)
	if err != nil {
		return toErrno(err)
	}
	target, errno := l.Readlink(ctx)
	if errno != 0 {
		return errno
	}
	fa := l.fsys.ns.Object(key, a, ns.Attrs{})
	if !fa.Owned {
		o := caller(ctx)
		fa.UID, fa.GID = o.UID, o.GID
	}
	if u, ok := in.GetUID(); ok {
		fa.UID = u
	}
	if g, ok := in.GetGID(); ok {
		fa.GID = g
	}
	if t, ok := in.GetMTime(); ok {
		fa.Mtime = t
	}
	if err := l.fsys.ns.SetLinkAttrs(ctx, key, string(target), fa); err != nil {
		return toErrno(err)
	}
	return l.Getattr(ctx, fh, out)
}
