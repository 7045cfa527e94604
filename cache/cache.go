// Package cache is the read side's memory: a byte-bounded LRU of fixed-size
// blocks keyed by (object key, ETag, block index), one fetch per block no
// matter how many readers miss it at once, and a per-handle Reader that
// detects sequential reads and fetches ahead in parallel.
//
// Lock order: Cache.mu is a leaf; the LRU has its own internal lock and is
// never called with Cache.mu held.
package cache

import (
	"context"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// BlockID names one block of one version of one object. The ETag makes a
// changed object a different set of blocks, so stale data is never served
// to a handle pinned to the new version.
type BlockID struct {
	Key   string
	ETag  string
	Index int64
}

// Fetch fills buf with the object's bytes starting at off. buf is sized to
// exactly the bytes that exist.
type Fetch func(ctx context.Context, off int64, buf []byte) error

// Cache is safe for concurrent use.
type Cache struct {
	blockSize int64
	timeout   time.Duration
	blocks    *lru.Cache[BlockID, []byte]
	prefetch  chan struct{} // bounds concurrent read-ahead fetches

	mu     sync.Mutex
	flight map[BlockID]*call // guarded by mu
}

type call struct {
	done chan struct{}
	data []byte
	err  error
}

// Options size the cache.
type Options struct {
	Size      int64         // bytes of block data kept
	BlockSize int64         // bytes per block
	Parallel  int           // concurrent read-ahead fetches
	Timeout   time.Duration // bound on one fetch, whoever waits for it
}

// New returns an empty cache.
func New(o Options) (*Cache, error) {
	if o.BlockSize <= 0 || o.Size < 2*o.BlockSize {
		return nil, fmt.Errorf("cache size %d must hold at least two blocks of %d bytes", o.Size, o.BlockSize)
	}
	if o.Parallel < 1 {
		o.Parallel = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	l, err := lru.New[BlockID, []byte](int(o.Size / o.BlockSize))
	if err != nil {
		return nil, err
	}
	return &Cache{
		blockSize: o.BlockSize, timeout: o.Timeout, blocks: l,
		prefetch: make(chan struct{}, o.Parallel), flight: map[BlockID]*call{},
	}, nil
}

// BlockSize is the size of every block but an object's last.
func (c *Cache) BlockSize() int64 { return c.blockSize }

// Get returns the block, fetching it if needed. length is the block's size
// (shorter for an object's last block). Concurrent misses share one fetch.
// The fetch runs detached from ctx: a reader interrupted by a signal stops
// waiting, but the block still arrives for the next reader.
func (c *Cache) Get(ctx context.Context, id BlockID, length int, fetch Fetch) ([]byte, error) {
	if b, ok := c.blocks.Get(id); ok {
		return b, nil
	}
	f := c.start(ctx, id, length, fetch)
	select {
	case <-f.done:
		return f.data, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Prefetch starts fetching the block in the background unless it is cached,
// already coming, or the read-ahead budget is spent (then it is skipped: the
// next read asks again).
func (c *Cache) Prefetch(ctx context.Context, id BlockID, length int, fetch Fetch) {
	if c.blocks.Contains(id) {
		return
	}
	c.mu.Lock()
	_, coming := c.flight[id]
	c.mu.Unlock()
	if coming {
		return
	}
	select {
	case c.prefetch <- struct{}{}:
	default:
		return
	}
	f := c.start(ctx, id, length, fetch)
	go func() {
		<-f.done
		<-c.prefetch
	}()
}

// Contains reports whether the block is cached, without touching its age.
func (c *Cache) Contains(id BlockID) bool { return c.blocks.Contains(id) }

func (c *Cache) start(ctx context.Context, id BlockID, length int, fetch Fetch) *call {
	c.mu.Lock()
	if f, ok := c.flight[id]; ok {
		c.mu.Unlock()
		return f
	}
	f := &call{done: make(chan struct{})}
	c.flight[id] = f
	c.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	go func() {
		defer cancel()
		buf := make([]byte, length)
		err := fetch(fctx, id.Index*c.blockSize, buf)
		if err == nil {
			c.blocks.Add(id, buf)
			f.data = buf
		}
		f.err = err
		c.mu.Lock()
		delete(c.flight, id)
		c.mu.Unlock()
		close(f.done)
	}()
	return f
}

// Purge drops every cached block of key (all versions), e.g. after the
// object was found changed.
func (c *Cache) Purge(key string) {
	for _, id := range c.blocks.Keys() {
		if id.Key == key {
			c.blocks.Remove(id)
		}
	}
}
