package fs

import (
	"context"
	"strings"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/ns"
	"github.com/ssecfs/ssecfs/stage"
)

// Namespace changes: the bucket side is the namespace's (ns/ops.go,
// ns/renamedir.go); here the nodes follow.

var (
	_ = (fusefs.NodeCreater)((*Dir)(nil))
	_ = (fusefs.NodeMkdirer)((*Dir)(nil))
	_ = (fusefs.NodeUnlinker)((*Dir)(nil))
	_ = (fusefs.NodeRmdirer)((*Dir)(nil))
	_ = (fusefs.NodeRenamer)((*Dir)(nil))
	_ = (fusefs.NodeSymlinker)((*Dir)(nil))
	_ = (fusefs.NodeLinker)((*Dir)(nil))
	_ = (fusefs.NodeMknoder)((*Dir)(nil))
)

func (d *Dir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	ctx = detach(ctx)
	if d.fsys.stage == nil {
		return nil, nil, 0, syscall.EROFS
	}
	if err := ns.CheckNewName(name); err != nil {
		return nil, nil, 0, toErrno(err)
	}
	key := d.Prefix() + name
	o := caller(ctx)
	e, err := d.fsys.stage.OpenFile(key, nil, stage.Attrs{Mtime: time.Now(), Mode: mode & 0o7777, UID: o.UID, GID: o.GID}, true)
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	if flags&syscall.O_TRUNC != 0 {
		if err := e.Truncate(ctx, 0); err != nil {
			e.Release(true)
			return nil, nil, 0, toErrno(err)
		}
	}
	f := &File{fsys: d.fsys, dir: d.f, key: key}
	d.fsys.fillFile(&out.Attr, ns.Waiting(e.Info()))
	return d.NewInode(ctx, f, fusefs.StableAttr{Mode: syscall.S_IFREG}), &handle{entry: e, writer: true}, 0, 0
}

func (d *Dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = detach(ctx)
	folder, err := d.f.Mkdir(ctx, name, mode, caller(ctx))
	if err != nil {
		return nil, d.fsys.changeErrno("mkdir", d.f.Prefix()+name, err)
	}
	sub := d.fsys.newDir(folder)
	ch := d.NewInode(ctx, sub, fusefs.StableAttr{Mode: syscall.S_IFDIR})
	// What a stat shows next is what the marker holds (rsync decides from
	// it whether to chmod).
	if errno := sub.fill(ctx, &out.Attr); errno != 0 {
		return nil, errno
	}
	return ch, 0
}

func (d *Dir) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = detach(ctx)
	key, err := d.f.Symlink(ctx, name, target, caller(ctx))
	if err != nil {
		return nil, d.fsys.changeErrno("symlink", d.f.Prefix()+name, err)
	}
	d.fsys.fillFile(&out.Attr, ns.Attrs{Size: int64(len(target)), Mtime: time.Now(), Mode: 0o777})
	out.Mode = ns.LinkMode
	return d.NewInode(ctx, &Link{fsys: d.fsys, key: key, size: int64(len(target))}, fusefs.StableAttr{Mode: syscall.S_IFLNK}), 0
}

// Link: S3 has no hard links.
func (d *Dir) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

// Mknod: no devices, FIFOs or sockets in a bucket.
func (d *Dir) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (d *Dir) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.fsys.changeErrno("unlink", d.f.Prefix()+name, d.f.Unlink(detach(ctx), name))
}

func (d *Dir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.fsys.changeErrno("rmdir", d.f.Prefix()+name, d.f.Rmdir(detach(ctx), name))
}

func (d *Dir) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	ctx = detach(ctx)
	if d.fsys.stage == nil {
		return syscall.EROFS
	}
	nd, ok := newParent.(*Dir)
	if !ok || flags&^uint32(unix.RENAME_NOREPLACE) != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE and RENAME_WHITEOUT
	}
	if err := ns.CheckNewName(newName); err != nil {
		return toErrno(err)
	}
	if flags&unix.RENAME_NOREPLACE != 0 {
		if _, err := nd.f.Find(ctx, newName); err == nil {
			return syscall.EEXIST
		}
	}
	ch := d.GetChild(name)
	if ch == nil {
		if _, errno := d.Lookup(ctx, name, &fuse.EntryOut{}); errno != 0 {
			return errno
		}
		if ch = d.GetChild(name); ch == nil {
			return syscall.ENOENT
		}
	}
	if sub, ok := ch.Operations().(*Dir); ok {
		from, to, err := d.f.RenameDir(ctx, name, nd.f, newName, caller(ctx))
		if err == nil {
			sub.rekey(from, to)
		}
		return d.fsys.changeErrno("rename", d.f.Prefix()+name, err)
	}
	if sub := nd.GetChild(newName); sub != nil {
		if _, isDir := sub.Operations().(*Dir); isDir {
			return syscall.EISDIR
		}
	}
	key, err := d.f.RenameFile(ctx, name, nd.f, newName)
	if err != nil {
		return d.fsys.changeErrno("rename", d.f.Prefix()+name, err)
	}
	switch n := ch.Operations().(type) {
	case *File:
		n.moved(nd.f, key)
	case *Link:
		n.moved(key)
	}
	return 0
}

// rekey gives the files and links of a renamed folder's loaded subtree
// their new keys (its folders moved with ns.Folder.RenameDir).
func (d *Dir) rekey(from, to string) {
	for _, ch := range d.Children() {
		switch n := ch.Operations().(type) {
		case *Dir:
			n.rekey(from, to)
		case *File:
			n.moved(d.f, to+strings.TrimPrefix(n.Key(), from))
		case *Link:
			n.moved(to + strings.TrimPrefix(n.Key(), from))
		}
	}
}
