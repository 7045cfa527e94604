package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// rwMount mounts an in-memory bucket with writing enabled.
func rwMount(t *testing.T, m *memstore.Store, window time.Duration) (string, *stage.Manager) {
	t.Helper()
	return rwMountTTL(t, m, window, time.Minute)
}

func rwMountTTL(t *testing.T, m *memstore.Store, window, ttl time.Duration) (string, *stage.Manager) {
	t.Helper()
	dir, mgr, _ := rwMountStore(t, m, window, ttl)
	return dir, mgr
}

// rwMountStore mounts st (a memstore, or a wrapper of one that meddles
// with its calls) and also returns the filesystem.
func rwMountStore(t *testing.T, st store.Store, window, ttl time.Duration) (string, *stage.Manager, *FS) {
	t.Helper()
	return rwMountJournal(t, st, window, ttl, t.TempDir())
}

// rwMountJournal is rwMountStore with the journal in the folder given.
func rwMountJournal(t *testing.T, st store.Store, window, ttl time.Duration, journal string) (string, *stage.Manager, *FS) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("in-process FUSE tests mount directly and need root")
	}
	c, _ := cache.New(cache.Options{Size: 64 << 10, BlockSize: 4 << 10, Parallel: 4})
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := New(Options{Store: st, Cache: c, MetaTTL: ttl, ReadAhead: 16 << 10, Log: log, Journal: &stage.Config{
		Dir: journal, Key: []byte("0123456789abcdefghijklmnopqrstuv"),
		Window: window, Parallel: 4, Attempts: 2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	mgr := f.Stage()
	dir := t.TempDir()
	srv, err := f.Mount(dir, MountOptions{FsName: "ssecfs:test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
		mgr.Close()
		if t.Failed() {
			t.Logf("filesystem log:\n%s", logs.String())
		}
	})
	return dir, mgr, f
}

func opCounts(m *memstore.Store) map[string]int {
	n := map[string]int{}
	for _, c := range m.Calls() {
		n[c.Op]++
	}
	return n
}

func TestCopyInStoresEncryptedBytesAndMetadata(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, _ := rwMount(t, m, 0)
	data := bytes.Repeat([]byte("data "), 100000)
	p := filepath.Join(dir, "sub", "f.bin")
	if err := os.Mkdir(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
	got, meta, ours, ok := m.Object("sub/f.bin")
	if !ok || !bytes.Equal(got, data) || !ours {
		t.Fatalf("stored: ok=%v equal=%v encrypted=%v", ok, bytes.Equal(got, data), ours)
	}
	if meta["mode"] != "33184" { // S_IFREG|0640
		t.Fatalf("meta %v", meta)
	}
	if _, _, ours, ok := m.Object("sub/"); !ok || !ours {
		t.Fatal("mkdir made no encrypted folder marker")
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read back: %v", err)
	}
}

func TestRsyncPatternCostsOneUploadAndNoCopy(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	tmp, final := filepath.Join(dir, ".f.XXXX"), filepath.Join(dir, "f")
	if err := os.WriteFile(tmp, []byte("rsync"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tmp, 0o644)
	mt := time.Unix(1500000000, 987654321)
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(final); err != nil || !st.ModTime().Equal(mt) || st.Size() != 5 {
		t.Fatalf("before upload: %v %v", st, err)
	}
	if len(m.Keys()) != 0 {
		t.Fatal("uploaded inside the write-back window")
	}
	m.ResetCalls()
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := opCounts(m)
	if n["put"] != 1 || n["copy"]+n["copypart"]+n["delete"] != 0 {
		t.Fatalf("calls %v, want one put and no copy or delete", n)
	}
	_, meta, _, _ := m.Object("f")
	if meta["mtime"] != "1500000000.987654321" || meta["mode"] != "33188" {
		t.Fatalf("meta %v", meta)
	}
	if st, err := os.Stat(final); err != nil || !st.ModTime().Equal(mt) {
		t.Fatalf("after upload: %v %v", st, err)
	}
}

func TestWaitingFilesShowAndReadBack(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, _ := rwMount(t, m, time.Hour)
	os.WriteFile(filepath.Join(dir, "w"), []byte("waiting"), 0o644)
	os.MkdirAll(filepath.Join(dir, "deep/er"), 0o755)
	os.WriteFile(filepath.Join(dir, "deep/er/x"), []byte("x"), 0o644)
	if got := strings.Join(names(t, dir), " "); got != "deep/ w" {
		t.Fatalf("root %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "w")); string(b) != "waiting" {
		t.Fatalf("read %q", b)
	}
}

func TestEditAppendTruncateOfAnObject(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("log", []byte("line1\n"), nil, ourMD5)
	m.Seed("big", bytes.Repeat([]byte("b"), 200000), nil, ourMD5)
	dir, _ := rwMount(t, m, 0)
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("line2\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := m.Object("log"); string(got) != "line1\nline2\n" {
		t.Fatalf("append: %q", got)
	}
	if err := os.Truncate(filepath.Join(dir, "big"), 10); err != nil {
		t.Fatal(err)
	}
	// A truncate by path has no close: it is uploaded by the queue.
	if st, _ := os.Stat(filepath.Join(dir, "big")); st.Size() != 10 {
		t.Fatalf("size after truncate %d", st.Size())
	}
	f, _ = os.OpenFile(filepath.Join(dir, "big"), os.O_RDWR, 0)
	f.WriteAt([]byte("XY"), 4)
	f.Sync()
	f.Close()
	if got, _, _, _ := m.Object("big"); string(got) != "bbbbXYbbbb" {
		t.Fatalf("edit: %q", got)
	}
}

func TestUnlinkRmdirAndNotEmpty(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("d/f", []byte("1"), nil, ourMD5)
	dir, _ := rwMount(t, m, 0)
	if err := os.Remove(filepath.Join(dir, "d")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir of a full folder: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "d/f")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if len(m.Keys()) != 0 {
		t.Fatalf("left: %v", m.Keys())
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat after rmdir: %v", err)
	}
}

func TestRenameOfUploadedFileUsesCopyFallback(t *testing.T) {
	m := memstore.New(ourMD5)
	m.SetNoCopyObject(true)
	m.Seed("a", []byte("alpha"), map[string]string{"mtime": "1400000000.5"}, ourMD5)
	dir, _ := rwMount(t, m, 0)
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if got := m.Keys(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("keys %v", got)
	}
	data, meta, ours, _ := m.Object("b")
	if string(data) != "alpha" || meta["mtime"] != "1400000000.5" || !ours {
		t.Fatalf("b: %q %v %v", data, meta, ours)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "b")); err != nil || string(b) != "alpha" {
		t.Fatalf("read b: %q %v", b, err)
	}
}

func TestFolderRenameMovesEverything(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("old/x", []byte("x"), nil, ourMD5)
	m.Seed("old/sub/y", []byte("y"), nil, ourMD5)
	m.Seed("old/sub/", nil, nil, ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	os.WriteFile(filepath.Join(dir, "old/waiting"), []byte("w"), 0o644)
	if err := os.Rename(filepath.Join(dir, "old"), filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "new/sub/ new/sub/y new/waiting new/x"
	if got := strings.Join(m.Keys(), " "); got != want {
		t.Fatalf("keys %q, want %q", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "new/sub/y")); err != nil || string(b) != "y" {
		t.Fatalf("new/sub/y: %q %v", b, err)
	}
}

func TestSymlinksAsS3fsStoresThem(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, _ := rwMount(t, m, 0)
	if err := os.Symlink("../target/file", filepath.Join(dir, "ln")); err != nil {
		t.Fatal(err)
	}
	data, meta, ours, _ := m.Object("ln")
	if string(data) != "../target/file" || meta["mode"] != "41471" || !ours {
		t.Fatalf("stored %q %v", data, meta)
	}
	if got, err := os.Readlink(filepath.Join(dir, "ln")); err != nil || got != "../target/file" {
		t.Fatalf("readlink %q %v", got, err)
	}
}

func TestUnsupportedOperationsSayNo(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("f", []byte("1"), nil, ourMD5)
	dir, _ := rwMount(t, m, 0)
	if err := os.Link(filepath.Join(dir, "f"), filepath.Join(dir, "g")); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("link: %v", err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("mkfifo: %v", err)
	}
}

func TestSymlinkTimesAreStored(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, _ := rwMount(t, m, 0)
	p := filepath.Join(dir, "ln")
	if err := os.Symlink("target", p); err != nil {
		t.Fatal(err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(1500000000123456789), unix.NsecToTimespec(1500000000123456789)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(p); err != nil || st.ModTime().UnixNano() != 1500000000123456789 {
		t.Fatalf("lstat: %v %v", st.ModTime(), err)
	}
	if data, meta, _, _ := m.Object("ln"); string(data) != "target" || meta["mtime"] != "1500000000.123456789" {
		t.Fatalf("stored %q %v", data, meta)
	}
}

// A file overwritten (O_TRUNC) and renamed before its upload replaces its
// old object: the old name goes from the bucket too, not only the listing.
func TestOverwrittenThenRenamedFileLeavesNoOldName(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("a", []byte("old"), nil, ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := m.Keys(); len(keys) != 1 || keys[0] != "b" {
		t.Fatalf("bucket holds %v, want only b", keys)
	}
	if data, _, _, _ := m.Object("b"); string(data) != "new" {
		t.Fatalf("b holds %q", data)
	}
}

// The old name of a renamed waiting file stays in the bucket until the
// file is uploaded under its new name; a fresh listing must not show it.
func TestRenamedWaitingFileIsNotListedUnderItsOldName(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("a", []byte("old"), nil, ourMD5)
	dir, _ := rwMountTTL(t, m, time.Hour, 0) // every listing asks the bucket
	f, err := os.OpenFile(filepath.Join(dir, "a"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("+more"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); strings.Join(got, ",") != "b" {
		t.Fatalf("listing shows %v, want [b]", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of the old name: %v", err)
	}
}

// A waiting file renamed away still reads its bytes from the object under
// its old name: deleting a new file of that name must not take them away.
func TestUnlinkOfANameAWaitingFileLeftKeepsItsBytes(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("a", bytes.Repeat([]byte("o"), 200000), nil, ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	f, err := os.OpenFile(filepath.Join(dir, "a"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("+more"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte("o"), 200000), "+more"...)
	if data, _, _, _ := m.Object("b"); !bytes.Equal(data, want) {
		t.Fatalf("b holds %d bytes, want %d", len(data), len(want))
	}
	if keys := m.Keys(); len(keys) != 1 {
		t.Fatalf("bucket holds %v, want only b", keys)
	}
}

// A folder renamed away, then made again, must not show the listing made
// ahead of the old one.
func TestAFolderMadeAgainDoesNotShowItsOldListing(t *testing.T) {
	m := memstore.New(ourMD5)
	for i := range 4 {
		m.Seed(fmt.Sprintf("t/d%d/f", i), []byte("x"), nil, ourMD5)
	}
	dir, _ := rwMountTTL(t, m, time.Hour, time.Minute)
	if _, err := os.Stat(filepath.Join(dir, "t", "d0")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(m.Calls(), func(c memstore.Call) bool { return c.Op == "list" && c.Key == "t/d2/" }) {
		if time.Now().After(deadline) {
			t.Fatal("t/d2/ was not listed ahead")
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.Rename(filepath.Join(dir, "t", "d2"), filepath.Join(dir, "t", "e2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "t", "d2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := names(t, filepath.Join(dir, "t", "d2")); len(got) != 0 {
		t.Fatalf("the new t/d2 shows %v", got)
	}
	if got := names(t, filepath.Join(dir, "t", "e2")); len(got) != 1 || got[0] != "f" {
		t.Fatalf("the renamed folder shows %v", got)
	}
}
