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

// Dir is a directory: the objects and common prefixes under prefix.
//
// Lock order: listMu before mu. listMu serialises listings of this
// directory (one listing serves everyone waiting); mu guards the fields.
type Dir struct {
	fusefs.Inode
	fsys   *FS
	prefix string // "" for the bucket root, else ends in "/"

	listMu sync.Mutex
	mu     sync.Mutex
	list   *listing // last listing; guarded by mu
}

// listing is one snapshot of a directory.
type listing struct {
	at      time.Time
	names   []string // sorted
	entries map[string]child
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

func (d *Dir) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.fillDir(&out.Attr)
	return 0
}

// freshListing returns the last listing if it is younger than the TTL.
func (d *Dir) freshListing() *listing {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.list != nil && time.Since(d.list.at) < d.fsys.opts.MetaTTL {
		return d.list
	}
	return nil
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
	l := &listing{at: time.Now(), entries: map[string]child{}}
	err := d.fsys.opts.Store.List(ctx, d.prefix, store.ListOptions{}, func(e store.Entry) error {
		d.addEntry(l, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for n := range l.entries {
		l.names = append(l.names, n)
	}
	sort.Strings(l.names)
	d.mu.Lock()
	d.list = l
	d.mu.Unlock()
	return l, nil
}

// addEntry files one listing entry under its name, leaving out keys that
// cannot be file names. A key that is both an object and a prefix shows as
// the directory, so that everything under it stays reachable.
func (d *Dir) addEntry(l *listing, e store.Entry) {
	if e.Key == d.prefix {
		return // this directory's own marker object
	}
	name := strings.TrimSuffix(e.Key[len(d.prefix):], "/")
	if p := nameProblem(name); p != "" {
		d.fsys.warnOnce(e.Key, "object left out: its name cannot be a file name", "reason", p)
		return
	}
	prev, dup := l.entries[name]
	switch {
	case e.IsPrefix:
		if dup && !prev.isDir {
			d.fsys.warnOnce(d.prefix+name, "object hidden by a folder of the same name")
		}
		l.entries[name] = child{isDir: true}
	case dup && prev.isDir:
		d.fsys.warnOnce(e.Key, "object hidden by a folder of the same name")
	default:
		l.entries[name] = child{obj: e}
	}
}

func (d *Dir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	l, err := d.listing(ctx)
	if err != nil {
		d.fsys.log.Error("listing failed", "prefix", d.prefix, "err", err)
		return nil, toErrno(err)
	}
	out := make([]fuse.DirEntry, 0, len(l.names))
	for _, n := range l.names {
		mode := uint32(syscall.S_IFREG)
		if l.entries[n].isDir {
			mode = syscall.S_IFDIR
		}
		out = append(out, fuse.DirEntry{Name: n, Mode: mode})
	}
	return fusefs.NewListDirStream(out), 0
}

func (d *Dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if nameProblem(name) != "" {
		return nil, syscall.ENOENT
	}
	var c child
	if l := d.freshListing(); l != nil {
		var ok bool
		if c, ok = l.entries[name]; !ok {
			return nil, syscall.ENOENT
		}
	} else {
		var err error
		if c, err = d.probe(ctx, name); err != nil {
			return nil, toErrno(err)
		}
	}
	if c.isDir {
		return d.dirChild(ctx, name, out), 0
	}
	return d.fileChild(ctx, name, c.obj, out)
}

// probe finds out what name is without listing the whole directory: a
// keyed HEAD of the object (whose answer also holds the metadata) and a
// one-key listing under name/, in parallel.
func (d *Dir) probe(ctx context.Context, name string) (child, error) {
	key := d.prefix + name
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
	sub := &Dir{fsys: d.fsys, prefix: d.prefix + name + "/"}
	return d.NewInode(ctx, sub, fusefs.StableAttr{Mode: syscall.S_IFDIR})
}

func (d *Dir) fileChild(ctx context.Context, name string, obj store.Entry, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	var f *File
	if ch := d.GetChild(name); ch != nil {
		f, _ = ch.Operations().(*File)
	}
	fresh := f == nil
	if fresh {
		f = &File{fsys: d.fsys, dir: d, key: d.prefix + name}
	}
	f.setListed(obj)
	if errno := f.fill(ctx, &out.Attr); errno != 0 {
		return nil, errno
	}
	if !fresh {
		return f.EmbeddedInode(), 0
	}
	return d.NewInode(ctx, f, fusefs.StableAttr{Mode: syscall.S_IFREG}), 0
}

// metaAhead starts the HEADs of the files listed after name, so that a
// program stat'ing every file of a folder in order finds them answered.
func (d *Dir) metaAhead(ctx context.Context, name string) {
	d.mu.Lock()
	l := d.list
	if l == nil || time.Since(l.at) >= d.fsys.opts.MetaTTL {
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
		if !l.entries[n].isDir {
			keys = append(keys, d.prefix+n)
		}
	}
	l.metaAhead = end
	d.mu.Unlock()
	d.fsys.meta.prefetch(ctx, keys)
}
