package fs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sync/errgroup"

	"github.com/ssecfs/ssecfs/store"
)

// Dir is a directory: the objects and common prefixes under prefix, and
// the files of this mount waiting for upload there.
//
// Lock order: listMu before mu. listMu serialises listings of this
// directory (one listing serves everyone waiting); mu guards the fields.
type Dir struct {
	fusefs.Inode
	fsys *FS

	listMu sync.Mutex
	mu     sync.Mutex
	prefix string   // "" for the bucket root, else ends in "/"; guarded by mu (renames change it)
	list   *listing // last listing, patched by this mount's changes; guarded by mu
}

// listing is one snapshot of a directory.
type listing struct {
	at      time.Time
	entries map[string]child
	names   []string // sorted; nil when entries changed since
	// metaAhead is the index up to which HEADs have been started.
	metaAhead int
}

type child struct {
	isDir bool
	obj   store.Entry // for files
}

var (
	_ = (fusefs.NodeLookuper)((*Dir)(nil))
	_ = (fusefs.NodeReaddirer)((*Dir)(nil))
	_ = (fusefs.NodeGetattrer)((*Dir)(nil))
)

// Prefix is the key prefix of the directory's children.
func (d *Dir) Prefix() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prefix
}

func (d *Dir) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.fillDir(&out.Attr)
	return 0
}

// freshListing returns the last listing if it is younger than the TTL.
// Called with d.mu held.
func (d *Dir) freshListingLocked() *listing {
	if d.list != nil && time.Since(d.list.at) < d.fsys.opts.MetaTTL {
		return d.list
	}
	return nil
}

func (d *Dir) freshListing() *listing {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.freshListingLocked()
}

// listing returns a fresh listing, listing the prefix if needed.
func (d *Dir) listing(ctx context.Context) (*listing, error) {
	if l := d.freshListing(); l != nil {
		return l, nil
	}
	d.listMu.Lock()
	defer d.listMu.Unlock()
	if l := d.freshListing(); l != nil { // listed while we waited
		return l, nil
	}
	prefix := d.Prefix()
	l := &listing{at: time.Now(), entries: map[string]child{}}
	err := d.fsys.opts.Store.List(ctx, prefix, store.ListOptions{}, func(e store.Entry) error {
		d.addEntry(l, prefix, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.prefix == prefix {
		d.list = l
	}
	d.mu.Unlock()
	return l, nil
}

// addEntry files one listing entry under its name, leaving out keys that
// cannot be file names. A key that is both an object and a prefix shows as
// the directory, so that everything under it stays reachable.
func (d *Dir) addEntry(l *listing, prefix string, e store.Entry) {
	if e.Key == prefix {
		return // this directory's own marker object
	}
	name := strings.TrimSuffix(e.Key[len(prefix):], "/")
	if p := nameProblem(name); p != "" {
		d.fsys.warnOnce(e.Key, "object left out: its name cannot be a file name", "reason", p)
		return
	}
	prev, dup := l.entries[name]
	switch {
	case e.IsPrefix:
		if dup && !prev.isDir {
			d.fsys.warnOnce(prefix+name, "object hidden by a folder of the same name")
		}
		l.entries[name] = child{isDir: true}
	case dup && prev.isDir:
		d.fsys.warnOnce(e.Key, "object hidden by a folder of the same name")
	default:
		l.entries[name] = child{obj: e}
	}
}

// patch records a change this mount made in the directory, so that the
// listing snapshot does not contradict it until it is listed again. c nil
// removes name.
func (d *Dir) patch(name string, c *child) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.list == nil {
		return
	}
	if c == nil {
		delete(d.list.entries, name)
	} else {
		d.list.entries[name] = *c
	}
	d.list.names = nil
}

// forgetListing drops the snapshot: the next question lists again.
func (d *Dir) forgetListing() {
	d.mu.Lock()
	d.list = nil
	d.mu.Unlock()
}

// pending returns what the files waiting for upload put under this
// directory: files directly in it and folders on the way to deeper ones.
func (d *Dir) pending(prefix string) map[string]child {
	out := map[string]child{}
	if d.fsys.stage == nil {
		return out
	}
	for _, e := range d.fsys.stage.Under(prefix) {
		info := e.Info()
		rest := info.Key[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			out[rest[:i]] = child{isDir: true}
		} else if rest != "" {
			out[rest] = child{obj: store.Entry{Key: info.Key, Size: info.Size, LastModified: info.Attrs.Mtime}}
		}
	}
	return out
}

// view is the directory as a program sees it: the listing with the
// waiting files on top, names sorted.
func (d *Dir) view(ctx context.Context) (map[string]child, []string, error) {
	l, err := d.listing(ctx)
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	prefix := d.prefix
	entries := make(map[string]child, len(l.entries))
	for n, c := range l.entries {
		entries[n] = c
	}
	d.mu.Unlock()
	for n, c := range d.pending(prefix) {
		if prev, ok := entries[n]; !ok || !prev.isDir {
			entries[n] = c
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return entries, names, nil
}

func (d *Dir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	entries, names, err := d.view(ctx)
	if err != nil {
		d.fsys.log.Error("listing failed", "prefix", d.Prefix(), "err", err)
		return nil, toErrno(err)
	}
	out := make([]fuse.DirEntry, 0, len(names))
	for _, n := range names {
		mode := uint32(syscall.S_IFREG)
		if entries[n].isDir {
			mode = syscall.S_IFDIR
		}
		out = append(out, fuse.DirEntry{Name: n, Mode: mode})
	}
	d.mu.Lock()
	if d.list != nil && d.list.names == nil {
		d.list.names = names
	}
	d.mu.Unlock()
	return fusefs.NewListDirStream(out), 0
}

func (d *Dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if nameProblem(name) != "" {
		return nil, syscall.ENOENT
	}
	c, err := d.find(ctx, name)
	if err != nil {
		return nil, toErrno(err)
	}
	if c.isDir {
		return d.dirChild(ctx, name, out), 0
	}
	return d.fileChild(ctx, name, c.obj, out)
}

// find says what name is: a waiting file, then the listing if fresh, else
// a probe of the bucket.
func (d *Dir) find(ctx context.Context, name string) (child, error) {
	prefix := d.Prefix()
	if p := d.pending(prefix); len(p) > 0 {
		if c, ok := p[name]; ok {
			return c, nil
		}
	}
	d.mu.Lock()
	l := d.freshListingLocked()
	var c child
	var ok bool
	if l != nil {
		c, ok = l.entries[name]
	}
	d.mu.Unlock()
	if l != nil {
		if !ok {
			return child{}, store.ErrNotFound
		}
		return c, nil
	}
	return d.probe(ctx, prefix+name)
}

// probe finds out what key is without listing the whole directory: a
// keyed HEAD of the object (whose answer also holds the metadata) and a
// one-key listing under key/, in parallel.
func (d *Dir) probe(ctx context.Context, key string) (child, error) {
	var (
		isDir bool
		attrs store.Attrs
		herr  error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		attrs, herr = d.fsys.meta.get(gctx, key)
		return nil
	})
	g.Go(func() error {
		return d.fsys.opts.Store.List(gctx, key+"/", store.ListOptions{Limit: 1}, func(store.Entry) error {
			isDir = true
			return nil
		})
	})
	if err := g.Wait(); err != nil {
		return child{}, err
	}
	switch {
	case isDir:
		return child{isDir: true}, nil
	case herr == nil:
		return child{obj: store.Entry{Key: key, Size: attrs.Size, ETag: attrs.ETag, LastModified: attrs.LastModified}}, nil
	case errors.Is(herr, store.ErrOtherKey) || errors.Is(herr, store.ErrAccessDenied):
		// It exists but HEAD cannot say how big it is: a listing can.
		var found *store.Entry
		err := d.fsys.opts.Store.List(ctx, key, store.ListOptions{Limit: 1}, func(e store.Entry) error {
			if e.Key == key {
				found = &e
			}
			return nil
		})
		if err != nil {
			return child{}, err
		}
		if found != nil {
			return child{obj: *found}, nil
		}
		return child{}, store.ErrNotFound
	}
	return child{}, herr
}

func (d *Dir) dirChild(ctx context.Context, name string, out *fuse.EntryOut) *fusefs.Inode {
	d.fsys.fillDir(&out.Attr)
	if ch := d.GetChild(name); ch != nil {
		if _, ok := ch.Operations().(*Dir); ok {
			return ch
		}
	}
	return d.NewInode(ctx, d.fsys.newDir(d.Prefix()+name+"/"), fusefs.StableAttr{Mode: syscall.S_IFDIR})
}

// fileChild makes the node of a file or symlink. Its attributes need the
// HEAD (mtime, mode, and whether it is a symlink), which a lookup waits
// for; the HEADs of the files listed after it start at the same time.
func (d *Dir) fileChild(ctx context.Context, name string, obj store.Entry, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	key := d.Prefix() + name
	existing := d.GetChild(name)
	f := &File{fsys: d.fsys, dir: d, key: key}
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
	if a.symlink {
		if existing != nil {
			if _, ok := existing.Operations().(*Link); ok {
				return existing, 0
			}
		}
		return d.NewInode(ctx, &Link{fsys: d.fsys, key: key, size: a.size}, fusefs.StableAttr{Mode: syscall.S_IFLNK}), 0
	}
	if existing != nil && existing.Operations() == fusefs.InodeEmbedder(f) {
		return existing, 0
	}
	return d.NewInode(ctx, f, fusefs.StableAttr{Mode: syscall.S_IFREG}), 0
}

// metaAhead starts the HEADs of the files listed after name, so that a
// program stat'ing every file of a folder in order finds them answered.
func (d *Dir) metaAhead(ctx context.Context, name string) {
	d.mu.Lock()
	l := d.freshListingLocked()
	if l == nil || l.names == nil {
		d.mu.Unlock()
		return
	}
	i := sort.SearchStrings(l.names, name)
	ahead := d.fsys.opts.MetaAhead
	// Top up only when the reader has used half of the window, so a stat
	// costs no work in the common case.
	if i < l.metaAhead-ahead/2 {
		d.mu.Unlock()
		return
	}
	end := min(i+ahead, len(l.names))
	var keys []string
	for _, n := range l.names[max(i, l.metaAhead):end] {
		if c, ok := l.entries[n]; ok && !c.isDir {
			keys = append(keys, d.prefix+n)
		}
	}
	l.metaAhead = end
	d.mu.Unlock()
	d.fsys.meta.prefetch(ctx, keys)
}
