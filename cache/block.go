package cache

import "sync/atomic"

// A block holds one cached block's bytes and counts who holds them: the
// cache while the block is in the LRU (one reference), and each reader
// while it copies out of them (one each). The last to let go recycles the
// bytes for the next fetch. A 1 GiB read through fresh 8 MiB buffers spent
// a fifth of the daemon's CPU on page faults and zeroing (the runtime gives
// freed memory back to the kernel to stay under the memory limit, and every
// new buffer is faulted in again).
//
// Once its count reaches zero a block is dead for good: its bytes may
// already hold another block, so pin fails and the caller asks again.
type block struct {
	data []byte
	refs atomic.Int32
}

func newBlock(data []byte) *block {
	b := &block{data: data}
	b.refs.Store(1)
	return b
}

// pin takes a reference unless the block is dead.
func (b *block) pin() bool {
	for {
		r := b.refs.Load()
		if r <= 0 {
			return false
		}
		if b.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// unpin lets go of a reference; the last one recycles the bytes.
func (c *Cache) unpin(b *block) {
	if b.refs.Add(-1) == 0 {
		c.recycle(b.data)
	}
}

// Spares is how many full-size buffers wait for reuse at most: a
// sequential reader's fetches and evictions come in turn, so a couple
// suffice; more would be memory held for nothing once reading stops.
const Spares = 2

// alloc returns a buffer of length bytes, recycled when it is a full block.
// Its bytes are stale: every fetch fills its buffer or fails.
func (c *Cache) alloc(length int) []byte {
	if int64(length) == c.blockSize {
		select {
		case b := <-c.spare:
			return b
		default:
		}
	}
	return make([]byte, length)
}

// recycle keeps a full-size buffer for alloc, or leaves it to the GC.
func (c *Cache) recycle(b []byte) {
	if int64(len(b)) != c.blockSize {
		return
	}
	select {
	case c.spare <- b:
	default:
	}
}
