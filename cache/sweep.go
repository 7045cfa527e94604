package cache

import (
	"context"
	"sync"
	"sync/atomic"
)

// sweepAfter is how many pieces a reader misses in one object, too big for
// memory, before the whole object is fetched to disk. Each piece costs a
// round trip; the object costs its size over the bandwidth, fetched in
// parallel, and then every read of it is local. A few seeks (a player, an
// archive's index) stay below it.
const sweepAfter = 8

// fromDisk fills buf with the bytes of id from the disk tier, if a block
// there holds them all.
func (c *Cache) fromDisk(id BlockID, buf []byte) bool {
	if c.disk == nil {
		return false
	}
	off := c.offset(id)
	block := BlockID{Key: id.Key, ETag: id.ETag, Index: off / c.blockSize}
	return c.disk.read(block, off-block.Index*c.blockSize, buf)
}

// sweepable reports whether an object of size bytes goes to disk when read
// at random: it must not fit in memory (there, hot blocks are fetched whole
// instead) and must fit in half the disk tier, so that sweeping it does not
// evict itself.
func (c *Cache) sweepable(size int64) bool {
	return c.disk != nil && size > c.size/2 && size <= c.disk.Size()/2
}

// sweep fetches every block of one version of an object that the disk tier
// lacks, a few at a time, straight to disk: the memory tier is not churned
// by blocks nobody asked for yet. It runs in the background, detached from
// the reader (a random reader often closes and opens again), and stops at
// the first failure (a changed object fails every fetch). Random reads go on
// meanwhile, by pieces, and find the blocks on disk as they arrive.
func (c *Cache) sweep(key, etag string, size int64, fetch Fetch) {
	obj := BlockID{Key: key, ETag: etag}
	c.mu.Lock()
	if c.sweeping[obj] {
		c.mu.Unlock()
		return
	}
	c.sweeping[obj] = true
	c.mu.Unlock()
	c.swept.Add(1)
	go func() {
		defer c.swept.Done()
		c.log.Debug("read at random: fetching the whole object to the disk cache", "key", key, "size", size)
		var wg sync.WaitGroup
		var failed atomic.Bool
		for i := int64(0); i*c.blockSize < size && !failed.Load(); i++ {
			id := BlockID{Key: key, ETag: etag, Index: i}
			if c.disk.has(id) {
				continue
			}
			if b, ok := c.blocks.Peek(id); ok && b.pin() { // read already: no second GET
				c.disk.write(id, b.data)
				c.unpin(b)
				continue
			}
			c.sweeps <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-c.sweeps; wg.Done() }()
				buf := c.alloc(int(min(c.blockSize, size-i*c.blockSize)))
				defer c.recycle(buf)
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
				defer cancel()
				if err := fetch(ctx, i*c.blockSize, buf); err != nil {
					failed.Store(true)
					return
				}
				c.disk.write(id, buf)
			}()
		}
		wg.Wait()
		c.log.Debug("swept to the disk cache", "key", key, "complete", !failed.Load())
		c.mu.Lock()
		delete(c.sweeping, obj)
		c.mu.Unlock()
	}()
}
