package fs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// Namespace changes. File contents and their metadata go through the
// stage (write-back); the namespace itself changes in the bucket before
// the call returns: a folder marker, a delete, a server-side copy.

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

// caller is the uid and gid of the program making the request.
func caller(ctx context.Context) (uint32, uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

// dirMeta is the metadata of a folder marker or symlink, as s3fs writes it.
func dirMeta(ctx context.Context, mode uint32) map[string]string {
	uid, gid := caller(ctx)
	return stage.MetaOf(stage.Attrs{Mtime: time.Now(), Mode: mode, UID: uid, GID: gid})
}

func (d *Dir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	ctx = detach(ctx)
	if d.fsys.stage == nil {
		return nil, nil, 0, syscall.EROFS
	}
	if errno := newNameErrno(name); errno != 0 {
		return nil, nil, 0, errno
	}
	key := d.Prefix() + name
	uid, gid := caller(ctx)
	e, err := d.fsys.stage.OpenFile(key, nil, stage.Attrs{Mtime: time.Now(), Mode: mode & 0o7777, UID: uid, GID: gid}, true)
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	if flags&syscall.O_TRUNC != 0 {
		if err := e.Truncate(ctx, 0); err != nil {
			e.Release(true)
			return nil, nil, 0, toErrno(err)
		}
	}
	f := &File{fsys: d.fsys, dir: d, key: key}
	d.fsys.fillFile(&out.Attr, entryAttrs(e.Info()))
	return d.NewInode(ctx, f, fusefs.StableAttr{Mode: syscall.S_IFREG}), &handle{entry: e, writer: true}, 0, 0
}

func (d *Dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = detach(ctx)
	if d.fsys.stage == nil {
		return nil, syscall.EROFS
	}
	if errno := newNameErrno(name); errno != 0 {
		return nil, errno
	}
	key := d.Prefix() + name + "/"
	// A marker object keeps an empty folder; it is encrypted like any
	// object, so that every object of the bucket needs the key.
	if _, err := d.fsys.opts.Store.Put(ctx, key, bytes.NewReader(nil), 0, dirMeta(ctx, syscall.S_IFDIR|mode&0o7777)); err != nil {
		d.fsys.log.Error("mkdir failed", "key", key, "err", err)
		return nil, toErrno(err)
	}
	d.fsys.meta.forget(key)
	d.patch(name, &child{isDir: true})
	sub := d.fsys.newDir(key)
	sub.list = &listing{at: time.Now(), entries: map[string]child{}} // known empty
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
	if d.fsys.stage == nil {
		return nil, syscall.EROFS
	}
	if errno := newNameErrno(name); errno != 0 {
		return nil, errno
	}
	key := d.Prefix() + name
	if _, err := d.fsys.opts.Store.Put(ctx, key, strings.NewReader(target), int64(len(target)), dirMeta(ctx, linkMode)); err != nil {
		d.fsys.log.Error("symlink failed", "key", key, "err", err)
		return nil, toErrno(err)
	}
	d.fsys.meta.forget(key)
	d.patch(name, &child{obj: store.Entry{Key: key, Size: int64(len(target))}})
	fa := fileAttrs{size: int64(len(target)), mtime: time.Now(), mode: 0o777}
	d.fsys.fillFile(&out.Attr, fa)
	out.Mode = linkMode
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
	ctx = detach(ctx)
	if d.fsys.stage == nil {
		return syscall.EROFS
	}
	key := d.Prefix() + name
	keys := []string{key}
	if e := d.fsys.stage.Lookup(key); e != nil {
		keys = append(keys, e.DeleteAfter()...) // its names before renames
		d.fsys.stage.Drop(e)
	}
	leaving := d.fsys.stage.Leaving("")
	for _, k := range keys {
		if leaving[k] {
			// A waiting file renamed away from k still reads its bytes
			// from the object k; it deletes k once it is uploaded.
			continue
		}
		if err := d.fsys.opts.Store.Delete(ctx, k); err != nil {
			d.fsys.log.Error("unlink failed", "key", k, "err", err)
			return toErrno(err)
		}
		d.fsys.meta.forget(k)
	}
	d.patch(name, nil)
	return 0
}

func (d *Dir) Rmdir(ctx context.Context, name string) syscall.Errno {
	ctx = detach(ctx)
	if d.fsys.stage == nil {
		return syscall.EROFS
	}
	prefix := d.Prefix() + name + "/"
	if empty, err := d.fsys.emptyDir(ctx, prefix); err != nil {
		return toErrno(err)
	} else if !empty {
		return syscall.ENOTEMPTY
	}
	if err := d.fsys.opts.Store.Delete(ctx, prefix); err != nil {
		return toErrno(err)
	}
	d.fsys.meta.forget(prefix) // its marker's attributes
	d.patch(name, nil)
	return 0
}

// emptyDir reports whether nothing but its own marker is under prefix.
// The old objects of files renamed out of it are uploaded away first.
func (f *FS) emptyDir(ctx context.Context, prefix string) (bool, error) {
	if len(f.stage.Under(prefix)) > 0 {
		return false, nil
	}
	if err := f.settleLeaving(ctx, prefix); err != nil {
		f.log.Error("files renamed out of the folder could not be uploaded; their old names keep it", "prefix", prefix, "err", err)
		return false, err
	}
	empty := true
	err := f.opts.Store.List(ctx, prefix, store.ListOptions{Recursive: true, Limit: 2}, func(e store.Entry) error {
		if e.Key != prefix {
			empty = false
		}
		return nil
	})
	return empty, err
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
	if errno := newNameErrno(newName); errno != 0 {
		return errno
	}
	if flags&unix.RENAME_NOREPLACE != 0 {
		if _, err := nd.find(ctx, newName); err == nil {
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
	var errno syscall.Errno
	if sub, ok := ch.Operations().(*Dir); ok {
		errno = d.renameDir(ctx, sub, name, nd, newName)
	} else {
		errno = d.renameFile(ctx, ch.Operations(), name, nd, newName)
	}
	return errno
}

// renameFile renames a file. A file waiting for upload is only renamed in
// the journal: it is uploaded once, under its last name. An uploaded one
// is copied on the server (with fallbacks, store.Copier) and deleted.
func (d *Dir) renameFile(ctx context.Context, node fusefs.InodeEmbedder, name string, nd *Dir, newName string) syscall.Errno {
	src, dst := d.Prefix()+name, nd.Prefix()+newName
	if sub := nd.GetChild(newName); sub != nil {
		if _, isDir := sub.Operations().(*Dir); isDir {
			return syscall.EISDIR
		}
	}
	var size int64
	if e := d.fsys.stage.Lookup(src); e != nil && d.fsys.stage.Rename(e, dst) {
		size = e.Info().Size
	} else {
		a, err := d.fsys.meta.proven(ctx, src)
		if err != nil {
			return toErrno(err)
		}
		if other := d.fsys.stage.Lookup(dst); other != nil {
			d.fsys.stage.Drop(other)
		}
		if _, err := d.fsys.copier.Copy(ctx, src, dst, a.Size, a.Encryption == store.EncPlain, nil); err != nil {
			d.fsys.log.Error("rename failed: copy", "from", src, "to", dst, "err", err)
			return toErrno(err)
		}
		if err := d.fsys.opts.Store.Delete(ctx, src); err != nil {
			d.fsys.log.Error("rename: the copy is made but the old name stays", "key", src, "err", err)
			return toErrno(err)
		}
		size = a.Size
	}
	d.fsys.meta.forget(src)
	d.fsys.meta.forget(dst)
	switch n := node.(type) {
	case *File:
		n.moved(nd, dst)
	case *Link:
		n.moved(dst)
	}
	d.patch(name, nil)
	nd.patch(newName, &child{obj: store.Entry{Key: dst, Size: size}})
	return 0
}

// renameDir renames a folder by copying every object under it and then
// deleting the originals. Waiting files are renamed in the journal. Past
// MaxRenameObjects it answers EXDEV, and mv falls back to copying file by
// file. If a copy fails, the copies made are deleted and the folder stays
// where it was.
func (d *Dir) renameDir(ctx context.Context, sub *Dir, name string, nd *Dir, newName string) syscall.Errno {
	src, dst := sub.Prefix(), nd.Prefix()+newName+"/"
	if strings.HasPrefix(dst, src) {
		return syscall.EINVAL // into itself
	}
	if empty, err := d.fsys.emptyDir(ctx, dst); err != nil {
		return toErrno(err)
	} else if !empty {
		return syscall.ENOTEMPTY
	}
	// Files renamed out of the folder still read from their old objects
	// in it, which the copies below would carry along and then delete.
	if err := d.fsys.settleLeaving(ctx, src); err != nil {
		d.fsys.log.Error("folder rename: files renamed out of it could not be uploaded", "prefix", src, "err", err)
		return toErrno(err)
	}
	pending := map[string]*stage.Entry{}
	for _, e := range d.fsys.stage.Under(src) {
		pending[e.Info().Key] = e
	}
	var objects []store.Entry
	err := d.fsys.opts.Store.List(ctx, src, store.ListOptions{Recursive: true}, func(e store.Entry) error {
		if _, waiting := pending[e.Key]; !waiting {
			objects = append(objects, e)
		}
		if len(objects) > d.fsys.opts.MaxRenameObjects {
			return errTooMany
		}
		return nil
	})
	if errors.Is(err, errTooMany) {
		d.fsys.log.Info("folder too large to rename on the server; mv copies it instead", "prefix", src, "limit", d.fsys.opts.MaxRenameObjects)
		return syscall.EXDEV
	}
	if err != nil {
		return toErrno(err)
	}
	copied := make([]bool, len(objects))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, o := range objects {
		g.Go(func() error {
			to := dst + strings.TrimPrefix(o.Key, src)
			if strings.HasSuffix(o.Key, "/") { // a folder marker
				_, err := d.fsys.opts.Store.Put(gctx, to, bytes.NewReader(nil), 0, dirMeta(gctx, syscall.S_IFDIR|0o755))
				copied[i] = err == nil
				d.fsys.meta.forget(to)
				return err
			}
			a, err := d.fsys.meta.proven(gctx, o.Key)
			if err != nil {
				return err
			}
			_, err = d.fsys.copier.Copy(gctx, o.Key, to, a.Size, a.Encryption == store.EncPlain, nil)
			copied[i] = err == nil
			d.fsys.meta.forget(to) // a "not found" asked before the copy
			return err
		})
	}
	if err := g.Wait(); err != nil {
		d.fsys.log.Error("folder rename failed; undoing the copies", "from", src, "to", dst, "err", err)
		undo := context.WithoutCancel(ctx)
		for i, o := range objects {
			if copied[i] {
				_ = d.fsys.opts.Store.Delete(undo, dst+strings.TrimPrefix(o.Key, src))
			}
		}
		return toErrno(err)
	}
	for k, e := range pending {
		to := dst + strings.TrimPrefix(k, src)
		if d.fsys.stage.Rename(e, to) {
			continue
		}
		// Uploaded while the folder was copied: it is an object now.
		a, err := d.fsys.meta.proven(ctx, k)
		if err == nil {
			_, err = d.fsys.copier.Copy(ctx, k, to, a.Size, a.Encryption == store.EncPlain, nil)
			d.fsys.meta.forget(to)
		}
		if err != nil {
			d.fsys.log.Error("folder rename: a file uploaded meanwhile stays under the old name", "key", k, "err", err)
			return toErrno(err)
		}
		objects = append(objects, store.Entry{Key: k})
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, o := range objects {
		g.Go(func() error {
			err := d.fsys.opts.Store.Delete(gctx, o.Key)
			// After the delete, not before: a listing sent between the
			// two would be filed as newer than this mount's change, and
			// show the old object under the old name until the TTL.
			d.fsys.meta.forget(o.Key)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		d.fsys.log.Error("folder rename: copied, but some old objects stay", "prefix", src, "err", err)
		return toErrno(err)
	}
	_ = d.fsys.opts.Store.Delete(ctx, src) // its marker, if listing missed it
	sub.rekey(src, dst)
	d.patch(name, nil)
	nd.patch(newName, &child{isDir: true})
	return 0
}

var errTooMany = errors.New("too many objects")

// rekey moves a loaded subtree from one prefix to another.
func (d *Dir) rekey(from, to string) {
	d.mu.Lock()
	d.prefix = to + strings.TrimPrefix(d.prefix, from)
	d.list = nil
	d.mu.Unlock()
	for _, ch := range d.Children() {
		switch n := ch.Operations().(type) {
		case *Dir:
			n.rekey(from, to)
		case *File:
			n.moved(d, to+strings.TrimPrefix(n.Key(), from))
		case *Link:
			n.moved(to + strings.TrimPrefix(n.Key(), from))
		}
	}
}
