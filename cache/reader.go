package cache

import (
	"context"
	"io"
	"sync"
)

// Reader reads one version of one object through the cache. One Reader per
// open file handle: it keeps the state of the sequential-read detector.
type Reader struct {
	c         *Cache
	key, etag string
	size      int64
	fetch     Fetch
	maxAhead  int64 // read-ahead limit in bytes

	mu     sync.Mutex
	next   int64          // where a sequential reader reads next; guarded by mu
	window int64          // current read-ahead in bytes, grows while reads stay sequential; guarded by mu
	near   bool           // the last read began near where the one before ended; guarded by mu
	missed map[int64]bool // blocks a random read fetched a piece of; guarded by mu
	misses int            // pieces fetched from the network; guarded by mu
}

// NewReader returns a Reader of the object version (key, etag) of size bytes.
func (c *Cache) NewReader(key, etag string, size int64, readAhead int64, fetch Fetch) *Reader {
	return &Reader{c: c, key: key, etag: etag, size: size, fetch: fetch, maxAhead: readAhead}
}

func (r *Reader) id(i int64) BlockID { return BlockID{Key: r.key, ETag: r.etag, Index: i} }

func (r *Reader) blockLen(i int64) int {
	return int(min(r.c.blockSize, r.size-i*r.c.blockSize))
}

// ReadAt fills p from off. It returns io.EOF only when off is at or past the
// end, so a short count means the end of the object.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.size)
	sequential := r.readAhead(ctx, off, end)
	n := 0
	for pos := off; pos < end; {
		id, start, length := r.span(pos, sequential)
		b, err := r.c.get(ctx, id, length, r.fetch)
		if err != nil {
			return n, err
		}
		n += copy(p[n:end-off], b.data[pos-start:])
		r.c.unpin(b)
		pos = off + int64(n)
	}
	return n, nil
}

// span picks what to read pos from: its block when the reader is
// sequential or the block is here or coming anyway, else the small piece
// around pos, so that a random 4 KiB read costs one piece's transfer
// rather than a whole block's. In an object that fits in half the cache,
// a block that a random reader comes back to (a second piece missed in
// it) is hot: it is fetched whole, since a request costs a round trip
// whatever its size, and a block's transfer is a few round trips' worth.
// In a bigger object, whole blocks would evict each other before the
// reader came back to them: it gets pieces only, and once it has missed
// sweepAfter of them, the whole object is fetched to the disk tier (if
// there is one and the object fits in half of it), where the pieces of
// later reads are found. It returns the ID, where it starts and its length.
func (r *Reader) span(pos int64, sequential bool) (BlockID, int64, int) {
	bs, ps := r.c.blockSize, r.c.pieceSize
	i := pos / bs
	block := r.id(i)
	if sequential || ps == bs || r.c.present(block) {
		return block, i * bs, r.blockLen(i)
	}
	j := pos / ps
	piece := BlockID{Key: r.key, ETag: r.etag, Index: j, Piece: true}
	if r.c.sweepable(r.size) && !r.c.present(piece) && !r.c.disk.has(block) {
		r.mu.Lock()
		r.misses++
		sweep := r.misses%sweepAfter == 0
		r.mu.Unlock()
		if sweep {
			r.c.sweep(r.key, r.etag, r.size, r.fetch)
		}
	}
	if r.size <= r.c.size/2 && !r.c.present(piece) {
		r.mu.Lock()
		hot := r.missed[i]
		if r.missed == nil {
			r.missed = map[int64]bool{}
		}
		r.missed[i] = true
		r.mu.Unlock()
		if hot {
			return block, i * bs, r.blockLen(i)
		}
	}
	return piece, j * ps, int(min(ps, r.size-j*ps))
}

// readAhead detects a sequential reader and keeps the next window of blocks
// coming. The kernel sends reads of at most 128 KiB, slightly out of order
// when it reads asynchronously, so a read is "near" when it begins within a
// block of where the last one ended; a reader is sequential from its first
// read at 0 (cat) or from its second near read in a row, so that a random
// reader whose read happens to fall near the last one still fetches only a
// piece. The window doubles while the reader stays sequential, so one small
// read does not cost a large fetch. It reports whether the read looked
// sequential.
func (r *Reader) readAhead(ctx context.Context, off, end int64) bool {
	bs := r.c.blockSize
	r.mu.Lock()
	near := off >= r.next-bs && off <= r.next+bs
	sequential := near && (r.near || off == 0)
	r.near = near
	if sequential {
		r.window = min(max(2*r.window, bs), r.maxAhead)
	} else {
		r.window = 0
	}
	r.next = end
	window := r.window
	r.mu.Unlock()
	if window <= 0 {
		return false
	}
	first := end / bs
	last := min((end+window-1)/bs, (r.size-1)/bs)
	for i := first; i <= last; i++ {
		r.c.Prefetch(ctx, r.id(i), r.blockLen(i), r.fetch)
	}
	return true
}
