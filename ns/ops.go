package ns

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"time"

	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// Namespace changes. File contents and their metadata go through the
// stage (write-back); the namespace itself changes in the bucket before
// the call returns: a folder marker, a delete, a server-side copy.

// Owner is the uid and gid of the program making a change.
type Owner struct{ UID, GID uint32 }

// markerMeta is the metadata of a folder marker or symlink, as s3fs writes it.
func markerMeta(o Owner, mode uint32) map[string]string {
	return stage.MetaOf(stage.Attrs{Mtime: time.Now(), Mode: mode, UID: o.UID, GID: o.GID})
}

// LinkMode is S_IFLNK|0777 as s3fs writes it in x-amz-meta-mode.
const LinkMode = syscall.S_IFLNK | 0o777

func (n *Namespace) writable() error {
	if n.stage == nil {
		return ErrReadOnly
	}
	return nil
}

// Mkdir makes the folder name in d: a marker object keeps an empty folder.
// It is encrypted like any object, so that every object of the bucket
// needs the key. The new folder is known empty.
func (d *Folder) Mkdir(ctx context.Context, name string, mode uint32, o Owner) (*Folder, error) {
	n := d.ns
	if err := n.writable(); err != nil {
		return nil, err
	}
	if err := CheckNewName(name); err != nil {
		return nil, err
	}
	key := d.Prefix() + name + "/"
	if _, err := n.opts.Store.Put(ctx, key, bytes.NewReader(nil), 0, markerMeta(o, syscall.S_IFDIR|mode&0o7777)); err != nil {
		n.log.Error("mkdir failed", "key", key, "err", err)
		return nil, err
	}
	n.meta.forget(key)
	d.patch(name, &Entry{Dir: true})
	sub := n.Folder(key)
	sub.setListing(newListing(time.Now()))
	return sub, nil
}

// Symlink stores a symlink as s3fs does: an object whose bytes are the
// target and whose x-amz-meta-mode says S_IFLNK.
func (d *Folder) Symlink(ctx context.Context, name, target string, o Owner) (string, error) {
	n := d.ns
	if err := n.writable(); err != nil {
		return "", err
	}
	if err := CheckNewName(name); err != nil {
		return "", err
	}
	key := d.Prefix() + name
	if _, err := n.opts.Store.Put(ctx, key, strings.NewReader(target), int64(len(target)), markerMeta(o, LinkMode)); err != nil {
		n.log.Error("symlink failed", "key", key, "err", err)
		return "", err
	}
	n.meta.forget(key)
	d.patch(name, &Entry{Object: store.Entry{Key: key, Size: int64(len(target))}})
	return key, nil
}

// SetLinkAttrs stores a symlink's times and owner by writing its object
// again with the new metadata; its mode is always 0777.
func (n *Namespace) SetLinkAttrs(ctx context.Context, key, target string, a Attrs) error {
	if err := n.writable(); err != nil {
		return err
	}
	meta := stage.MetaOf(stage.Attrs{Mtime: a.Mtime, Mode: LinkMode, UID: a.UID, GID: a.GID})
	if _, err := n.opts.Store.Put(ctx, key, strings.NewReader(target), int64(len(target)), meta); err != nil {
		n.log.Error("setting symlink attributes failed", "key", key, "err", err)
		return err
	}
	n.meta.forget(key)
	return nil
}

// Unlink deletes the file name at once, and what of it waits.
func (d *Folder) Unlink(ctx context.Context, name string) error {
	n := d.ns
	if err := n.writable(); err != nil {
		return err
	}
	key := d.Prefix() + name
	keys := []string{key}
	if e := n.stage.Lookup(key); e != nil {
		keys = append(keys, e.DeleteAfter()...) // its names before renames
		n.stage.Drop(e)
	}
	leaving := n.stage.Leaving("")
	for _, k := range keys {
		if leaving[k] {
			// A waiting file renamed away from k still reads its bytes
			// from the object k; it deletes k once it is uploaded.
			continue
		}
		if err := n.opts.Store.Delete(ctx, k); err != nil {
			n.log.Error("unlink failed", "key", k, "err", err)
			return err
		}
		n.meta.forget(k)
	}
	d.patch(name, nil)
	return nil
}

// Rmdir removes the empty folder name: its marker object.
func (d *Folder) Rmdir(ctx context.Context, name string) error {
	n := d.ns
	if err := n.writable(); err != nil {
		return err
	}
	prefix := d.Prefix() + name + "/"
	if empty, err := n.emptyDir(ctx, prefix); err != nil {
		return err
	} else if !empty {
		return ErrNotEmpty
	}
	if err := n.opts.Store.Delete(ctx, prefix); err != nil {
		return err
	}
	n.meta.forget(prefix) // its marker's attributes
	d.patch(name, nil)
	return nil
}

// emptyDir reports whether nothing but its own marker is under prefix.
// The old objects of files renamed out of it are uploaded away first.
func (n *Namespace) emptyDir(ctx context.Context, prefix string) (bool, error) {
	if n.stage.HasUnder(prefix) {
		return false, nil
	}
	if err := n.settleLeaving(ctx, prefix); err != nil {
		n.log.Error("files renamed out of the folder could not be uploaded; their old names keep it", "prefix", prefix, "err", err)
		return false, err
	}
	empty := true
	err := n.opts.Store.List(ctx, prefix, store.ListOptions{Recursive: true, Limit: 2}, func(e store.Entry) error {
		if e.Key != prefix {
			empty = false
		}
		return nil
	})
	return empty, err
}

// settleLeaving uploads the waiting files renamed out of the folder at
// prefix (at any depth): their old objects stay there, as the files' bytes
// are read from them, until they are uploaded under their new names. A
// folder about to be removed or renamed must not keep them (git renames
// its pack files out of a temporary folder, then removes it).
func (n *Namespace) settleLeaving(ctx context.Context, prefix string) error {
	return n.stage.Sync(ctx, stage.Selection{OldName: stage.KeysUnder(prefix), Open: true}).Err
}

// RenameFile renames the file name in d to newName in nd and returns the
// key it has now. A file waiting for upload is only renamed in the
// journal: it is uploaded once, under its last name. An uploaded one is
// copied on the server (with fallbacks, store.Copier) and deleted.
func (d *Folder) RenameFile(ctx context.Context, name string, nd *Folder, newName string) (string, error) {
	n := d.ns
	if err := n.writable(); err != nil {
		return "", err
	}
	if err := CheckNewName(newName); err != nil {
		return "", err
	}
	src, dst := d.Prefix()+name, nd.Prefix()+newName
	var size int64
	if e := n.stage.Lookup(src); e != nil && n.stage.Rename(e, dst) {
		size = e.Info().Size
	} else {
		a, err := n.meta.proven(ctx, src)
		if err != nil {
			return "", err
		}
		if other := n.stage.Lookup(dst); other != nil {
			n.stage.Drop(other)
		}
		if _, err := n.copier.Copy(ctx, src, dst, a.Size, a.Encryption == store.EncPlain, nil); err != nil {
			n.log.Error("rename failed: copy", "from", src, "to", dst, "err", err)
			return "", err
		}
		if err := n.opts.Store.Delete(ctx, src); err != nil {
			n.log.Error("rename: the copy is made but the old name stays", "key", src, "err", err)
			return "", err
		}
		size = a.Size
	}
	n.meta.forget(src)
	n.meta.forget(dst)
	d.patch(name, nil)
	nd.patch(newName, &Entry{Object: store.Entry{Key: dst, Size: size}})
	return dst, nil
}
