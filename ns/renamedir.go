package ns

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// RenameDir renames the folder name in d to newName in nd by copying every
// object under it and then deleting the originals; waiting files are
// renamed in the journal. Past MaxRenameObjects it answers ErrTooBig, and
// mv falls back to copying file by file. If a copy fails, the copies made
// are deleted and the folder stays where it was. The loaded folders under
// it move to the new prefix; it returns the old and new prefixes, for the
// front end to move its nodes' keys.
func (d *Folder) RenameDir(ctx context.Context, name string, nd *Folder, newName string, o Owner) (src, dst string, err error) {
	n := d.ns
	if err := n.writable(); err != nil {
		return "", "", err
	}
	if err := CheckNewName(newName); err != nil {
		return "", "", err
	}
	src, dst = d.Prefix()+name+"/", nd.Prefix()+newName+"/"
	if strings.HasPrefix(dst, src) {
		return "", "", ErrIntoSelf
	}
	if empty, err := n.emptyDir(ctx, dst); err != nil {
		return "", "", err
	} else if !empty {
		return "", "", ErrNotEmpty
	}
	// Files renamed out of the folder still read from their old objects
	// in it, which the copies below would carry along and then delete.
	if err := n.settleLeaving(ctx, src); err != nil {
		n.log.Error("folder rename: files renamed out of it could not be uploaded", "prefix", src, "err", err)
		return "", "", err
	}
	pending := map[string]*stage.Entry{}
	for _, e := range n.stage.Under(src) {
		pending[e.Info().Key] = e
	}
	objects, err := n.objectsUnder(ctx, src, pending)
	if err != nil {
		return "", "", err
	}
	if err := n.copyAll(ctx, objects, src, dst, o); err != nil {
		return "", "", err
	}
	moved, err := n.moveWaiting(ctx, pending, src, dst)
	if err != nil {
		return "", "", err
	}
	if err := n.deleteAll(ctx, append(objects, moved...), src); err != nil {
		return "", "", err
	}
	_ = n.opts.Store.Delete(ctx, src) // its marker, if listing missed it
	n.rekey(src, dst)
	d.patch(name, nil)
	nd.patch(newName, &Entry{Dir: true})
	return src, dst, nil
}

// objectsUnder lists the objects under src that are not waiting files,
// up to MaxRenameObjects (ErrTooBig past it).
func (n *Namespace) objectsUnder(ctx context.Context, src string, pending map[string]*stage.Entry) ([]store.Entry, error) {
	var objects []store.Entry
	err := n.opts.Store.List(ctx, src, store.ListOptions{Recursive: true}, func(e store.Entry) error {
		if _, waiting := pending[e.Key]; !waiting {
			objects = append(objects, e)
		}
		if len(objects) > n.opts.MaxRenameObjects {
			return errTooMany
		}
		return nil
	})
	if errors.Is(err, errTooMany) {
		n.log.Info("folder too large to rename on the server; mv copies it instead", "prefix", src, "limit", n.opts.MaxRenameObjects)
		return nil, ErrTooBig
	}
	return objects, err
}

// copyAll copies the objects under src to dst, 8 at a time; folder markers
// are written anew. On failure the copies made are deleted.
func (n *Namespace) copyAll(ctx context.Context, objects []store.Entry, src, dst string, o Owner) error {
	copied := make([]bool, len(objects))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, obj := range objects {
		g.Go(func() error {
			to := dst + strings.TrimPrefix(obj.Key, src)
			if strings.HasSuffix(obj.Key, "/") { // a folder marker
				_, err := n.opts.Store.Put(gctx, to, bytes.NewReader(nil), 0, markerMeta(o, syscall.S_IFDIR|0o755))
				copied[i] = err == nil
				n.meta.forget(to)
				return err
			}
			a, err := n.meta.proven(gctx, obj.Key)
			if err != nil {
				return err
			}
			_, err = n.copier.Copy(gctx, obj.Key, to, a.Size, a.Encryption == store.EncPlain, nil)
			copied[i] = err == nil
			n.meta.forget(to) // a "not found" asked before the copy
			return err
		})
	}
	err := g.Wait()
	if err == nil {
		return nil
	}
	n.log.Error("folder rename failed; undoing the copies", "from", src, "to", dst, "err", err)
	undo := context.WithoutCancel(ctx)
	for i, obj := range objects {
		if copied[i] {
			_ = n.opts.Store.Delete(undo, dst+strings.TrimPrefix(obj.Key, src))
		}
	}
	return err
}

// moveWaiting renames the waiting files under src in the journal. One
// uploaded while the folder was copied is an object now: it is copied, and
// returned among the objects to delete.
func (n *Namespace) moveWaiting(ctx context.Context, pending map[string]*stage.Entry, src, dst string) ([]store.Entry, error) {
	var uploaded []store.Entry
	for k, e := range pending {
		to := dst + strings.TrimPrefix(k, src)
		if n.stage.Rename(e, to) {
			continue
		}
		a, err := n.meta.proven(ctx, k)
		if err == nil {
			_, err = n.copier.Copy(ctx, k, to, a.Size, a.Encryption == store.EncPlain, nil)
			n.meta.forget(to)
		}
		if err != nil {
			n.log.Error("folder rename: a file uploaded meanwhile stays under the old name", "key", k, "err", err)
			return nil, err
		}
		uploaded = append(uploaded, store.Entry{Key: k})
	}
	return uploaded, nil
}

// deleteAll deletes the originals, 8 at a time.
func (n *Namespace) deleteAll(ctx context.Context, objects []store.Entry, src string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, obj := range objects {
		g.Go(func() error {
			err := n.opts.Store.Delete(gctx, obj.Key)
			// After the delete, not before: a listing sent between the
			// two would be filed as newer than this mount's change, and
			// show the old object under the old name until the TTL.
			n.meta.forget(obj.Key)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		n.log.Error("folder rename: copied, but some old objects stay", "prefix", src, "err", err)
		return err
	}
	return nil
}
