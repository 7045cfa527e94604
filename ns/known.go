package ns

import (
	"strings"
	"time"

	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/store"
)

// What the mount knows of an object's version. A stat needs an object's
// metadata (mtime, mode, owner), which only a keyed HEAD gives (or MinIO's
// listings with metadata): one request per file, on every mount and after
// every TTL. But a plain listing, which a walk needs anyway, shows each
// object's version: ETag, size and LastModified to the millisecond. A
// change by another client, a metadata-only one included, makes a new
// version (a copy onto itself after chmod keeps size and ETag on RGW and
// MinIO, but not LastModified). So an answer is tied to the version it
// describes, and a later listing showing the same version makes it fresh
// again without a HEAD: on this mount after the TTL (confirm), and on the
// next mount from the records kept on disk (package metadisk).
//
// An answer is tied to a version only when that is sure: the HEAD was sent
// after the listing showing the version was answered (so it saw that
// version or a later one: a later one with the same ETag, size and second
// would be tied to the older version, which the next listing no longer
// shows), or the listing itself carried the metadata (MinIO).

// sameVersion says whether a HEAD's answer is of the version a listing
// showed. A HEAD gives LastModified to the second only.
func sameVersion(v metadisk.Version, a store.Attrs) bool {
	d := v.LastModified.Sub(a.LastModified)
	return v.ETag == a.ETag && v.Size == a.Size && d > -time.Second && d < time.Second
}

// confirm records that a listing sent at sent shows version v of key: an
// answer known for v is fresh again, else rec, kept on disk for v, is
// used; unless this mount learnt more since the listing was sent, or a
// HEAD is on its way.
func (m *metaCache) confirm(key string, v metadisk.Version, sent time.Time, rec *metadisk.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := store.Attrs{}
	switch e, ok := m.entries.Peek(key); {
	case ok && !isDone(e), ok && !e.at.Before(sent):
		return
	case ok && e.err == nil && !e.forgotten && e.hasVer && e.ver.Equal(v):
		a = e.attrs
	case rec != nil:
		a = rec.Attrs
	default:
		return
	}
	m.entries.Add(key, &metaEntry{done: closed, attrs: a, at: sent, ver: v, hasVer: true})
}

func isDone(e *metaEntry) bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// known returns the answer held for version v of key, whatever its age.
func (m *metaCache) known(key string, v metadisk.Version) (store.Attrs, bool) {
	m.mu.Lock()
	e, ok := m.entries.Peek(key)
	m.mu.Unlock()
	if !ok || !isDone(e) || e.err != nil || e.forgotten || !e.hasVer || !e.ver.Equal(v) {
		return store.Attrs{}, false
	}
	return e.attrs, true
}

// listedVersion is metaCache.listed: the version of key in its folder's
// last listing, if that listing was answered before sent and the entry is
// the listing's (not a change of this mount patched in).
// A folder's marker (key ending in "/") is listed in the folder itself.
func (n *Namespace) listedVersion(key string, sent time.Time) (metadisk.Version, bool) {
	d, name := n.parentOf(key)
	if strings.HasSuffix(key, "/") {
		d = n.loaded(key)
	}
	if d == nil {
		return metadisk.Version{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.list
	if l == nil || l.answered.IsZero() || l.answered.After(sent) {
		return metadisk.Version{}, false
	}
	if strings.HasSuffix(key, "/") {
		if l.marker == nil || d.prefix != key {
			return metadisk.Version{}, false
		}
		return *l.marker, true
	}
	c, ok := l.entries[name]
	if !ok || c.Dir || !c.Listed || c.Object.Key != key {
		return metadisk.Version{}, false
	}
	return metadisk.VersionOf(c.Object), true
}

// recall loads the records kept on disk for a folder about to be listed.
func (n *Namespace) recall(prefix string) map[string]metadisk.Record {
	if n.opts.Known == nil || n.opts.MetaTTL <= 0 {
		return nil
	}
	return n.opts.Known.Load(prefix)
}

// learntKey marks the folder of key for saving: a version of one of its
// objects became known.
func (n *Namespace) learntKey(key string) {
	d, _ := n.parentOf(key)
	if strings.HasSuffix(key, "/") {
		d = n.loaded(key) // a marker's record is kept with its folder's
	}
	if d != nil {
		n.learnt(d)
	}
}

func (n *Namespace) learnt(d *Folder) {
	if n.opts.Known == nil {
		return
	}
	n.knownMu.Lock()
	n.dirty[d] = true
	n.knownMu.Unlock()
}

// saveEvery is how often what was learnt is written to disk; the rest at
// unmount. A crash loses at most this much learning, never correctness.
const saveEvery = 10 * time.Second

func (n *Namespace) saveLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(saveEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			n.saveKnown()
		case <-stop:
			n.saveKnown()
			return
		}
	}
}

// saveKnown writes the records of the folders that learnt something.
func (n *Namespace) saveKnown() {
	n.knownMu.Lock()
	dirty := n.dirty
	n.dirty = map[*Folder]bool{}
	n.knownMu.Unlock()
	for d := range dirty {
		n.saveFolder(d)
	}
}

// saveFolder writes a folder's records: for each object its last listing
// showed, the answer known for that version, else the record kept for it
// (this mount may hold fewer answers than the disk: its cache is bounded).
// Objects no longer listed, or listed in another version, lose theirs.
func (n *Namespace) saveFolder(d *Folder) {
	d.mu.Lock()
	prefix, l := d.prefix, d.list
	var listed []store.Entry
	if l != nil {
		listed = make([]store.Entry, 0, len(l.entries)+1)
		if l.marker != nil { // the folder's own, under the name ""
			m := *l.marker
			listed = append(listed, store.Entry{Key: prefix, ETag: m.ETag, Size: m.Size, LastModified: m.LastModified})
		}
		for _, c := range l.entries {
			if c.Listed && !c.Dir {
				listed = append(listed, c.Object)
			}
		}
	}
	d.mu.Unlock()
	if l == nil {
		return // renamed away: its listing went
	}
	old := n.opts.Known.Load(prefix)
	recs := make([]metadisk.Record, 0, len(listed))
	for _, o := range listed {
		v, name := metadisk.VersionOf(o), o.Key[len(prefix):]
		if a, ok := n.meta.known(o.Key, v); ok {
			recs = append(recs, metadisk.Record{Name: name, Ver: v, Attrs: a})
		} else if r, ok := old[name]; ok && r.Ver.Equal(v) {
			recs = append(recs, r)
		}
	}
	if err := n.opts.Known.Save(prefix, recs); err != nil {
		n.log.Warn("saving the metadata cache failed; the next mount asks the server again", "prefix", prefix, "err", err)
	}
}
