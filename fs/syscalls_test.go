package fs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// The system calls backup tools make beyond open, read, write and rename,
// each supported or answered with an errno the tools handle
// (docs/SEMANTICS.md, "System calls").

func TestFallocateGrowsTheFileAndOtherModesAreEOPNOTSUPP(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("abc")
	fd := int(f.Fd())
	if err := unix.Fallocate(fd, 0, 0, 100000); err != nil {
		t.Fatalf("fallocate: %v", err)
	}
	if err := unix.Fallocate(fd, 0, 0, 10); err != nil { // shorter: no change
		t.Fatalf("fallocate within the file: %v", err)
	}
	if err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, 500000); err != nil {
		t.Fatalf("fallocate keeping the size: %v", err)
	}
	if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 2); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("punching a hole: %v, want EOPNOTSUPP", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := append([]byte("abc"), make([]byte, 100000-3)...)
	if data, _, _, _ := m.Object("f"); !bytes.Equal(data, want) {
		t.Fatalf("stored %d bytes, want abc and zeros to 100000", len(data))
	}
}

// O_TMPFILE makes a file without a name, which only linkat(2) can name:
// S3 has no links, so the kernel's FUSE_TMPFILE is refused.
func TestOTmpfileIsEOPNOTSUPP(t *testing.T) {
	dir, _ := rwMount(t, memstore.New(ourMD5), time.Hour)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY, 0o600)
	if err == nil {
		unix.Close(fd)
	}
	if !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("O_TMPFILE: %v, want EOPNOTSUPP", err)
	}
}

func TestRenameat2NoReplaceWorksAndExchangeIsEINVAL(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, _ := rwMount(t, m, time.Hour)
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	os.WriteFile(a, []byte("a"), 0o644)
	os.WriteFile(b, []byte("b"), 0o644)
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_NOREPLACE); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("RENAME_NOREPLACE onto a file: %v, want EEXIST", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("RENAME_EXCHANGE: %v, want EINVAL", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, c, unix.RENAME_NOREPLACE); err != nil {
		t.Fatalf("RENAME_NOREPLACE to a new name: %v", err)
	}
	if got, _ := os.ReadFile(c); string(got) != "a" {
		t.Fatalf("c holds %q", got)
	}
	if got, _ := os.ReadFile(b); string(got) != "b" {
		t.Fatalf("b holds %q", got)
	}
}

// copy_file_range(2) within the mount: the kernel copies through the page
// cache (FUSE_COPY_FILE_RANGE is not implemented), so cp and other callers
// get their bytes without falling back themselves.
func TestCopyFileRangeCopiesWithinTheMount(t *testing.T) {
	m := memstore.New(ourMD5)
	data := bytes.Repeat([]byte("0123456789"), 30000)
	m.Seed("src", data, nil, ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	in, err := os.Open(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	copied := 0
	for copied < len(data) {
		n, err := unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, len(data)-copied, 0)
		if err != nil {
			t.Fatalf("copy_file_range after %d bytes: %v", copied, err)
		}
		if n == 0 {
			break
		}
		copied += n
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := m.Object("dst"); !bytes.Equal(got, data) {
		t.Fatalf("dst holds %d bytes, want the %d of src", len(got), len(data))
	}
}

// flock(2) and fcntl(2) locks are kept by the kernel of the machine: two
// programs here exclude each other (sqlite, borg), two machines do not.
func TestLocksExcludeEachOtherOnTheMachine(t *testing.T) {
	dir, _ := rwMount(t, memstore.New(ourMD5), time.Hour)
	p := filepath.Join(dir, "lock")
	os.WriteFile(p, []byte("l"), 0o644)
	f1, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f2, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if err := unix.Flock(int(f1.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock: %v", err)
	}
	if err := unix.Flock(int(f2.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second flock: %v, want EWOULDBLOCK", err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	if err := unix.FcntlFlock(f1.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatalf("fcntl lock: %v", err)
	}
	if err := unix.FcntlFlock(f2.Fd(), unix.F_OFD_SETLK, &lk); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("second fcntl lock: %v, want EAGAIN", err)
	}
}

// Extended attributes would be stored as object metadata, which S3 keeps
// in plaintext next to the encrypted bytes: not supported. rsync -X and
// -A exit 23 on the mount; cp -a, tar and the backup tools go on.
func TestXattrsAreEOPNOTSUPP(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("f", []byte("1"), nil, ourMD5)
	dir, _ := rwMount(t, m, time.Hour)
	p := filepath.Join(dir, "f")
	if err := unix.Setxattr(p, "user.comment", []byte("x"), 0); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("setxattr: %v, want EOPNOTSUPP", err)
	}
	if _, err := unix.Getxattr(p, "user.comment", make([]byte, 64)); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("getxattr: %v, want EOPNOTSUPP", err)
	}
	if _, err := unix.Listxattr(p, make([]byte, 64)); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("listxattr: %v, want EOPNOTSUPP", err)
	}
}

// A shared writable mapping (git's index files, sqlite's WAL index) is
// written back through the mount and uploaded with the file. The mapping
// is made by a child process: a page fault that waits for this process's
// own FUSE server would stall its garbage collector, which waits for every
// thread, the faulting one included, while the server waits for it.
func TestSharedMmapWritesReachTheBucket(t *testing.T) {
	m := memstore.New(ourMD5)
	dir, mgr := rwMount(t, m, time.Hour)
	p := filepath.Join(dir, "idx")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestMmapChild$", "-test.count=1")
	child.Env = append(os.Environ(), "SSECFS_MMAP_CHILD="+p)
	if out, err := child.CombinedOutput(); err != nil {
		t.Fatalf("the child writing through a mapping: %v\n%s", err, out)
	}
	if err := mgr.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 8192)
	copy(want[4096:], "through the mapping")
	if got, _, _, _ := m.Object("idx"); !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes: %q...", len(got), got[4096:min(len(got), 4120)])
	}
}

// TestMmapChild is TestSharedMmapWritesReachTheBucket's child process.
func TestMmapChild(t *testing.T) {
	p := os.Getenv("SSECFS_MMAP_CHILD")
	if p == "" {
		t.Skip("the child process of TestSharedMmapWritesReachTheBucket")
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(8192); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	copy(mem[4096:], "through the mapping")
	if err := unix.Msync(mem, unix.MS_SYNC); err != nil {
		t.Fatalf("msync: %v", err)
	}
	if err := unix.Munmap(mem); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A listing does not say which objects are symlinks (RGW and AWS list no
// metadata): readdir reports a symlink as a regular file until it is
// stat'ed, and lstat(2), which rsync, tar, cp, restic, borg and duplicity
// call for every entry, reports the link. Programs that trust the type of
// a directory entry alone (find -type, Go's WalkDir, Python's scandir)
// see a file.
func TestReaddirReportsASymlinkAsAFileUntilItIsStated(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("ln", []byte("target"), map[string]string{"mode": "41471"}, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("readdir: %v %v", ents, err)
	}
	if typ := ents[0].Type(); typ != 0 {
		t.Fatalf("readdir reports type %v, want a regular file (the listing does not know)", typ)
	}
	st, err := os.Lstat(filepath.Join(dir, "ln"))
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("lstat: %v %v, want a symlink", st, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "ln")); err != nil || target != "target" {
		t.Fatalf("readlink: %q %v", target, err)
	}
}

// A "symlink" object longer than a target can be (PATH_MAX) is refused
// with EIO and a log line, without reading it: anyone who can write to
// the bucket could plant one of gigabytes.
func TestAnOversizedSymlinkObjectIsRefusedUnread(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("huge", bytes.Repeat([]byte("x"), 1<<20), map[string]string{"mode": "41471"}, ourMD5)
	m.Seed("fine", []byte("target"), map[string]string{"mode": "41471"}, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	if _, err := os.Readlink(filepath.Join(dir, "huge")); !errors.Is(err, unix.EIO) {
		t.Fatalf("readlink of a 1 MiB symlink object: %v, want EIO", err)
	}
	for _, c := range m.Calls() {
		if c.Op == "read" && c.Key == "huge" {
			t.Fatal("the oversized symlink object was read")
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "fine")); err != nil || target != "target" {
		t.Fatalf("readlink of a good link: %q %v", target, err)
	}
}
