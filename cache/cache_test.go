package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func newTestCache(t *testing.T, size, block int64) *Cache {
	t.Helper()
	c, err := New(Options{Size: size, BlockSize: block, Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// source is an object in memory that counts fetches per offset.
type source struct {
	data    []byte
	mu      sync.Mutex
	fetches map[int64]int
	gate    chan struct{} // when set, fetches wait for it
}

func (s *source) fetch(ctx context.Context, off int64, buf []byte) error {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	if s.fetches == nil {
		s.fetches = map[int64]int{}
	}
	s.fetches[off]++
	s.mu.Unlock()
	if off+int64(len(buf)) > int64(len(s.data)) {
		return errors.New("fetch past the end")
	}
	copy(buf, s.data[off:])
	return nil
}

func (s *source) count(off int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[off]
}

// readsMatch reads 4 bytes at each offset through r and checks them
// against the object.
func readsMatch(t *testing.T, r *Reader, src *source, offs ...int64) {
	t.Helper()
	p := make([]byte, 4)
	for _, off := range offs {
		if _, err := r.ReadAt(context.Background(), p, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, src.data[off:off+4]) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
	}
}

// bytesOf returns a copy of the block's bytes, fetching it if needed.
func bytesOf(t *testing.T, c *Cache, id BlockID, length int, fetch Fetch) []byte {
	t.Helper()
	b, err := c.get(context.Background(), id, length, fetch)
	if err != nil {
		t.Fatal(err)
	}
	defer c.unpin(b)
	return bytes.Clone(b.data)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestReadAtReturnsTheObjectAcrossBlocks(t *testing.T) {
	c := newTestCache(t, 64, 8)
	src := &source{data: pattern(61)}
	r := c.NewReader("k", "e1", 61, 16, src.fetch)
	for _, tc := range []struct{ off, n int }{{0, 61}, {3, 10}, {8, 8}, {55, 20}, {60, 1}} {
		p := make([]byte, tc.n)
		n, err := r.ReadAt(context.Background(), p, int64(tc.off))
		want := src.data[tc.off:min(tc.off+tc.n, 61)]
		if err != nil || !bytes.Equal(p[:n], want) {
			t.Fatalf("ReadAt(%d,%d) = %d, %v; bytes differ", tc.off, tc.n, n, err)
		}
	}
	if _, err := r.ReadAt(context.Background(), make([]byte, 1), 61); err == nil {
		t.Fatal("no EOF at the end")
	}
}

func TestConcurrentMissesShareOneFetch(t *testing.T) {
	c := newTestCache(t, 64, 8)
	src := &source{data: pattern(16), gate: make(chan struct{})}
	var wg sync.WaitGroup
	var errs atomic.Int32
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Load(context.Background(), BlockID{Key: "k", ETag: "e", Index: 0}, 8, src.fetch); err != nil {
				errs.Add(1)
			}
		}()
	}
	close(src.gate)
	wg.Wait()
	if errs.Load() != 0 || src.count(0) != 1 {
		t.Fatalf("errors %d, fetches of block 0: %d, want 1", errs.Load(), src.count(0))
	}
}

func TestCacheHoldsAtMostItsSize(t *testing.T) {
	c := newTestCache(t, 32, 8) // four blocks
	src := &source{data: pattern(80)}
	for i := int64(0); i < 10; i++ {
		if err := c.Load(context.Background(), BlockID{Key: "k", ETag: "e", Index: i}, 8, src.fetch); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.blocks.Len(); n != 4 {
		t.Fatalf("cache holds %d blocks, want 4", n)
	}
	// The oldest were evicted: reading block 0 again fetches it again.
	c.Load(context.Background(), BlockID{Key: "k", ETag: "e", Index: 0}, 8, src.fetch)
	if src.count(0) != 2 {
		t.Fatalf("block 0 fetched %d times, want 2", src.count(0))
	}
}

func TestAnotherETagIsAnotherBlock(t *testing.T) {
	c := newTestCache(t, 64, 8)
	old := &source{data: bytes.Repeat([]byte{1}, 8)}
	neu := &source{data: bytes.Repeat([]byte{2}, 8)}
	a := bytesOf(t, c, BlockID{Key: "k", ETag: "v1", Index: 0}, 8, old.fetch)
	b := bytesOf(t, c, BlockID{Key: "k", ETag: "v2", Index: 0}, 8, neu.fetch)
	if a[0] != 1 || b[0] != 2 {
		t.Fatal("a new version was served from the old version's block")
	}
}

func TestSequentialReadsFetchAhead(t *testing.T) {
	c := newTestCache(t, 1024, 8)
	src := &source{data: pattern(512)}
	r := c.NewReader("k", "e", 512, 64, src.fetch)
	p := make([]byte, 8)
	for off := int64(0); off < 64; off += 8 {
		if _, err := r.ReadAt(context.Background(), p, off); err != nil {
			t.Fatal(err)
		}
	}
	// Read-ahead was started for blocks beyond what was read; wait for the
	// in-flight fetches by reading one of them (it is shared, not refetched).
	if _, err := r.ReadAt(context.Background(), p, 96); err != nil {
		t.Fatal(err)
	}
	if src.count(96) != 1 {
		t.Fatalf("block at 96 fetched %d times", src.count(96))
	}
	if !c.Contains(BlockID{Key: "k", ETag: "e", Index: 12}) && src.count(12*8) == 0 {
		t.Fatal("sequential reader got no read-ahead")
	}
}

func TestRandomReadsDoNotFetchAhead(t *testing.T) {
	c := newTestCache(t, 1024, 8)
	src := &source{data: pattern(512)}
	r := c.NewReader("k", "e", 512, 64, src.fetch)
	p := make([]byte, 4)
	for _, off := range []int64{400, 40, 240, 120} {
		if _, err := r.ReadAt(context.Background(), p, off); err != nil {
			t.Fatal(err)
		}
	}
	src.mu.Lock()
	n := len(src.fetches)
	src.mu.Unlock()
	// Reads 1 and 3 follow no pattern; the first read at 400 is treated as
	// a start and may prefetch its neighbour, nothing more.
	if n > 6 {
		t.Fatalf("%d blocks fetched for 4 random reads", n)
	}
}

func TestFailedFetchIsNotCached(t *testing.T) {
	c := newTestCache(t, 64, 8)
	fail := true
	fetch := func(ctx context.Context, off int64, buf []byte) error {
		if fail {
			return errors.New("boom")
		}
		return nil
	}
	if err := c.Load(context.Background(), BlockID{Key: "k", ETag: "e", Index: 0}, 8, fetch); err == nil {
		t.Fatal("error lost")
	}
	fail = false
	if err := c.Load(context.Background(), BlockID{Key: "k", ETag: "e", Index: 0}, 8, fetch); err != nil {
		t.Fatalf("failure was cached: %v", err)
	}
}

func TestRandomReadsFetchOnlyAPiece(t *testing.T) {
	c, err := New(Options{Size: 4096, BlockSize: 256, PieceSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	src := &source{data: pattern(2048)}
	r := c.NewReader("k", "e", 2048, 512, src.fetch)
	// 1000 is in the piece at 992 and the block at 768; 1100 near it
	// (a random read may land there) in the piece at 1088; 1990 in the
	// object's last piece (1984, 64 bytes long: a short one).
	readsMatch(t, r, src, 1000, 1100, 1990, 300)
	src.mu.Lock()
	defer src.mu.Unlock()
	for off := range src.fetches {
		if off%256 == 0 && off != 1984 {
			t.Errorf("random reads fetched the whole block at %d", off)
		}
	}
	if src.fetches[992] != 1 || src.fetches[1088] != 1 || src.fetches[1984] != 1 || src.fetches[288] != 1 || len(src.fetches) != 4 {
		t.Fatalf("fetches %v, want the pieces at 288, 992, 1088 and 1984", src.fetches)
	}
}

func TestASequentialReaderReadsWholeBlocks(t *testing.T) {
	c, err := New(Options{Size: 4096, BlockSize: 256, PieceSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	src := &source{data: pattern(2048)}
	r := c.NewReader("k", "e", 2048, 512, src.fetch)
	p := make([]byte, 64)
	for off := int64(0); off < 1024; off += 64 {
		if _, err := r.ReadAt(context.Background(), p, off); err != nil {
			t.Fatal(err)
		}
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for off := range src.fetches {
		if off%256 != 0 {
			t.Errorf("a sequential reader fetched a piece at %d", off)
		}
	}
}

func TestABlockARandomReaderComesBackToIsFetchedWhole(t *testing.T) {
	c, err := New(Options{Size: 4096, BlockSize: 256, PieceSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	src := &source{data: pattern(2048)}
	r := c.NewReader("k", "e", 2048, 512, src.fetch)
	// 1000 and 800 are in the block at 768, in different pieces; 300
	// between them keeps the reader from looking sequential.
	readsMatch(t, r, src, 1000, 300, 800)
	if src.count(992) != 1 || src.count(768) != 1 || src.count(800) != 0 {
		t.Fatalf("fetches %v, want the piece at 992, then the whole block at 768 (which holds 800)", src.fetches)
	}
}

func TestInAnObjectBiggerThanHalfTheCacheRandomReadsStayPieces(t *testing.T) {
	c, err := New(Options{Size: 2048, BlockSize: 256, PieceSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	src := &source{data: pattern(2048)}
	r := c.NewReader("k", "e", 2048, 512, src.fetch)
	p := make([]byte, 4)
	for _, off := range []int64{1000, 300, 800, 100, 900} {
		if _, err := r.ReadAt(context.Background(), p, off); err != nil {
			t.Fatal(err)
		}
	}
	if src.count(768) != 0 || src.count(992) != 1 || src.count(800) != 1 || src.count(896) != 1 {
		t.Fatalf("fetches %v, want the pieces at 800, 896 and 992 and no whole block", src.fetches)
	}
}

// A block a reader holds keeps its bytes while the cache turns over: its
// buffer is recycled only once the reader lets go.
func TestABlockBeingReadIsNotRecycled(t *testing.T) {
	c := newTestCache(t, 16, 8) // two blocks
	src := &source{data: pattern(64)}
	held, err := c.get(context.Background(), BlockID{Key: "k", ETag: "e", Index: 0}, 8, src.fetch)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i < 8; i++ { // evicts block 0; every fetch wants a buffer
		if err := c.Load(context.Background(), BlockID{Key: "k", ETag: "e", Index: i}, 8, src.fetch); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(held.data, src.data[:8]) {
		t.Fatal("a held block's buffer was reused while it was read")
	}
	c.unpin(held)
	if held.pin() {
		t.Fatal("an evicted block let go by its last reader can still be pinned")
	}
}

// Evicted full-size buffers are fetched into again rather than allocated.
func TestEvictedBuffersAreReused(t *testing.T) {
	c := newTestCache(t, 16, 8)
	seen := map[*byte]bool{}
	reused := 0
	fetch := func(ctx context.Context, off int64, buf []byte) error {
		if seen[&buf[0]] {
			reused++
		}
		seen[&buf[0]] = true
		return nil
	}
	for i := int64(0); i < 10; i++ {
		if err := c.Load(context.Background(), BlockID{Key: "k", ETag: "e", Index: i}, 8, fetch); err != nil {
			t.Fatal(err)
		}
	}
	if reused < 7 { // the first three fetches find no buffer to reuse
		t.Fatalf("%d of 10 fetches reused a buffer, want at least 7", reused)
	}
}

// Readers of many objects through a cache far too small for them all, with
// constant eviction and reuse of buffers, each get the bytes of their own
// object.
func TestReadersThroughAChurningCacheGetTheirOwnBytes(t *testing.T) {
	c := newTestCache(t, 32, 8) // four blocks
	var wg sync.WaitGroup
	var bad atomic.Int32
	for o := 0; o < 8; o++ {
		src := &source{data: bytes.Repeat([]byte{byte(o)}, 64)}
		key := string(rune('a' + o))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.NewReader(key, "e", 64, 16, src.fetch)
			p := make([]byte, 5)
			for i := 0; i < 300; i++ {
				off := int64(i*13) % 60
				n, err := r.ReadAt(context.Background(), p, off)
				if err != nil || !bytes.Equal(p[:n], src.data[off:off+int64(n)]) {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d reads returned another object's bytes or failed", bad.Load())
	}
}
