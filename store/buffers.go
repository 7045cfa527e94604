package store

import "sync"

// Part buffers are reused: a buffer per part would make a 1 GiB upload
// allocate, and clear, 1 GiB, a cost that profiles of large writes show
// next to the encryption itself. Only MinPartSize buffers are pooled, the
// part size of every upload below 80 GiB; sync.Pool drops what stays
// unused across garbage collections, so the pool holds no memory for long.
var partPool = sync.Pool{New: func() any { return new([MinPartSize]byte) }}

// PartBuffer returns a buffer of n bytes for a part, not cleared: the
// caller fills all of it.
func PartBuffer(n int64) []byte {
	if n == MinPartSize {
		return partPool.Get().(*[MinPartSize]byte)[:]
	}
	return make([]byte, n)
}

// ReleasePart gives back a buffer from PartBuffer once no request reads it
// any more: after the request that sent it succeeded. A buffer of a failed
// request is left to the garbage collector, since the transport may still
// be reading it.
func ReleasePart(b []byte) {
	if len(b) == MinPartSize {
		partPool.Put((*[MinPartSize]byte)(b))
	}
}
