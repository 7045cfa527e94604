package stage

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// diskUse is the journal folder's disk use: the blocks its files hold.
func diskUse(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a file removed meanwhile
		}
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// roomFor is a cap that holds about n chunks.
func roomFor(n int64) int64 { return n*(chunkSize+64)*9/8 + 64<<10 }

// A writer that finds the journal full waits while uploads make room: the
// waiting files' window ends early, and the write completes. The journal's
// disk use stays under its cap throughout.
func TestAWriterWaitsForUploadsToMakeRoom(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	limit := roomFor(5)
	mgr, err := Open(Config{Dir: dir, Key: sseKey, Store: m, Window: time.Hour, Cap: limit, Parallel: 2, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	var want [][]byte
	for i, name := range []string{"a", "b", "c"} {
		e, err := mgr.OpenFile(name, nil, Attrs{Mtime: mtime}, true)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte{byte('a' + i)}, 3*chunkSize+100)
		for off := 0; off < len(data); off += chunkSize {
			if _, err := e.WriteAt(ctx, data[off:min(off+chunkSize, len(data))], int64(off)); err != nil {
				t.Fatalf("%s at %d: %v", name, off, err)
			}
			if use := diskUse(t, dir); use > limit {
				ents, _ := filepath.Glob(dir + "/*")
				for _, p := range ents {
					var st syscall.Stat_t
					syscall.Stat(p, &st)
					t.Logf("%s size %d blocks %d", filepath.Base(p), st.Size, st.Blocks*512)
				}
				mgr.mu.Lock()
				t.Logf("used %d spoolCap %d", mgr.used, mgr.spoolCap())
				mgr.mu.Unlock()
				t.Fatalf("journal at %d bytes, over its cap of %d", use, limit)
			}
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		e.Release(true)
		want = append(want, data)
	}
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a", "b", "c"} {
		if got, _, _, _ := m.Object(name); !bytes.Equal(got, want[i]) {
			t.Errorf("%s: %d bytes stored, want %d", name, len(got), len(want[i]))
		}
	}
	if mgr.Full() != nil {
		t.Errorf("full: %v", mgr.Full())
	}
}

// A file that cannot leave the journal while it is open (it does not
// stream) and fills it gets ENOSPC at once, saying why; what was accepted
// before stays and is uploaded.
func TestAnOpenFileThatFillsTheJournalIsENOSPCAndKeepsWhatWasAccepted(t *testing.T) {
	m := memstore.New(ours)
	mgr, err := Open(Config{Dir: t.TempDir(), Key: sseKey, Store: m, Window: time.Hour, Cap: roomFor(4)})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	e, _ := mgr.OpenFile("f", nil, Attrs{Mtime: mtime}, true)
	data := bytes.Repeat([]byte("z"), 6*chunkSize)
	n, err := e.WriteAt(ctx, data, 0)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "still open") {
		t.Fatalf("err %v, want ENOSPC: files still open", err)
	}
	if n == 0 || n >= len(data) || n%chunkSize != 0 {
		t.Fatalf("accepted %d bytes", n)
	}
	if !errors.Is(mgr.Full(), syscall.ENOSPC) {
		t.Fatalf("Full: %v", mgr.Full())
	}
	e.Flush(ctx)
	e.Release(true)
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := m.Object("f"); !bytes.Equal(got, data[:n]) {
		t.Fatalf("stored %d bytes, accepted %d", len(got), n)
	}
}

// Writers waiting for room while no upload succeeds get ENOSPC once the
// stall time has passed, saying why.
func TestWritersWaitingWhileUploadsFailGetENOSPCAfterTheStall(t *testing.T) {
	m := memstore.New(ours)
	var failing atomic.Bool
	failing.Store(true)
	m.Fail = func(op, key string) error {
		if op == "put" && failing.Load() {
			return store.ErrUnavailable
		}
		return nil
	}
	mgr, err := Open(Config{Dir: t.TempDir(), Key: sseKey, Store: m, Window: time.Hour, Cap: roomFor(4),
		Attempts: 2, Stall: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	a, _ := mgr.OpenFile("a", nil, Attrs{Mtime: mtime}, true)
	if _, err := a.WriteAt(ctx, bytes.Repeat([]byte("a"), 3*chunkSize), 0); err != nil {
		t.Fatal(err)
	}
	a.Flush(ctx)
	a.Release(true)
	b, _ := mgr.OpenFile("b", nil, Attrs{Mtime: mtime}, true)
	n, err := b.WriteAt(ctx, bytes.Repeat([]byte("b"), 3*chunkSize), 0)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no upload has freed room") {
		t.Fatalf("err %v, want ENOSPC: uploads stalled", err)
	}
	// The server is back: what was accepted is uploaded.
	failing.Store(false)
	b.Flush(ctx)
	b.Release(true)
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := m.Object("b"); len(got) != n {
		t.Fatalf("b: %d bytes stored, %d accepted", len(got), n)
	}
}

// A full disk under the journal is ENOSPC at once, whatever the cap says:
// no upload can make room on a disk that other programs fill.
func TestAFullDiskIsENOSPCAtOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a small tmpfs: needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	m := memstore.New(ours)
	mgr, err := Open(Config{Dir: filepath.Join(dir, "j"), Key: sseKey, Store: m, Window: time.Hour, Cap: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	e, _ := mgr.OpenFile("f", nil, Attrs{Mtime: mtime}, true)
	defer e.Release(true)
	n, err := e.WriteAt(ctx, bytes.Repeat([]byte("d"), 1<<20), 0)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("err %v, want the disk's ENOSPC", err)
	}
	if n >= 1<<20 {
		t.Fatalf("accepted %d bytes on a 256 KiB disk", n)
	}
}
