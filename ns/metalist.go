package ns

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/store"
)

// Listings with metadata. MinIO lists each object's attributes when asked,
// one request per 1,000 objects instead of a HEAD per file, but such a
// listing costs it about twice a plain one, and `find`, `ls` and lookups
// need no attributes. So a folder is listed with metadata while the
// programs that walk this mount stat the files they list (`ls -l`, rsync,
// `cp -r`: the last folder read that holds files had some stat'ed, or none
// was read yet), and plainly once one did not (`find`): listForMeta. A
// folder listed plainly whose files are stat'ed after all is listed again
// with metadata: the first stat of a file sends its own HEAD (`cat
// dir/file` needs no more); the second starts the listing, and each stat
// waits until it has passed its file. The names are known by then, so a
// big folder is listed in chunks of a page each, a few at a time, rather
// than page after page.
const (
	metaChunkNames = 1000 // names per chunk: one page
	metaParallel   = 4    // chunks listed at once
)

var errNoMetadata = errors.New("the server lists no metadata")
var errChunkDone = errors.New("chunk listed")

// metaListing is one listing with metadata of a folder on its way.
type metaListing struct {
	mu     sync.Mutex
	cond   sync.Cond
	chunks []*metaChunk // in key order; the fields are guarded by mu
}

// metaChunk lists the keys after from up to and including to ("" for the
// last chunk: the folder's end). A chunk holds metaChunkNames names, one
// page, unless objects came since the folder was listed: then a chunk may
// end before to, and the stats of the names it did not reach send HEADs.
type metaChunk struct {
	from, to string
	// upTo is the key of the last object filed: every object of the chunk
	// before it in key order has been filed too.
	upTo string
	done bool
}

func newMetaListing(prefix string, names []string) *metaListing {
	ml := &metaListing{}
	ml.cond.L = &ml.mu
	from := prefix // after the folder's own marker object
	for i := metaChunkNames; i < len(names); i += metaChunkNames {
		to := prefix + names[i-1]
		ml.chunks = append(ml.chunks, &metaChunk{from: from, to: to})
		from = to
	}
	ml.chunks = append(ml.chunks, &metaChunk{from: from})
	return ml
}

// chunkOf returns the chunk that lists key.
func (ml *metaListing) chunkOf(key string) *metaChunk {
	i := sort.Search(len(ml.chunks), func(i int) bool { return ml.chunks[i].from >= key })
	return ml.chunks[max(i-1, 0)]
}

// passed records that c filed every object up to key.
func (ml *metaListing) passed(c *metaChunk, key string) {
	ml.mu.Lock()
	c.upTo = max(c.upTo, key)
	ml.mu.Unlock()
	ml.cond.Broadcast()
}

func (ml *metaListing) finish(c *metaChunk) {
	ml.mu.Lock()
	c.done = true
	ml.mu.Unlock()
	ml.cond.Broadcast()
}

// wait returns once the listing has passed key or ended. The listing is
// bounded by the store's deadline, so the wait is too.
func (ml *metaListing) wait(key string) {
	c := ml.chunkOf(key)
	ml.mu.Lock()
	defer ml.mu.Unlock()
	for !c.done && c.upTo < key {
		ml.cond.Wait()
	}
}

// listMetadata says whether a listing should ask for metadata (above). A
// folder that an earlier mount's records are kept for is listed plainly
// whatever it says: the records answer the stats (known.go).
func (n *Namespace) listMetadata() bool {
	if !n.opts.Store.ListsMetadata() {
		return false
	}
	l := n.walked.Load()
	return l == nil || l.stats.Load() > 0
}

// metaListingFor returns the listing with metadata that will answer a stat
// of name, starting it on the second file stat'ed in the folder's current
// listing, or nil: no fresh listing, a server that does not list metadata,
// or the first file stat'ed.
func (d *Folder) metaListingFor(name string) *metaListing {
	if !d.ns.opts.Store.ListsMetadata() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.freshListingLocked()
	if l == nil {
		return nil
	}
	if l.metaList == nil {
		if l.firstStat == "" || l.firstStat == name {
			l.firstStat = name
			return nil
		}
		l.sortNames()
		l.metaList = newMetaListing(d.prefix, l.names)
		go d.ns.listMeta(l.metaList, d.prefix)
	}
	return l.metaList
}

// listMeta lists prefix with metadata, chunk by chunk, a few at a time,
// filing each object's attributes in the metadata cache (unless this mount
// learnt or changed more since).
func (n *Namespace) listMeta(ml *metaListing, prefix string) {
	sem := make(chan struct{}, metaParallel)
	for _, c := range ml.chunks {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			defer ml.finish(c)
			n.listChunk(ml, c, prefix)
		}()
	}
}

func (n *Namespace) listChunk(ml *metaListing, c *metaChunk, prefix string) {
	sent := time.Now()
	opts := store.ListOptions{Metadata: true, StartAfter: c.from}
	if c.to != "" {
		// One page: a listing that went on would ask for the next page
		// before the first entry past c.to showed that it is not needed.
		opts.Limit = metaChunkNames
	}
	err := n.opts.Store.List(context.Background(), prefix, opts, func(e store.Entry) error {
		if c.to != "" && e.Key > c.to {
			return errChunkDone // the next chunk's
		}
		if e.IsPrefix || strings.HasSuffix(e.Key, "/") {
			return nil
		}
		if e.Attrs == nil && !n.opts.Store.ListsMetadata() {
			return errNoMetadata // the server does not list them (RGW)
		}
		if e.Attrs != nil && n.meta.putListed(e.Key, *e.Attrs, metadisk.VersionOf(e), sent) {
			n.learntKey(e.Key)
		}
		ml.passed(c, e.Key)
		return nil
	})
	if err != nil && !errors.Is(err, errNoMetadata) && !errors.Is(err, errChunkDone) {
		// The stats waiting for it send their own HEADs.
		n.log.Debug("listing with metadata failed", "prefix", prefix, "after", c.from, "err", err)
	}
}

// ObjectAttrs returns the attributes of key, a file in d: known ones, else
// from the folder's listing with metadata, else from a HEAD, starting the
// HEADs of the files listed after it so that a program stat'ing a whole
// folder gets them in parallel.
func (d *Folder) ObjectAttrs(ctx context.Context, key string) (store.Attrs, error) {
	if l := d.freshListing(); l != nil && !IsUnasked(ctx) {
		l.stats.Add(1) // this mount's programs stat what they list
	}
	m := d.ns.meta
	if h, ok := m.peek(key); ok {
		return h, nil
	}
	p := d.Prefix()
	if !strings.HasPrefix(key, p) || len(key) == len(p) {
		return m.get(ctx, key)
	}
	name := key[len(p):]
	if ml := d.metaListingFor(name); ml != nil {
		ml.wait(key)
		if h, ok := m.peek(key); ok {
			return h, nil
		}
	}
	if !d.ns.opts.Store.ListsMetadata() {
		d.HeadsAhead(ctx, name, false)
	}
	return m.get(ctx, key)
}

// unaskedKey marks a context of a lookup no program asked for.
type unaskedKey struct{}

// Unasked marks ctx as a lookup made for the kernel's readdirplus rather
// than by a program: it is not counted as a program's stat (listForMeta),
// and starts nothing ahead (a program that only reads names, `find`, would
// not have asked for the HEADs and listings a stat starts).
func Unasked(ctx context.Context) context.Context {
	return context.WithValue(ctx, unaskedKey{}, true)
}

// IsUnasked reports whether ctx is marked by Unasked.
func IsUnasked(ctx context.Context) bool { return ctx.Value(unaskedKey{}) != nil }

// Known reports whether the attributes of name, as a stat would show them,
// are at hand without a request: a file waiting in the journal, an object
// whose answer is fresh (fetched within the TTL, listed with metadata, or
// kept by an earlier mount for the version just listed), a folder whose
// marker's answer is (present or absent). A name the folder's fresh
// listing does not hold is not known, nor are the files of a listing made
// with metadata: their lookups are what tells whether the programs
// walking the mount stat what they list (listMetadata), and a lookup
// answered from that listing costs no request either.
func (d *Folder) Known(name string) bool {
	d.mu.Lock()
	l := d.freshListingLocked()
	var c Entry
	ok := false
	if l != nil {
		c, ok = l.entries[name]
	}
	key := d.prefix + name
	d.mu.Unlock()
	if !ok || (!c.Dir && l.withMeta) {
		return false
	}
	if c.Dir {
		return d.ns.meta.settled(key + "/")
	}
	if st := d.ns.stage; st != nil && st.Lookup(key) != nil {
		return true
	}
	_, fresh := d.ns.meta.peek(key)
	return fresh
}
