package cache

import (
	"bytes"
	"os"
	"testing"
)

// FuzzDiskBlock: a block on disk read back at any offset and length, its
// file damaged anywhere or cut short, gives the block's own bytes or a
// miss (the caller fetches from the server); never other bytes, never a
// panic.
func FuzzDiskBlock(f *testing.F) {
	f.Add([]byte("hello, sealed world"), int64(3), uint16(5), int64(-1), byte(0))
	f.Add(bytes.Repeat([]byte("x"), 1000), int64(250), uint16(600), int64(300), byte(1))
	f.Add(bytes.Repeat([]byte("y"), 513), int64(512), uint16(1), int64(1000), byte(0xff))
	f.Add([]byte{}, int64(0), uint16(0), int64(0), byte(0))
	d, err := OpenDisk(f.TempDir(), 1<<20, 256)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	var n uint64
	f.Fuzz(func(t *testing.T, data []byte, off int64, length uint16, damageAt int64, damage byte) {
		if len(data) > 4096 {
			return // 16 chunks are plenty; bigger ones only slow the search
		}
		n++
		id := BlockID{Key: "k", ETag: "e", Index: int64(n)}
		d.write(id, data)
		e, ok := d.index.Peek(id)
		if !ok {
			return // empty or too large: not kept
		}
		if damageAt >= 0 {
			if b, err := os.ReadFile(d.path(e.serial)); err == nil {
				if damageAt < int64(len(b)) {
					b[damageAt] ^= damage | 1
				} else {
					b = b[:len(b)/2]
				}
				os.WriteFile(d.path(e.serial), b, 0o600)
			}
		}
		p := make([]byte, length)
		if d.read(id, off, p) && !bytes.Equal(p, data[off:off+int64(length)]) {
			t.Fatalf("read at %d of %d bytes gave other bytes (damage at %d)", off, length, damageAt)
		}
	})
}
