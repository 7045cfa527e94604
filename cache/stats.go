package cache

import "sync/atomic"

// counts are what the cache did since it was made, for Stats.
type counts struct {
	hits, misses, diskHits atomic.Int64
	fetched, fetchedBytes  atomic.Int64
}

// Stats is the cache's use and what it saved, for `ssecfs status` and the
// metrics.
type Stats struct {
	Bytes, Limit         int64 // memory held by blocks, and its bound
	DiskBytes, DiskLimit int64 // the disk tier's (0, 0: none)
	// Hits are reads served from memory; Misses had to wait for a block,
	// which came from the disk tier (DiskHits) or the server (Fetched,
	// FetchedBytes; read-ahead included).
	Hits, Misses, DiskHits int64
	Fetched, FetchedBytes  int64
}

func (c *Cache) Stats() Stats {
	s := Stats{
		Bytes: c.bytes.Load(), Limit: c.size,
		Hits: c.counts.hits.Load(), Misses: c.counts.misses.Load(), DiskHits: c.counts.diskHits.Load(),
		Fetched: c.counts.fetched.Load(), FetchedBytes: c.counts.fetchedBytes.Load(),
	}
	if c.disk != nil {
		s.DiskBytes, s.DiskLimit = c.disk.bytes.Load(), c.disk.size
	}
	return s
}
