package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sys/unix"
)

// Disk is the cache's second tier: whole blocks of objects that a reader
// reads at random and that do not fit in memory, kept in files on local
// disk. Every block is sealed with AES-256-GCM under a key made at start and
// held only in memory, in chunks of one piece, so that a random read opens
// one piece's worth, not a block. Nothing on disk outlives its key: a
// crashed mount leaves files nobody can read, and the next Disk opened in
// the same root removes them.
//
// Lock order: Disk has no lock of its own; the index's is internal.
type Disk struct {
	dir   string
	size  int64 // bytes of plaintext kept
	chunk int64 // plaintext bytes per sealed chunk
	aead  cipher.AEAD
	lock  *os.File // held (flock) while this Disk is open: marks dir as in use

	serial atomic.Uint64 // names files; with the chunk index, the nonce
	closed atomic.Bool   // a sweep still running at unmount writes nothing
	bytes  atomic.Int64
	index  *lru.Cache[BlockID, diskBlock]
}

// diskBlock is one block's file: its serial number (the file name and the
// nonce prefix) and plaintext length.
type diskBlock struct {
	serial uint64
	size   int64
}

// OpenDisk makes a private folder under root for a Disk of size bytes whose
// blocks are sealed in chunks of chunk bytes (the cache's piece size), and
// removes the folders of Disks no longer open (a crash's leftovers).
func OpenDisk(root string, size, chunk int64) (*Disk, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	removeStale(root)
	dir, err := os.MkdirTemp(root, "c-")
	if err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	d := &Disk{dir: dir, size: size, chunk: chunk, aead: aead, lock: lock}
	// The count only backstops the byte bound.
	d.index, err = lru.NewWithEvict[BlockID, diskBlock](int(max(size/chunk, 1024)), func(_ BlockID, e diskBlock) {
		d.bytes.Add(-e.size)
		_ = os.Remove(d.path(e.serial))
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// removeStale deletes the folders under root whose lock nobody holds.
func removeStale(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "c-*"))
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, "lock"))
		if err != nil {
			continue // being made right now, or not ours
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			_ = os.RemoveAll(dir)
		}
		_ = f.Close()
	}
}

// Close removes every file of the Disk.
func (d *Disk) Close() error {
	d.closed.Store(true)
	err := os.RemoveAll(d.dir)
	_ = d.lock.Close()
	return err
}

// Size is the Disk's bound in bytes.
func (d *Disk) Size() int64 { return d.size }

func (d *Disk) path(serial uint64) string {
	return filepath.Join(d.dir, strconv.FormatUint(serial, 16))
}

func (d *Disk) nonce(serial uint64, chunk int64) []byte {
	n := make([]byte, d.aead.NonceSize())
	binary.BigEndian.PutUint64(n, serial)
	binary.BigEndian.PutUint32(n[8:], uint32(chunk))
	return n
}

// has reports whether the block is on disk.
func (d *Disk) has(id BlockID) bool { return d.index.Contains(id) }

// write seals the block into a new file. Failures (a full disk) only mean
// the block is not kept: the network still has it.
func (d *Disk) write(id BlockID, data []byte) {
	if d.closed.Load() || d.index.Contains(id) || int64(len(data)) > d.size {
		return
	}
	serial := d.serial.Add(1)
	if err := d.writeFile(serial, data); err != nil {
		_ = os.Remove(d.path(serial))
		return
	}
	d.bytes.Add(int64(len(data)))
	d.index.Add(id, diskBlock{serial: serial, size: int64(len(data))})
	for d.bytes.Load() > d.size {
		if _, _, ok := d.index.RemoveOldest(); !ok {
			break
		}
	}
}

func (d *Disk) writeFile(serial uint64, data []byte) error {
	f, err := os.OpenFile(d.path(serial), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, d.chunk+int64(d.aead.Overhead()))
	for i := int64(0); i*d.chunk < int64(len(data)); i++ {
		plain := data[i*d.chunk : min((i+1)*d.chunk, int64(len(data)))]
		if _, err := f.Write(d.aead.Seal(buf[:0], d.nonce(serial, i), plain, nil)); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}

// read fills p with the block's bytes from off, if the block is on disk and
// holds them. A file that fails to open or to decrypt is dropped: the
// caller fetches from the network instead.
func (d *Disk) read(id BlockID, off int64, p []byte) bool {
	e, ok := d.index.Get(id)
	if !ok || off < 0 || off+int64(len(p)) > e.size {
		return false
	}
	if err := d.readFile(e, off, p); err != nil {
		d.index.Remove(id)
		return false
	}
	return true
}

func (d *Disk) readFile(e diskBlock, off int64, p []byte) error {
	f, err := os.Open(d.path(e.serial))
	if err != nil {
		return err
	}
	defer f.Close()
	sealedChunk := d.chunk + int64(d.aead.Overhead())
	buf := make([]byte, sealedChunk)
	var plain []byte
	for n := 0; n < len(p); {
		pos := off + int64(n)
		i := pos / d.chunk
		length := min(d.chunk, e.size-i*d.chunk) + int64(d.aead.Overhead())
		if _, err := f.ReadAt(buf[:length], i*sealedChunk); err != nil {
			return err
		}
		if plain, err = d.aead.Open(buf[:0], d.nonce(e.serial, i), buf[:length], nil); err != nil {
			return err
		}
		n += copy(p[n:], plain[pos-i*d.chunk:])
	}
	return nil
}

// purge drops every block of key.
func (d *Disk) purge(key string) {
	for _, id := range d.index.Keys() {
		if id.Key == key {
			d.index.Remove(id)
		}
	}
}
