package ns

import (
	"context"
	"errors"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/store"
)

// metaCache holds keyed HEAD answers for metaTTL. Concurrent askers share
// one HEAD, and a listed directory's objects can be fetched ahead in
// parallel, bounded, so that `ls -l` costs the time of a few round trips
// rather than one per file.
//
// Lock order: metaCache.mu is taken after Folder.mu, and nothing after it.
type metaCache struct {
	st  store.Store
	ttl time.Duration
	sem chan struct{} // bounds concurrent HEADs
	// offline says an error is the server out of reach: the last answer
	// for the key is used instead (Namespace.offline).
	offline func(error) bool
	// listed returns the version of key that the listing of its folder
	// showed, if that listing was answered before sent (known.go).
	listed func(key string, sent time.Time) (metadisk.Version, bool)
	// learnt is told of a key whose version became known (known.go).
	learnt func(key string)

	mu      sync.Mutex
	entries *lru.Cache[string, *metaEntry] // guarded by mu for the check-then-insert
	// prefetching counts the prefetches still walking their keys and the
	// HEADs they started: a test waits for them before it ages answers.
	prefetching sync.WaitGroup
}

type metaEntry struct {
	done  chan struct{} // closed when attrs/err are set
	attrs store.Attrs
	err   error
	at    time.Time
	// forgotten marks this mount's own change of the key at time at: no
	// answer, but a listing sent before it must not be filed after it.
	forgotten bool
	// prev is the last answer this entry replaced, given instead of an
	// offline error (its at kept: it is no fresher for that).
	prev *metaEntry
	// ver is the version of the object that attrs describe, as a plain
	// listing shows it (hasVer): a later listing showing the same one
	// makes the entry fresh again, and it may be kept on disk (known.go).
	ver    metadisk.Version
	hasVer bool
}

// closed is the done channel of entries known when made.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newMetaCache(st store.Store, ttl time.Duration, parallel, capacity int, offline func(error) bool) *metaCache {
	l, _ := lru.New[string, *metaEntry](capacity)
	return &metaCache{st: st, ttl: ttl, sem: make(chan struct{}, parallel), entries: l, offline: offline,
		listed: func(string, time.Time) (metadisk.Version, bool) { return metadisk.Version{}, false },
		learnt: func(string) {}}
}

// fresh reports whether e may be used: a HEAD in flight always may (waiting
// for it beats sending another), a finished one only within the TTL.
func (m *metaCache) fresh(e *metaEntry) bool {
	return !isDone(e) || m.current(e)
}

// current reports whether a finished entry still answers: not a change of
// this mount's, and within the TTL.
func (m *metaCache) current(e *metaEntry) bool {
	return !e.forgotten && time.Since(e.at) < m.ttl
}

// entry returns the fresh entry for key, or a new one that the caller must
// fill with head (created is then true).
func (m *metaCache) entry(key string) (e *metaEntry, created bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.entries.Get(key)
	if ok && m.fresh(old) {
		return old, false
	}
	e = &metaEntry{done: make(chan struct{})}
	if ok && old.err == nil && !old.forgotten {
		e.prev = old
	}
	m.entries.Add(key, e)
	return e, true
}

// lookup returns the entry for key, starting a HEAD if none is fresh.
func (m *metaCache) lookup(ctx context.Context, key string) *metaEntry {
	e, _ := m.lookup1(ctx, key, nil)
	return e
}

// lookupVersion starts the HEAD of key, if none is fresh, tied to version
// v of a listing answered before now; it says whether it started one.
func (m *metaCache) lookupVersion(ctx context.Context, key string, v metadisk.Version) bool {
	_, created := m.lookup1(ctx, key, &v)
	return created
}

func (m *metaCache) lookup1(ctx context.Context, key string, v *metadisk.Version) (*metaEntry, bool) {
	e, created := m.entry(key)
	if created {
		m.prefetching.Add(1)
		go func() {
			defer m.prefetching.Done()
			m.sem <- struct{}{}
			m.head(context.WithoutCancel(ctx), key, e, v)
			<-m.sem
		}()
	}
	return e, created
}

// head asks the server about key for entry e. The answer is tied to the
// version a listing showed: listed, if given (that listing was answered
// before the HEAD was sent), else the folder's last listing's.
func (m *metaCache) head(ctx context.Context, key string, e *metaEntry, listed *metadisk.Version) {
	sent := time.Now()
	attrs, err := m.st.Head(ctx, key)
	prev := e.prev
	e.prev = nil
	e.attrs, e.err, e.at = attrs, err, time.Now()
	learnt := false
	v, ok := metadisk.Version{}, false
	if listed != nil {
		v, ok = *listed, true
	} else {
		v, ok = m.listed(key, sent)
	}
	if ok && err == nil && sameVersion(v, attrs) {
		e.ver, e.hasVer, learnt = v, true, true
	}
	if err != nil && prev != nil && m.ttl > 0 && m.offline(err) {
		// Offline, a stat answers what the mount last knew (a documented
		// exception to the TTL); the next stat asks again.
		e.attrs, e.err, e.at = prev.attrs, nil, prev.at
	}
	// Answers that may change any moment are not kept; the last answer
	// comes back, for when the server turns out to be gone. Before the
	// askers are woken: the next question must find it.
	if e.err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrOtherKey) {
		m.mu.Lock()
		if cur, ok := m.entries.Peek(key); ok && cur == e {
			if prev != nil {
				m.entries.Add(key, prev)
			} else {
				m.entries.Remove(key)
			}
		}
		m.mu.Unlock()
	}
	close(e.done)
	if learnt {
		m.learnt(key)
	}
}

// get waits for the attributes of key.
func (m *metaCache) get(ctx context.Context, key string) (store.Attrs, error) {
	e := m.lookup(ctx, key)
	select {
	case <-e.done:
		return e.attrs, e.err
	case <-ctx.Done():
		return store.Attrs{}, ctx.Err()
	}
}

// peek returns finished, fresh attributes without sending anything.
func (m *metaCache) peek(key string) (store.Attrs, bool) {
	m.mu.Lock()
	e, ok := m.entries.Peek(key)
	m.mu.Unlock()
	if !ok {
		return store.Attrs{}, false
	}
	select {
	case <-e.done:
		return e.attrs, e.err == nil && m.current(e)
	default:
		return store.Attrs{}, false
	}
}

// prefetch HEADs keys in the background, at most len(sem) at a time. One
// goroutine walks the list and takes a slot before starting each HEAD, so a
// folder of 100,000 objects does not become 100,000 waiting goroutines.
func (m *metaCache) prefetch(ctx context.Context, keys []string) {
	ctx = context.WithoutCancel(ctx)
	m.prefetching.Add(1)
	go func() {
		defer m.prefetching.Done()
		for _, k := range keys {
			m.sem <- struct{}{}
			e, created := m.entry(k)
			if !created {
				<-m.sem
				continue
			}
			m.prefetching.Add(1)
			go func() {
				defer m.prefetching.Done()
				m.head(ctx, k, e, nil)
				<-m.sem
			}()
		}
	}()
}

// putListed records attributes a listing carried, the listing having been
// sent at sent. What this mount learnt or did to the key since then (a HEAD
// answered, an upload, a rename or delete) is newer and stays; so do a HEAD
// in flight and a fresh HEAD's answer for the same version, which proved
// the key.
//
// The listing's entry is the object's version: what it says may be kept
// on disk (it reports whether it was filed).
func (m *metaCache) putListed(key string, a store.Attrs, v metadisk.Version, sent time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries.Peek(key); ok {
		select {
		case <-e.done:
			if !e.at.Before(sent) || m.fresh(e) && !e.attrs.Listed && e.err == nil && e.attrs.ETag == a.ETag {
				return false
			}
		default:
			return false
		}
	}
	m.entries.Add(key, &metaEntry{done: closed, attrs: a, at: time.Now(), ver: v, hasVer: true})
	return true
}

// proven returns attributes from a keyed HEAD: a listing's are replaced by
// one, since only a HEAD proves that the object is encrypted with our key
// (an object under another key is refused at open with a clear message,
// not at its first read).
func (m *metaCache) proven(ctx context.Context, key string) (store.Attrs, error) {
	a, err := m.get(ctx, key)
	if err != nil || !a.Listed {
		return a, err
	}
	m.mu.Lock()
	if e, ok := m.entries.Peek(key); ok && e.attrs.Listed {
		m.entries.Remove(key)
	}
	m.mu.Unlock()
	p, err := m.get(ctx, key)
	if err != nil && m.ttl > 0 && m.offline(err) {
		return a, nil // offline, open goes on with what the listing said
	}
	return p, err
}

// forget drops what is known of key, so the next question asks the
// server, and marks the time of this mount's change for putListed.
func (m *metaCache) forget(key string) {
	e := &metaEntry{done: closed, at: time.Now(), forgotten: true}
	m.mu.Lock()
	m.entries.Add(key, e)
	m.mu.Unlock()
}

// put records attributes known without asking (the HEAD that proved an
// upload), so the next stat costs nothing.
func (m *metaCache) put(key string, a store.Attrs) {
	e := &metaEntry{done: closed, attrs: a, at: time.Now()}
	m.mu.Lock()
	m.entries.Add(key, e)
	m.mu.Unlock()
}

// Head returns the attributes of key from the cache, or from a HEAD that
// concurrent askers share.
func (n *Namespace) Head(ctx context.Context, key string) (store.Attrs, error) {
	return n.meta.get(ctx, key)
}

// Proven returns attributes of key from a keyed HEAD, never a listing's.
func (n *Namespace) Proven(ctx context.Context, key string) (store.Attrs, error) {
	return n.meta.proven(ctx, key)
}

// Forget drops what is known of key (an object that changed under a
// reader): the next question asks the server.
func (n *Namespace) Forget(key string) { n.meta.forget(key) }

// settled reports whether key has a fresh, finished answer that a stat
// uses as is: its attributes, or that it does not exist.
func (m *metaCache) settled(key string) bool {
	m.mu.Lock()
	e, ok := m.entries.Peek(key)
	m.mu.Unlock()
	return ok && isDone(e) && m.current(e) &&
		(e.err == nil || errors.Is(e.err, store.ErrNotFound))
}
