package ns

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/store"
)

// Folder is what exists under one prefix: the objects and common prefixes
// the bucket lists there, and the files of this mount waiting for upload.
//
// Lock order: listMu before mu. listMu serialises listings of this folder
// (one listing serves everyone waiting); mu guards the fields.
type Folder struct {
	ns *Namespace

	listMu sync.Mutex
	mu     sync.Mutex
	prefix string   // "" for the bucket root, else ends in "/"; guarded by mu (renames change it)
	list   *listing // last listing, patched by this mount's changes; guarded by mu
	// rootAttrs are the bucket root's attributes as last set: the root
	// has no marker object to keep them in. Guarded by mu.
	rootAttrs *Attrs
	// listingNow is true while a listing is on its way; replay holds the
	// changes patched meanwhile, applied to the new listing too (it may
	// have been answered before them). Guarded by mu.
	listingNow bool
	replay     []patchOp
}

// Entry is one name of a folder: a folder, or an object (or a waiting
// file, as the object it will be).
type Entry struct {
	Dir    bool
	Object store.Entry // for files
	// Listed: Object is what a listing showed, not a change of this
	// mount patched in (known.go).
	Listed bool
}

// Name is one name of a folder as a program lists it.
type Name struct {
	Name string
	Dir  bool
}

type patchOp struct {
	name string
	c    *Entry
}

// listing is one snapshot of a folder.
type listing struct {
	at       time.Time // sent
	answered time.Time // zero until the listing is whole
	entries  map[string]Entry
	// known are the records kept on disk for the folder, while it is
	// being listed; recalled counts those that still apply, and learnt
	// says the listing taught something worth saving (known.go).
	known    map[string]metadisk.Record
	recalled int
	learnt   bool
	// seq is Namespace.changes when the listing was sent.
	seq   uint64
	names []string // sorted; nil until first needed
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
	// withMeta: the listing asked for metadata (listMetadata).
	withMeta bool
	// marker is the version of the folder's own marker object (its key is
	// the prefix: mode, owner and mtime of the folder), if listed; the
	// record kept for it is under the name "" (known.go).
	marker *metadisk.Version
}

func newListing(at time.Time) *listing { return &listing{at: at, entries: map[string]Entry{}} }

// sortNames sorts the listing's names if a change dropped them: a program
// that stats the files of a folder without listing it (rsync's receiver
// walks its own file list) gets the HEADs ahead too. New names, new
// indexes: the windows ahead start again (the metadata cache skips what it
// already holds). Called with the folder's mu held.
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

// Prefix is the key prefix of the folder's children.
func (d *Folder) Prefix() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prefix
}

// freshListingLocked returns the last listing if it is younger than the
// TTL. Called with d.mu held.
func (d *Folder) freshListingLocked() *listing {
	if d.list != nil && time.Since(d.list.at) < d.ns.opts.MetaTTL {
		return d.list
	}
	return nil
}

func (d *Folder) freshListing() *listing {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.freshListingLocked()
}

// listing returns a fresh listing, listing the prefix if needed.
func (d *Folder) listing(ctx context.Context) (*listing, error) { return d.list1(ctx, false) }

// claimAhead makes the listing made ahead for the folder its snapshot, if
// there is one (waiting for it if it is on its way), and lists nothing
// otherwise: a folder's stat wants the listing's word on its marker, but
// must not list a big folder whole.
func (d *Folder) claimAhead(ctx context.Context) {
	if d.ns.aheadHeld(d.Prefix()) {
		_, _ = d.list1(ctx, true)
	}
}

// list1 is listing; aheadOnly, it takes the listing made ahead or none.
func (d *Folder) list1(ctx context.Context, aheadOnly bool) (*listing, error) {
	// Not cut by the caller's interrupt: the listing is shared with every
	// lookup waiting for it, and a Go program's thread gets a signal (and
	// its FUSE request an interrupt) at any time; rmdir and unlink then
	// failed with EINTR in the soak. The store's deadlines bound it.
	ctx = context.WithoutCancel(ctx)
	if l := d.freshListing(); l != nil {
		return l, nil
	}
	listed, missed := false, false
	defer func() {
		if listed { // after every lock here is released
			d.ns.listNextAhead(ctx, d, missed)
		}
	}()
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
	n := d.ns
	l := n.takeAhead(ctx, prefix)
	if aheadOnly && (l == nil || time.Since(l.at) >= n.opts.MetaTTL) {
		d.mu.Lock()
		d.listingNow, d.replay = false, nil
		d.mu.Unlock()
		return nil, nil
	}
	if l == nil || time.Since(l.at) >= n.opts.MetaTTL {
		missed = true
		l = newListing(time.Now())
		l.seq = n.changes.Load()
		l.known = n.recall(prefix)
		l.withMeta = n.listMetadata() && len(l.known) == 0
		opts := store.ListOptions{Metadata: l.withMeta}
		err = n.opts.Store.List(ctx, prefix, opts, func(e store.Entry) error {
			n.addEntry(l, prefix, e, l.at)
			return nil
		})
		l.listed()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	replay := d.replay
	d.listingNow, d.replay = false, nil
	if err != nil && d.list != nil && n.opts.MetaTTL > 0 && n.offline(err) {
		// Offline, a folder listed before answers from its snapshot,
		// patched by this mount's changes since (a documented exception
		// to the TTL; --meta-ttl 0 mounts fail). The next look asks again.
		return d.list, nil
	}
	if err != nil {
		return nil, err
	}
	// A change patched while the listing was on its way went to the old
	// snapshot; the server may have answered before it (an upload that
	// ended meanwhile would vanish from the folder until the TTL).
	for _, op := range replay {
		l.apply(op.name, op.c)
	}
	listed = true
	if d.prefix == prefix {
		d.list = l
		if l.learnt {
			l.learnt = false
			n.learnt(d)
		}
	}
	return l, nil
}

// listed marks the listing whole; what it taught is worth saving if it
// filed metadata, or if records kept for the folder no longer apply.
func (l *listing) listed() {
	l.answered = time.Now()
	l.learnt = l.learnt || l.recalled != len(l.known)
	l.known = nil
}

// addEntry files one listing entry under its name, leaving out keys that
// cannot be file names. A key that is both an object and a prefix shows as
// the folder, so that everything under it stays reachable.
func (n *Namespace) addEntry(l *listing, prefix string, e store.Entry, sent time.Time) {
	rest, ok := strings.CutPrefix(e.Key, prefix)
	v := metadisk.VersionOf(e)
	rec, known := l.known[rest]
	switch {
	case e.IsPrefix:
	case e.Attrs != nil:
		// The listing answered what a HEAD would: ls -l and rsync need no
		// request per file.
		l.learnt = n.meta.putListed(e.Key, *e.Attrs, v, sent) || l.learnt
	case ok && known && rec.Ver.Equal(v):
		l.recalled++ // kept on disk by an earlier mount: no HEAD
		n.meta.confirm(e.Key, v, sent, &rec)
	default:
		n.meta.confirm(e.Key, v, sent, nil) // known in memory, past the TTL
	}
	if ok && rest == "" && !e.IsPrefix {
		l.marker = &v
	}
	if !ok || rest == "" {
		return // this folder's own marker object, or not in it at all
	}
	name := strings.TrimSuffix(rest, "/")
	if strings.Contains(name, "/") {
		// A server listing with the delimiter never sends one.
		n.WarnOnce(e.Key, "object left out: the listing of its folder named it with a \"/\"")
		return
	}
	if p := NameProblem(name); p != "" {
		n.WarnOnce(e.Key, "object left out: its name cannot be a file name", "reason", p)
		return
	}
	prev, dup := l.entries[name]
	switch {
	case e.IsPrefix:
		if dup && !prev.Dir {
			n.WarnOnce(prefix+name, "object hidden by a folder of the same name")
		}
		l.entries[name] = Entry{Dir: true}
	case dup && prev.Dir:
		n.WarnOnce(e.Key, "object hidden by a folder of the same name")
	default:
		l.entries[name] = Entry{Object: e, Listed: true}
	}
}

// patch records a change this mount made in the folder, so that the
// listing snapshot does not contradict it until it is listed again. c nil
// removes name.
func (d *Folder) patch(name string, c *Entry) {
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
func (l *listing) apply(name string, c *Entry) {
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

// pending returns what the files waiting for upload put under the folder:
// files directly in it and folders on the way to deeper ones.
func (d *Folder) pending(prefix string) map[string]Entry {
	out := map[string]Entry{}
	if d.ns.stage == nil {
		return out
	}
	files, folders := d.ns.stage.Children(prefix)
	for _, name := range folders {
		out[name] = Entry{Dir: true}
	}
	for _, e := range files {
		info := e.Info()
		rest, ok := strings.CutPrefix(info.Key, prefix)
		if ok && rest != "" && !strings.Contains(rest, "/") { // not renamed meanwhile
			out[rest] = Entry{Object: store.Entry{Key: info.Key, Size: info.Size, LastModified: info.Attrs.Mtime}}
		}
	}
	return out
}

// List is the folder as a program lists it: the listing with the waiting
// files on top, names sorted.
func (d *Folder) List(ctx context.Context) ([]Name, error) {
	l, err := d.listing(ctx)
	if err != nil {
		return nil, err
	}
	n := d.ns
	d.mu.Lock()
	prefix := d.prefix
	entries := make(map[string]Entry, len(l.entries))
	files := false
	for name, c := range l.entries {
		entries[name] = c
		files = files || !c.Dir
	}
	d.mu.Unlock()
	if n.opts.RefusePlaintext {
		for name, c := range entries {
			if !c.Dir && n.hiddenPlain(prefix+name) {
				delete(entries, name)
			}
		}
	}
	if files {
		n.walked.Store(l)
	}
	if n.stage != nil {
		for k := range n.stage.Leaving(prefix) {
			if rest := k[len(prefix):]; !strings.Contains(rest, "/") {
				delete(entries, rest)
			}
		}
	}
	for name, c := range d.pending(prefix) {
		if prev, ok := entries[name]; !ok || !prev.Dir {
			entries[name] = c
		}
	}
	out := make([]Name, 0, len(entries))
	for name, c := range entries {
		out = append(out, Name{Name: name, Dir: c.Dir})
	}
	slices.SortFunc(out, func(a, b Name) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Find says what name is: a waiting file, else what the listing says.
// A lookup lists the whole folder (cached for the TTL) rather than
// probing the one name: programs that look up one name in a folder look
// up its neighbours next (rsync, cp -r, ls -l), and one listing of a
// thousand names costs what one probe does.
func (d *Folder) Find(ctx context.Context, name string) (Entry, error) {
	prefix := d.Prefix()
	if st := d.ns.stage; st != nil {
		if e := st.Lookup(prefix + name); e != nil {
			info := e.Info()
			return Entry{Object: store.Entry{Key: info.Key, Size: info.Size, LastModified: info.Attrs.Mtime}}, nil
		}
		if st.HasUnder(prefix + name + "/") {
			return Entry{Dir: true}, nil
		}
		if st.IsLeaving(prefix + name) {
			return Entry{}, store.ErrNotFound // renamed away, not yet deleted
		}
	}
	l, err := d.listing(ctx)
	if err != nil {
		return Entry{}, err
	}
	d.mu.Lock()
	c, ok := l.entries[name]
	d.mu.Unlock()
	if !ok {
		return Entry{}, store.ErrNotFound
	}
	return c, nil
}

// setListing makes a known listing the folder's snapshot (a folder just
// made is known empty).
func (d *Folder) setListing(l *listing) {
	d.mu.Lock()
	d.list = l
	d.mu.Unlock()
}
