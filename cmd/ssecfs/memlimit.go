package main

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The daemon's soft memory limit is what its caches are allowed (the
// blocks, the read-ahead in flight, the spare buffers the cache reuses,
// and 32 MiB for the rest), so that a collection cycle does not let a big
// read grow the daemon to twice its live data. But a walk keeps metadata
// live that no cache bound covers: go-fuse's node for each name the kernel
// holds, the folders' listings, the metadata answers, about 1 KiB per
// object in all (fs BenchmarkWalkMemory). A million files walked are a GiB,
// far above such a limit, and the collector then ran without pause. So
// the limit follows the live heap once it outgrows the caches' bound,
// leaving a quarter of it to allocate between cycles.
func keepMemoryLimit(base int64) {
	debug.SetMemoryLimit(base)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for range time.Tick(2 * time.Second) {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetMemoryLimit(memoryLimit(base, int64(sample[0].Value.Uint64())))
		}
	}
}

// memoryLimit is the limit for a live heap of live bytes.
func memoryLimit(base, live int64) int64 { return max(base, live+live/4) }
