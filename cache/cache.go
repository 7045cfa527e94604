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
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// BlockID names one block of one version of one object. The ETag makes a
// changed object a different set of blocks, so stale data is never served
// to a handle pinned to the new version. A Piece is a small block (Options.
// PieceSize, Index counted in pieces) fetched for a random read, which
// would waste a whole block's transfer on a few bytes.
type BlockID struct {
	Key   string
	ETag  string
	Index int64
	Piece bool
}

// PieceSize is the default piece: the kernel's largest read, so that a
// random reader's read is one piece.
const PieceSize = 128 << 10

// Fetch fills buf with the object's bytes starting at off. buf is sized to
// exactly the bytes that exist.
type Fetch func(ctx context.Context, off int64, buf []byte) error

// Cache is safe for concurrent use.
type Cache struct {
	blockSize int64
	pieceSize int64
	size      int64
	timeout   time.Duration
	blocks    *lru.Cache[BlockID, *block]
	bytes     atomic.Int64  // bytes held by blocks: the bound, since small files make small blocks
	spare     chan []byte   // full-size buffers for reuse (block.go)
	prefetch  chan struct{} // bounds concurrent read-ahead fetches
	disk      *Disk         // nil: memory only
	log       *slog.Logger
	sweeps    chan struct{}  // bounds concurrent block fetches of sweeps
	swept     sync.WaitGroup // sweeps running, for tests to wait on
	counts    counts         // stats.go

	mu       sync.Mutex
	flight   map[BlockID]*call // guarded by mu
	sweeping map[BlockID]bool  // objects (Index 0) being swept to disk; guarded by mu
}

type call struct {
	done chan struct{}
	b    *block // unpinned: a waiter pins it, or asks again if it died
	err  error
}

// Options size the cache.
type Options struct {
	Size      int64         // bytes of block data kept
	BlockSize int64         // bytes per block
	PieceSize int64         // bytes fetched for a random read (default 128 KiB, at most BlockSize)
	Parallel  int           // concurrent read-ahead fetches
	Timeout   time.Duration // bound on one fetch, whoever waits for it
	Disk      *Disk         // second tier for objects read at random (nil: none)
	Log       *slog.Logger  // sweeps to disk, at debug level (nil: none)
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
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.PieceSize <= 0 {
		o.PieceSize = PieceSize
	}
	c := &Cache{
		blockSize: o.BlockSize, pieceSize: min(o.PieceSize, o.BlockSize), size: o.Size, timeout: o.Timeout,
		prefetch: make(chan struct{}, o.Parallel), flight: map[BlockID]*call{}, spare: make(chan []byte, Spares),
		disk: o.Disk, log: o.Log, sweeps: make(chan struct{}, max(o.Parallel/2, 1)), sweeping: map[BlockID]bool{},
	}
	// The entry count only backstops the byte bound: small files make
	// blocks of a few hundred bytes, and each must not evict the others.
	l, err := lru.NewWithEvict[BlockID, *block](int(max(o.Size/1024, 1024)), func(_ BlockID, b *block) {
		c.bytes.Add(-int64(len(b.data)))
		c.unpin(b)
	})
	if err != nil {
		return nil, err
	}
	c.blocks = l
	return c, nil
}

// add caches a block and evicts the oldest until the bytes fit. Should the
// block be cached already (one fetch per block at a time makes that
// unlikely), that one stays and b dies: the LRU replaces a value without
// its eviction callback, so the old block's count would never reach zero.
func (c *Cache) add(id BlockID, b *block) {
	if there, _ := c.blocks.ContainsOrAdd(id, b); there {
		c.unpin(b)
		return
	}
	c.bytes.Add(int64(len(b.data)))
	for c.bytes.Load() > c.size {
		if _, _, ok := c.blocks.RemoveOldest(); !ok {
			break
		}
	}
}

// BlockSize is the size of every block but an object's last.
func (c *Cache) BlockSize() int64 { return c.blockSize }

// Load makes sure the block is cached, fetching it if needed: a read that
// is about to come finds it. length is the block's size (shorter for an
// object's last block).
func (c *Cache) Load(ctx context.Context, id BlockID, length int, fetch Fetch) error {
	b, err := c.get(ctx, id, length, fetch)
	if err == nil {
		c.unpin(b)
	}
	return err
}

// get returns the block pinned, fetching it if needed; the caller unpins
// it once it has copied what it needs. Concurrent misses share one fetch.
// The fetch runs detached from ctx: a reader interrupted by a signal stops
// waiting, but the block still arrives for the next reader.
func (c *Cache) get(ctx context.Context, id BlockID, length int, fetch Fetch) (*block, error) {
	for {
		if b, ok := c.blocks.Get(id); ok && b.pin() {
			c.counts.hits.Add(1)
			return b, nil
		}
		c.counts.misses.Add(1)
		f := c.start(ctx, id, length, fetch)
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil {
			return nil, f.err
		}
		if f.b.pin() {
			return f.b, nil
		}
		// Evicted and recycled before this reader got to it (the whole
		// cache turned over meanwhile): ask again.
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

// Present reports whether the block is cached or being fetched.
func (c *Cache) Present(id BlockID) bool { return c.present(id) }

// present reports whether the block is cached or being fetched.
func (c *Cache) present(id BlockID) bool {
	if c.blocks.Contains(id) {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, coming := c.flight[id]
	return coming
}

// offset is where the block starts in its object.
func (c *Cache) offset(id BlockID) int64 {
	if id.Piece {
		return id.Index * c.pieceSize
	}
	return id.Index * c.blockSize
}

func (c *Cache) start(ctx context.Context, id BlockID, length int, fetch Fetch) *call {
	c.mu.Lock()
	if f, ok := c.flight[id]; ok {
		c.mu.Unlock()
		return f
	}
	// A fetch may have finished between the caller's miss and now: it adds
	// the block before it leaves the flight map.
	if b, ok := c.blocks.Peek(id); ok {
		c.mu.Unlock()
		f := &call{done: make(chan struct{}), b: b}
		close(f.done)
		return f
	}
	f := &call{done: make(chan struct{})}
	c.flight[id] = f
	c.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	go func() {
		defer cancel()
		buf := c.alloc(length)
		var err error
		if c.fromDisk(id, buf) {
			c.counts.diskHits.Add(1)
		} else if err = fetch(fctx, c.offset(id), buf); err == nil {
			c.counts.fetched.Add(1)
			c.counts.fetchedBytes.Add(int64(len(buf)))
		}
		if err == nil {
			f.b = newBlock(buf)
			c.add(id, f.b)
		} else {
			c.recycle(buf)
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
	if c.disk != nil {
		c.disk.purge(key)
	}
	for _, id := range c.blocks.Keys() {
		if id.Key == key {
			c.blocks.Remove(id)
		}
	}
}
