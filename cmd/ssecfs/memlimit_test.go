package main

import "testing"

// The limit is the caches' bound until the live heap outgrows it, then a
// quarter above the live heap: never below what is live.
func TestTheMemoryLimitFollowsALiveHeapAboveTheCachesBound(t *testing.T) {
	const base = 272 << 20
	for _, c := range []struct{ live, want int64 }{
		{0, base},
		{150 << 20, base},
		{1 << 30, 1<<30 + 256<<20},
	} {
		if got := memoryLimit(base, c.live); got != c.want {
			t.Errorf("live %d MiB: limit %d MiB, want %d MiB", c.live>>20, got>>20, c.want>>20)
		}
	}
}
