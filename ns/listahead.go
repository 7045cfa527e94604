package ns

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// Folder listings ahead: `find`, `du`, `cp -r` and backup tools walk a
// tree folder after folder, each listing a round trip (or more) that the
// walker waits for. When a folder is looked up, the listings of the
// folders after it in its parent are started, a few at a time; a Folder
// without a listing of its own takes the one made ahead for its prefix.
// A folder of a full page (listAheadMax) or more is not listed ahead: the
// walker may never come, and big listings cost memory.
const (
	listAheadCount    = 32   // folders after the looked-up (or listed) one
	listAheadParallel = 16   // listings in flight at once: a round trip of 40 ms hides behind 15 others
	listAheadMax      = 1000 // entries; a bigger folder is listed when asked
	listAheadKept     = 256  // listings held, unclaimed, at most
)

type aheadListing struct {
	at   time.Time
	done chan struct{}
	l    *listing // nil if the folder was too big or the listing failed
	seq  uint64   // Namespace.changes when the listing was sent
}

type listsAhead struct {
	mu  sync.Mutex
	m   map[string]*aheadListing // prefix → listing; guarded by mu
	sem chan struct{}
}

func newListsAhead() *listsAhead {
	return &listsAhead{m: map[string]*aheadListing{}, sem: make(chan struct{}, listAheadParallel)}
}

// listAhead lists prefixes in the background, skipping those listed or
// being listed already, and stops while listAheadKept fresh ones wait to
// be claimed. It returns how many of prefixes it took care of: the rest
// are for a later call, once the walk claimed some.
func (n *Namespace) listAhead(ctx context.Context, prefixes []string) int {
	la := n.lists
	if la == nil {
		return len(prefixes)
	}
	ctx = context.WithoutCancel(ctx)
	for i, p := range prefixes {
		if f := n.loaded(p); f != nil && f.freshListing() != nil {
			continue // listed already, and still held
		}
		la.mu.Lock()
		if len(la.m) >= listAheadKept {
			for k, a := range la.m { // unclaimed past their TTL
				if time.Since(a.at) > n.opts.MetaTTL {
					delete(la.m, k)
				}
			}
		}
		_, held := la.m[p]
		if held {
			la.mu.Unlock()
			continue
		}
		if len(la.m) >= listAheadKept {
			la.mu.Unlock()
			return i
		}
		a := &aheadListing{at: time.Now(), done: make(chan struct{})}
		la.m[p] = a
		la.mu.Unlock()
		go func() {
			la.sem <- struct{}{}
			defer func() { <-la.sem }()
			defer close(a.done)
			a.seq = n.changes.Load()
			l := newListing(time.Now())
			l.seq = a.seq
			l.known = n.recall(p)
			l.withMeta = n.listMetadata() && len(l.known) == 0
			count := 0
			// One page: a full one may have more behind it, and the
			// folder is listed whole when (if) it is asked for.
			opts := store.ListOptions{Limit: listAheadMax, Metadata: l.withMeta}
			err := n.opts.Store.List(ctx, p, opts, func(e store.Entry) error {
				count++
				n.addEntry(l, p, e, l.at)
				return nil
			})
			l.listed()
			if err == nil {
				n.markerAhead(ctx, p, l) // a marker is its folder's first key
			}
			if err == nil && count < listAheadMax {
				a.l = l
			}
		}()
	}
	return len(prefixes)
}

// markerAhead makes sure the folder's attributes are on their way once its
// listing made ahead is in: a walk enters the folders it lists ahead, and
// entering one is a stat. The listing showed the marker's version, which
// confirmed the record an earlier mount kept (addEntry); else the marker's
// HEAD starts now, tied to that version so that it can be kept. Before
// the listing is handed over: a stat waiting for it finds the HEAD on its
// way rather than sending another. A folder with no marker listed is
// HEADed too (its answer, not found, is what a stat shows).
func (n *Namespace) markerAhead(ctx context.Context, prefix string, l *listing) {
	if n.meta.settled(prefix) {
		return
	}
	if l.marker == nil {
		n.meta.lookup(ctx, prefix)
		return
	}
	if n.meta.lookupVersion(ctx, prefix, *l.marker) {
		l.learnt = true
	}
}

// aheadHeld says whether a listing made ahead for prefix waits to be
// claimed, or is on its way.
func (n *Namespace) aheadHeld(prefix string) bool {
	la := n.lists
	if la == nil {
		return false
	}
	la.mu.Lock()
	defer la.mu.Unlock()
	_, ok := la.m[prefix]
	return ok
}

// takeAhead returns the listing made ahead for prefix, waiting for it if
// it is on its way, or nil; either way it is dropped from the map. A
// listing sent before any change this mount made to the bucket since is
// not used: it may predate the change, and which folders a change touches
// (a folder renamed, a file's old name deleted after its upload) is not
// worth tracking for a speed-up that walks of an unchanging tree (find,
// cp -r out, rsync's no-op) are what need.
func (n *Namespace) takeAhead(ctx context.Context, prefix string) *listing {
	la := n.lists
	if la == nil {
		return nil
	}
	la.mu.Lock()
	a, ok := la.m[prefix]
	delete(la.m, prefix)
	la.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-a.done:
	case <-ctx.Done():
		return nil
	}
	if a.seq != n.changes.Load() {
		return nil
	}
	return a.l
}

// ListsAhead starts the listings of the folders listed in d from name on
// (name's own first), up to listAheadCount ahead of name, each once.
func (d *Folder) ListsAhead(ctx context.Context, name string) { d.listsFrom(ctx, name, false, false) }

// listNextAhead keeps a walk's listings ahead of it: once folder d is
// listed, the listings of the folders after it in its parent are started.
// A lookup alone (ListsAhead) cannot: `ls -lR` and rsync look up a whole
// folder's subfolders before entering the first, and the listings made
// ahead then would be too many to keep (listAheadKept); the walk enters
// them one by one, and each listing starts the next ones.
//
// missed says d had to be listed on demand: the window of its parent may
// have passed it already (the folders listed ahead then were dropped,
// their nodes forgotten by the kernel under memory pressure, while the
// parent's listing stayed), so the window starts again from d.
func (n *Namespace) listNextAhead(ctx context.Context, d *Folder, missed bool) {
	prefix := d.Prefix()
	if prefix == n.opts.Prefix || prefix == "" {
		return
	}
	if parent, name := n.parentOf(strings.TrimSuffix(prefix, "/")); parent != nil {
		parent.listsFrom(ctx, name, true, missed)
	}
}

// listsFrom starts the listings of the folders from name on (after it if
// after), up to listAheadCount ahead of name, each once; again, the
// window restarts at name.
func (d *Folder) listsFrom(ctx context.Context, name string, after, again bool) {
	if d.ns.opts.MetaTTL <= 0 {
		return // a listing would be stale before it is used
	}
	d.mu.Lock()
	l := d.freshListingLocked()
	if l == nil {
		d.mu.Unlock()
		return
	}
	l.sortNames()
	i := sort.SearchStrings(l.names, name)
	if after && i < len(l.names) && l.names[i] == name {
		i++
	}
	if after && l.seq != d.ns.changes.Load() {
		// This mount changes the bucket (a copy into the tree, not a
		// read-only walk): listings made ahead would be thrown away.
		d.mu.Unlock()
		return
	}
	if again && l.listsAhead > i {
		l.listsAhead = i
	}
	if i < l.listsAhead-listAheadCount/2 {
		d.mu.Unlock()
		return
	}
	end := min(i+listAheadCount, len(l.names))
	var prefixes []string
	var at []int // index of each prefix's name
	prev := l.listsAhead
	for j := min(max(i, prev), end); j < end; j++ {
		if n := l.names[j]; l.entries[n].Dir {
			prefixes, at = append(prefixes, d.prefix+n+"/"), append(at, j)
		}
	}
	l.listsAhead = max(end, prev)
	d.mu.Unlock()
	if taken := d.ns.listAhead(ctx, prefixes); taken < len(prefixes) {
		// Too many listings wait to be claimed: the next call starts
		// again from the first one refused, or from where this one
		// found the window if it started none (a walk that looks up a
		// level's 1,000 folders first would otherwise never get the
		// listings past the first 256 made ahead: it enters them later,
		// one by one, and each listing starts the next ones).
		d.mu.Lock()
		if taken == 0 {
			l.listsAhead = min(l.listsAhead, prev)
		} else {
			l.listsAhead = min(l.listsAhead, at[taken])
		}
		d.mu.Unlock()
	}
}
