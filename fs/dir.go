package fs

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/stage"

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
	// rootAttrs are the bucket root's attributes as last set: the root
	// has no marker object to keep them in. Guarded by mu.
	rootAttrs *fileAttrs
	// listingNow is true while a listing is on its way; replay holds the
	// changes patched meanwhile, applied to the new listing too (it may
	// have been answered before them). Guarded by mu.
	listingNow bool
	replay     []patchOp
}

type patchOp struct {
	name string
	c    *child
}

// listing is one snapshot of a directory.
type listing struct {
	at      time.Time
	entries map[string]child
	names   []string // sorted; nil until first needed
	// metaAhead and dirsAhead are the indexes up to which the HEADs of
	// files and of folder markers have been started.
	metaAhead, dirsAhead int
	// filesAhead is the index up to which small files' data was fetched;
	// listsAhead, folders' listings started.
	filesAhead, listsAhead int
	// firstStat is the first file stat'ed; metaList, the listing with
	// metadata that the second one started; stats counts the files
	// stat'ed (metalist.go).
	firstStat string
	metaList  *metaListing
	stats     atomic.Int32
}

// sortNames sorts the listing's names if a change dropped them: a program
// that stats the files of a folder without listing it (rsync's receiver
// walks its own file list) gets the HEADs ahead too. New names, new
// indexes: the windows ahead start again (the metadata cache skips what it
// already holds). Called with the directory's mu held.
func (l *listing) sortNames() {
	if l.names != nil {
		return
	}
	l.names = make([]string, 0, len(l.entries))
	for n := range l.entries {
		l.names = append(l.names, n)
	}
	sort.Strings(l.names)
	l.metaAhead, l.dirsAhead, l.filesAhead, l.listsAhead = 0, 0, 0, 0
}

type child struct {
	isDir bool
	obj   store.Entry // for files
}

var (
	_ = (fusefs.NodeLookuper)((*Dir)(nil))
	_ = (fusefs.NodeReaddirer)((*Dir)(nil))
	_ = (fusefs.NodeGetattrer)((*Dir)(nil))
	_ = (fusefs.NodeSetattrer)((*Dir)(nil))
)

// Prefix is the key prefix of the directory's children.
func (d *Dir) Prefix() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prefix
}

// Getattr shows the mode, owner and mtime kept in the folder's marker
// object (as s3fs keeps them), or defaults for a folder without one.
func (d *Dir) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(detach(ctx), &out.Attr)
}

func (d *Dir) fill(ctx context.Context, out *fuse.Attr) syscall.Errno {
	prefix := d.Prefix()
	a := fileAttrs{mode: 0o755, mtime: d.fsys.started}
	if prefix == d.fsys.opts.Prefix {
		d.mu.Lock()
		if d.rootAttrs != nil {
			a = *d.rootAttrs
		}
		d.mu.Unlock()
	}
	if prefix != "" {
		if name, parent := d.Parent(); parent != nil {
			if pd, ok := parent.Operations().(*Dir); ok {
				pd.metaAhead(ctx, name, true) // many folders: their HEADs in parallel
			}
		}
		h, err := d.fsys.meta.get(ctx, prefix)
		switch {
		case err == nil:
			a.mtime = h.LastModified
			d.fsys.applyAttrs(&a, prefix, h)
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrOtherKey), errors.Is(err, store.ErrAccessDenied):
		default:
			return toErrno(err)
		}
	}
	d.fsys.fillDir(out)
	setTimes(out, a.mtime)
	out.Mode = syscall.S_IFDIR | a.mode
	if a.owned && d.fsys.opts.OwnerFromMeta {
		out.Uid, out.Gid = a.uid, a.gid
	}
	return 0
}

// Setattr stores a folder's mode, owner and mtime in its marker object,
// writing one if the folder had none. The bucket root has no marker: its
// attributes last as long as the mount.
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
	a := fileAttrs{mode: cur.Mode & 0o7777, uid: cur.Uid, gid: cur.Gid,
		mtime: time.Unix(int64(cur.Mtime), int64(cur.Mtimensec))}
	if m, ok := in.GetMode(); ok {
		a.mode = m & 0o7777
	}
	if u, ok := in.GetUID(); ok {
		a.uid = u
	}
	if g, ok := in.GetGID(); ok {
		a.gid = g
	}
	if t, ok := in.GetMTime(); ok {
		a.mtime = t
	}
	prefix := d.Prefix()
	if prefix == d.fsys.opts.Prefix && prefix == "" {
		d.mu.Lock()
		d.rootAttrs = &a
		d.mu.Unlock()
	} else {
		meta := stage.MetaOf(stage.Attrs{Mtime: a.mtime, Mode: syscall.S_IFDIR | a.mode, UID: a.uid, GID: a.gid})
		if _, err := d.fsys.opts.Store.Put(ctx, prefix, bytes.NewReader(nil), 0, meta); err != nil {
			d.fsys.log.Error("setting folder attributes failed", "key", prefix, "err", err)
			return toErrno(err)
		}
		d.fsys.meta.forget(prefix)
	}
	return d.Getattr(ctx, fh, out)
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
	// Not cut by the caller's interrupt: the listing is shared with every
	// lookup waiting for it, and a Go program's thread gets a signal (and
	// its FUSE request an interrupt) at any time; rmdir and unlink then
	// failed with EINTR in the soak. The store's deadlines bound it.
	ctx = detach(ctx)
	if l := d.freshListing(); l != nil {
		return l, nil
	}
	d.listMu.Lock()
	defer d.listMu.Unlock()
	if l := d.freshListing(); l != nil { // listed while we waited
		return l, nil
	}
	prefix := d.Prefix()
	d.mu.Lock()
	d.listingNow, d.replay = true, nil
	d.mu.Unlock()
	var err error
	l := d.fsys.takeAhead(ctx, prefix)
	if l == nil || time.Since(l.at) >= d.fsys.opts.MetaTTL {
		l = &listing{at: time.Now(), entries: map[string]child{}}
		opts := store.ListOptions{Metadata: d.fsys.listMetadata()}
		err = d.fsys.opts.Store.List(ctx, prefix, opts, func(e store.Entry) error {
			d.fsys.addEntry(l, prefix, e, l.at)
			return nil
		})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	replay := d.replay
	d.listingNow, d.replay = false, nil
	if err != nil {
		return nil, err
	}
	// A change patched while the listing was on its way went to the old
	// snapshot; the server may have answered before it (an upload that
	// ended meanwhile would vanish from the folder until the TTL).
	for _, op := range replay {
		l.apply(op.name, op.c)
	}
	if d.prefix == prefix {
		d.list = l
	}
	return l, nil
}

// addEntry files one listing entry under its name, leaving out keys that
// cannot be file names. A key that is both an object and a prefix shows as
// the directory, so that everything under it stays reachable.
func (f *FS) addEntry(l *listing, prefix string, e store.Entry, sent time.Time) {
	if e.Attrs != nil && !e.IsPrefix {
		// The listing answered what a HEAD would: ls -l and rsync need
		// no request per file.
		f.meta.putListed(e.Key, *e.Attrs, sent)
	}
	rest, ok := strings.CutPrefix(e.Key, prefix)
	if !ok || rest == "" {
		return // this directory's own marker object, or not in it at all
	}
	name := strings.TrimSuffix(rest, "/")
	if strings.Contains(name, "/") {
		// A server listing with the delimiter never sends one.
		f.warnOnce(e.Key, "object left out: the listing of its folder named it with a \"/\"")
		return
	}
	if p := nameProblem(name); p != "" {
		f.warnOnce(e.Key, "object left out: its name cannot be a file name", "reason", p)
		return
	}
	prev, dup := l.entries[name]
	switch {
	case e.IsPrefix:
		if dup && !prev.isDir {
			f.warnOnce(prefix+name, "object hidden by a folder of the same name")
		}
		l.entries[name] = child{isDir: true}
	case dup && prev.isDir:
		f.warnOnce(e.Key, "object hidden by a folder of the same name")
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
	if d.listingNow {
		d.replay = append(d.replay, patchOp{name, c})
	}
	if d.list != nil {
		d.list.apply(name, c)
	}
}

// apply sets (c) or removes (nil) name. The sorted names follow (a name in
// or out shifts the windows ahead by one, which they tolerate): sorting
// them again on every change would cost a big folder being written
// O(n log n) per file.
func (l *listing) apply(name string, c *child) {
	_, had := l.entries[name]
	if c == nil {
		delete(l.entries, name)
	} else {
		l.entries[name] = *c
	}
	if l.names == nil || had == (c != nil) {
		return
	}
	i := sort.SearchStrings(l.names, name)
	if c == nil && i < len(l.names) && l.names[i] == name {
		l.names = slices.Delete(l.names, i, i+1)
	} else if c != nil {
		l.names = slices.Insert(l.names, i, name)
	}
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
	files := false
	for n, c := range l.entries {
		entries[n] = c
		files = files || !c.isDir
	}
	d.mu.Unlock()
	if d.fsys.opts.RefusePlaintext {
		for n, c := range entries {
			if !c.isDir && d.fsys.hiddenPlain(prefix+n) {
				delete(entries, n)
			}
		}
	}
	if files {
		d.fsys.walked.Store(l)
	}
	if d.fsys.stage != nil {
		for k := range d.fsys.stage.Leaving(prefix) {
			if rest := k[len(prefix):]; !strings.Contains(rest, "/") {
				delete(entries, rest)
			}
		}
	}
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
	return fusefs.NewListDirStream(out), 0
}

func (d *Dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ctx = detach(ctx)
	if nameProblem(name) != "" {
		return nil, syscall.ENOENT
	}
	c, err := d.find(ctx, name)
	if err != nil {
		return nil, toErrno(err)
	}
	if c.isDir {
		return d.dirChild(ctx, name, out)
	}
	return d.fileChild(ctx, name, c.obj, out)
}

// find says what name is: a waiting file, else what the listing says.
// A lookup lists the whole directory (cached for the TTL) rather than
// probing the one name: programs that look up one name in a folder look
// up its neighbours next (rsync, cp -r, ls -l), and one listing of a
// thousand names costs what one probe does.
func (d *Dir) find(ctx context.Context, name string) (child, error) {
	prefix := d.Prefix()
	if d.fsys.stage != nil {
		if e := d.fsys.stage.Lookup(prefix + name); e != nil {
			info := e.Info()
			return child{obj: store.Entry{Key: info.Key, Size: info.Size, LastModified: info.Attrs.Mtime}}, nil
		}
		if len(d.fsys.stage.Under(prefix+name+"/")) > 0 {
			return child{isDir: true}, nil
		}
		if d.fsys.stage.Leaving(prefix + name)[prefix+name] {
			return child{}, store.ErrNotFound // renamed away, not yet deleted
		}
	}
	l, err := d.listing(ctx)
	if err != nil {
		return child{}, err
	}
	d.mu.Lock()
	c, ok := l.entries[name]
	d.mu.Unlock()
	if !ok {
		return child{}, store.ErrNotFound
	}
	return c, nil
}

// dirChild makes the node of a folder. Its attributes (from its marker
// object) are what a stat right after the lookup shows, so the lookup waits
// for them; the markers of the folders listed after it are fetched too.
func (d *Dir) dirChild(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	var sub *Dir
	ch := d.GetChild(name)
	if ch != nil {
		sub, _ = ch.Operations().(*Dir)
	}
	if sub == nil {
		sub = d.fsys.newDir(d.Prefix() + name + "/")
		ch = d.NewInode(ctx, sub, fusefs.StableAttr{Mode: syscall.S_IFDIR})
	}
	d.metaAhead(ctx, name, true)
	d.listAheadAfter(ctx, name)
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

// smallFile is the size up to which a file's data is fetched ahead when an
// earlier file of its folder is opened.
const smallFile = 1 << 20

// filesAhead fetches the data of the small files listed after name, as
// `cp -r` and backup tools read a folder file by file, each read costing a
// round trip otherwise. Up to filesAheadCount files ahead, once each.
func (d *Dir) filesAhead(ctx context.Context, name string) {
	const filesAheadCount = 32
	keys := d.smallFilesAfter(name, filesAheadCount)
	ctx = context.WithoutCancel(ctx)
	for _, k := range keys {
		go func() {
			a, err := d.objectAttrs(ctx, k)
			if err != nil || a.Size > smallFile || a.Size == 0 || d.fsys.refused(a) {
				return
			}
			d.fsys.filesSem <- struct{}{}
			defer func() { <-d.fsys.filesSem }()
			c := d.fsys.opts.Cache
			_ = c.Load(ctx, cache.BlockID{Key: k, ETag: a.ETag, Index: 0}, int(min(a.Size, c.BlockSize())), d.fsys.fetcher(k, a))
		}()
	}
}

// smallFilesAfter returns the keys of the small files among the count
// names listed after name that were not returned before.
func (d *Dir) smallFilesAfter(name string, count int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.freshListingLocked()
	if l == nil {
		return nil
	}
	l.sortNames()
	i := sort.SearchStrings(l.names, name) + 1
	if i < l.filesAhead-count/2 {
		return nil
	}
	end := min(i+count, len(l.names))
	var keys []string
	for _, n := range l.names[min(max(i, l.filesAhead), end):end] {
		if c, ok := l.entries[n]; ok && !c.isDir && c.obj.Size > 0 && c.obj.Size <= smallFile {
			keys = append(keys, d.prefix+n)
		}
	}
	l.filesAhead = max(end, l.filesAhead)
	return keys
}

// metaAhead starts the HEADs of the files listed after name, so that a
// program stat'ing every file of a folder in order finds them answered.
func (d *Dir) metaAhead(ctx context.Context, name string, dirs bool) {
	d.fsys.meta.prefetch(ctx, d.metaKeysAfter(name, dirs))
}

// metaKeysAfter returns the keys (files, or folder markers) among the
// names listed from name on whose HEADs were not started yet.
func (d *Dir) metaKeysAfter(name string, dirs bool) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.freshListingLocked()
	if l == nil {
		return nil
	}
	l.sortNames()
	i := sort.SearchStrings(l.names, name)
	ahead := d.fsys.opts.MetaAhead
	// Top up only when the reader has used half of the window, so a stat
	// costs no work in the common case. Files and folders have windows of
	// their own: `find` stats folders only, and should not HEAD files.
	done := &l.metaAhead
	if dirs {
		done = &l.dirsAhead
	}
	if i < *done-ahead/2 {
		return nil
	}
	end := min(i+ahead, len(l.names))
	var keys []string
	for _, n := range l.names[min(max(i, *done), end):end] {
		if c, ok := l.entries[n]; ok && c.isDir == dirs {
			if dirs {
				keys = append(keys, d.prefix+n+"/") // its marker
			} else {
				keys = append(keys, d.prefix+n)
			}
		}
	}
	*done = end
	return keys
}
