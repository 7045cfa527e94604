package fs

import (
	"context"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/ns"
	"github.com/ssecfs/ssecfs/store"
)

// Dir is a directory node: a folder of the namespace.
type Dir struct {
	fusefs.Inode
	fsys *FS
	f    *ns.Folder // its prefix follows renames (ns.Folder.RenameDir)
}

var (
	_ = (fusefs.NodeLookuper)((*Dir)(nil))
	_ = (fusefs.NodeReaddirer)((*Dir)(nil))
	_ = (fusefs.NodeGetattrer)((*Dir)(nil))
	_ = (fusefs.NodeSetattrer)((*Dir)(nil))
)

// Prefix is the key prefix of the directory's children.
func (d *Dir) Prefix() string { return d.f.Prefix() }

// Getattr shows the mode, owner and mtime kept in the folder's marker
// object (ns.Folder.Attrs).
func (d *Dir) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(detach(ctx), &out.Attr)
}

func (d *Dir) fill(ctx context.Context, out *fuse.Attr) syscall.Errno {
	a, err := d.f.Attrs(ctx)
	if err != nil {
		return toErrno(err)
	}
	d.fsys.fillDir(out, a)
	return 0
}

// Setattr stores a folder's mode, owner and mtime (ns.Folder.SetAttrs).
func (d *Dir) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = detach(ctx)
	if d.fsys.stage == nil {
		return syscall.EROFS
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	var cur fuse.Attr
	if errno := d.fill(ctx, &cur); errno != 0 {
		return errno
	}
	a := ns.Attrs{Mode: cur.Mode & 0o7777, UID: cur.Uid, GID: cur.Gid,
		Mtime: time.Unix(int64(cur.Mtime), int64(cur.Mtimensec))}
	if m, ok := in.GetMode(); ok {
		a.Mode = m & 0o7777
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
	if err := d.f.SetAttrs(ctx, a); err != nil {
		return d.fsys.changeErrno("chmod", d.f.Prefix(), err)
	}
	return d.Getattr(ctx, fh, out)
}

func (d *Dir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	names, err := d.f.List(detach(ctx))
	if err != nil {
		d.fsys.log.Error("listing failed", "prefix", d.Prefix(), "err", err)
		return nil, toErrno(err)
	}
	out := make([]fuse.DirEntry, 0, len(names))
	for _, n := range names {
		mode := uint32(syscall.S_IFREG)
		if n.Dir {
			mode = syscall.S_IFDIR
		}
		out = append(out, fuse.DirEntry{Name: n.Name, Mode: mode})
	}
	return fusefs.NewListDirStream(out), 0
}

func (d *Dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = detach(ctx)
	if ns.NameProblem(name) != "" {
		return nil, syscall.ENOENT
	}
	c, err := d.f.Find(ctx, name)
	if err != nil {
		return nil, toErrno(err)
	}
	if c.Dir {
		return d.dirChild(ctx, name, out)
	}
	return d.fileChild(ctx, name, c.Object, out)
}

// dirChild makes the node of a folder. Its attributes (from its marker
// object) are what a stat right after the lookup shows, so the lookup waits
// for them (ns.Folder.Attrs, which also starts the listings and markers of
// the folders listed after it).
func (d *Dir) dirChild(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	var sub *Dir
	ch := d.GetChild(name)
	if ch != nil {
		sub, _ = ch.Operations().(*Dir)
	}
	if sub == nil {
		sub = d.fsys.newDir(d.fsys.ns.Folder(d.Prefix() + name + "/"))
		ch = d.NewInode(ctx, sub, fusefs.StableAttr{Mode: syscall.S_IFDIR})
	}
	if errno := sub.fill(ctx, &out.Attr); errno != 0 {
		return nil, errno
	}
	return ch, 0
}

// fileChild makes the node of a file or symlink. Its attributes need the
// HEAD (mtime, mode, and whether it is a symlink), which a lookup waits
// for; the HEADs of the files listed after it start at the same time.
func (d *Dir) fileChild(ctx context.Context, name string, obj store.Entry, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	key := d.Prefix() + name
	existing := d.GetChild(name)
	f := &File{fsys: d.fsys, dir: d.f, key: key}
	if existing != nil {
		if ef, ok := existing.Operations().(*File); ok {
			f = ef
		}
	}
	f.setListed(obj)
	a, errno := f.fill(ctx, &out.Attr)
	if errno != 0 {
		return nil, errno
	}
	if a.Symlink {
		if existing != nil {
			if _, ok := existing.Operations().(*Link); ok {
				return existing, 0
			}
		}
		return d.NewInode(ctx, &Link{fsys: d.fsys, key: key, size: a.Size}, fusefs.StableAttr{Mode: syscall.S_IFLNK}), 0
	}
	if existing != nil && existing.Operations() == fusefs.InodeEmbedder(f) {
		return existing, 0
	}
	return d.NewInode(ctx, f, fusefs.StableAttr{Mode: syscall.S_IFREG}), 0
}

// filesAhead fetches into the block cache the data of the small files
// listed after name, as `cp -r` and backup tools read a folder file by
// file, each read costing a round trip otherwise. Up to filesAheadCount
// files ahead, once each.
func (f *FS) filesAhead(ctx context.Context, d *ns.Folder, name string) {
	const filesAheadCount = 32
	keys := d.SmallFilesAfter(name, filesAheadCount)
	ctx = context.WithoutCancel(ctx)
	for _, k := range keys {
		go func() {
			a, err := d.ObjectAttrs(ctx, k)
			if err != nil || a.Size > ns.SmallFile || a.Size == 0 || f.ns.Refused(a) {
				return
			}
			f.filesSem <- struct{}{}
			defer func() { <-f.filesSem }()
			c := f.opts.Cache
			_ = c.Load(ctx, cache.BlockID{Key: k, ETag: a.ETag, Index: 0}, int(min(a.Size, c.BlockSize())), f.fetcher(k, a))
		}()
	}
}
