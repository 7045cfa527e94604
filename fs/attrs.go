package fs

import (
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/ns"
)

func setTimes(out *fuse.Attr, t time.Time) {
	sec, nsec := uint64(t.Unix()), uint32(t.Nanosecond())
	out.Mtime, out.Mtimensec = sec, nsec
	out.Ctime, out.Ctimensec = sec, nsec
	out.Atime, out.Atimensec = sec, nsec
}

// fillFile shows a file's attributes; a plaintext object is read-only
// (ns/plain.go).
func (f *FS) fillFile(out *fuse.Attr, a ns.Attrs) {
	out.Mode = syscall.S_IFREG | a.Mode
	if a.Plain {
		out.Mode = syscall.S_IFREG | 0o444
	}
	out.Size = uint64(a.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	out.Nlink = 1
	setTimes(out, a.Mtime)
	out.Uid, out.Gid = f.opts.UID, f.opts.GID
	if a.Owned && f.opts.OwnerFromMeta {
		out.Uid, out.Gid = a.UID, a.GID
	}
}

// fillDir shows a folder's attributes.
func (f *FS) fillDir(out *fuse.Attr, a ns.Attrs) {
	out.Mode = syscall.S_IFDIR | a.Mode
	out.Nlink = 2
	out.Blksize = 4096
	out.Size = 4096
	setTimes(out, a.Mtime)
	out.Uid, out.Gid = f.opts.UID, f.opts.GID
	if a.Owned && f.opts.OwnerFromMeta {
		out.Uid, out.Gid = a.UID, a.GID
	}
}
