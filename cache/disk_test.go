package cache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func openTestDisk(t *testing.T, root string, size, chunk int64) *Disk {
	t.Helper()
	d, err := OpenDisk(root, size, chunk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// diskFiles returns the contents of every block file of d.
func diskFiles(t *testing.T, d *Disk) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(d.dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, n := range names {
		if filepath.Base(n) == "lock" {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	return files
}

func TestDiskKeepsBlocksSealed(t *testing.T) {
	d := openTestDisk(t, t.TempDir(), 1<<20, 64)
	data := pattern(1000) // 15 full chunks and a short one
	id := BlockID{Key: "k", ETag: "e", Index: 3}
	d.write(id, data)
	files := diskFiles(t, d)
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	for _, f := range files {
		for i := 0; i+16 <= len(data); i += 16 {
			if bytes.Contains(f, data[i:i+16]) {
				t.Fatalf("plaintext at %d found on disk", i)
			}
		}
	}
	whole := make([]byte, len(data))
	if !d.read(id, 0, whole) || !bytes.Equal(whole, data) {
		t.Fatal("the whole block did not read back")
	}
	// A piece that straddles chunks, and the short last chunk.
	for _, r := range [][2]int{{100, 200}, {960, 40}} {
		p := make([]byte, r[1])
		if !d.read(id, int64(r[0]), p) || !bytes.Equal(p, data[r[0]:r[0]+r[1]]) {
			t.Fatalf("bytes %d+%d did not read back", r[0], r[1])
		}
	}
	if d.read(id, 990, make([]byte, 20)) {
		t.Fatal("a read past the block's end succeeded")
	}
	if d.read(BlockID{Key: "k", ETag: "other", Index: 3}, 0, make([]byte, 10)) {
		t.Fatal("another version's block was served")
	}
}

func TestADamagedDiskBlockIsDroppedNotServed(t *testing.T) {
	d := openTestDisk(t, t.TempDir(), 1<<20, 64)
	id := BlockID{Key: "k", ETag: "e"}
	d.write(id, pattern(500))
	for name, f := range diskFiles(t, d) {
		f[100] ^= 1
		if err := os.WriteFile(name, f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if d.read(id, 0, make([]byte, 500)) {
		t.Fatal("a damaged block was served")
	}
	if d.has(id) {
		t.Fatal("a damaged block was kept")
	}
}

func TestDiskHoldsAtMostItsSizeAndRemovesEvictedFiles(t *testing.T) {
	d := openTestDisk(t, t.TempDir(), 2000, 64)
	for i := range int64(3) {
		d.write(BlockID{Key: "k", ETag: "e", Index: i}, pattern(1000))
	}
	if d.has(BlockID{Key: "k", ETag: "e", Index: 0}) || !d.has(BlockID{Key: "k", ETag: "e", Index: 2}) {
		t.Fatal("the oldest block was not the one evicted")
	}
	if n := len(diskFiles(t, d)); n != 2 {
		t.Fatalf("%d block files, want 2", n)
	}
	d.purge("k")
	if n := len(diskFiles(t, d)); n != 0 {
		t.Fatalf("%d block files after purge, want 0", n)
	}
}

func TestOpenDiskRemovesWhatAClosedOrCrashedDiskLeft(t *testing.T) {
	root := t.TempDir()
	live := openTestDisk(t, root, 1<<20, 64)
	live.write(BlockID{Key: "k"}, pattern(100))
	crashed := filepath.Join(root, "c-crashed")
	if err := os.MkdirAll(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, "lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	openTestDisk(t, root, 1<<20, 64)
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Fatalf("a crashed disk's folder is still there (%v)", err)
	}
	if !live.read(BlockID{Key: "k"}, 0, make([]byte, 100)) {
		t.Fatal("a live disk's block was removed")
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.dir); !os.IsNotExist(err) {
		t.Fatal("Close left the folder")
	}
}

func TestARandomReaderOfABigObjectSweepsItToDisk(t *testing.T) {
	disk := openTestDisk(t, t.TempDir(), 1<<20, 32)
	c, err := New(Options{Size: 1024, BlockSize: 256, PieceSize: 32, Parallel: 4, Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	src := &source{data: pattern(4096)} // 16 blocks, four times the memory
	r := c.NewReader("k", "e", 4096, 512, src.fetch)
	p := make([]byte, 4)
	// Far apart, so that no read looks sequential.
	offs := []int64{3000, 100, 2000, 700, 3900, 1500, 400, 2600}
	for _, off := range offs[:sweepAfter-1] {
		if _, err := r.ReadAt(context.Background(), p, off); err != nil {
			t.Fatal(err)
		}
	}
	c.swept.Wait()
	if n := len(diskFiles(t, disk)); n != 0 {
		t.Fatalf("%d blocks on disk before %d missed pieces", n, sweepAfter)
	}
	if _, err := r.ReadAt(context.Background(), p, offs[sweepAfter-1]); err != nil {
		t.Fatal(err)
	}
	c.swept.Wait()
	for i := range int64(16) {
		if !disk.has(BlockID{Key: "k", ETag: "e", Index: i}) {
			t.Fatalf("block %d not on disk after the sweep", i)
		}
	}
	src.mu.Lock()
	before := len(src.fetches)
	src.mu.Unlock()
	readsMatch(t, r, src, 3333, 17, 2222, 1111, 4000)
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.fetches) != before {
		t.Fatalf("reads of a swept object went to the network: %v", src.fetches)
	}
}

func TestAnObjectTooBigForTheDiskIsNotSwept(t *testing.T) {
	disk := openTestDisk(t, t.TempDir(), 4000, 32)
	c, err := New(Options{Size: 1024, BlockSize: 256, PieceSize: 32, Parallel: 4, Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	src := &source{data: pattern(4096)}
	r := c.NewReader("k", "e", 4096, 512, src.fetch)
	for i := range int64(2 * sweepAfter) {
		if _, err := r.ReadAt(context.Background(), make([]byte, 4), (i*1733)%4000); err != nil {
			t.Fatal(err)
		}
	}
	c.swept.Wait()
	if n := len(diskFiles(t, disk)); n != 0 {
		t.Fatalf("%d blocks on disk, want none: the object is more than half the disk", n)
	}
}

// A sweep takes the blocks the memory tier holds from there: each block
// of the object is fetched once.
func TestASweepFetchesNoBlockTwice(t *testing.T) {
	disk := openTestDisk(t, t.TempDir(), 1<<20, 32)
	c, err := New(Options{Size: 1024, BlockSize: 256, PieceSize: 32, Parallel: 4, Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	src := &source{data: pattern(4096)}
	r := c.NewReader("k", "e", 4096, 256, src.fetch)
	readsMatch(t, r, src, 0) // sequential from 0: blocks 0 and 1 whole, in memory
	// Then random: 8 pieces missed in the other blocks start the sweep.
	readsMatch(t, r, src, 3000, 100, 2000, 700, 3900, 1500, 400, 2600, 1200, 3300)
	c.swept.Wait()
	for i := range int64(16) {
		if n := src.count(i * 256); n != 1 {
			t.Errorf("block %d fetched %d times", i, n)
		}
	}
}
