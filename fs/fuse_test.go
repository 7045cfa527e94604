package fs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/store/memstore"
)

const ourMD5, otherMD5 = "ours", "other"

// syncBuffer is a log destination that goroutines still running after a
// test (uploads) may write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testMount mounts an in-memory bucket in a temporary folder and returns
// the folder. The mount goes away with the test.
func testMount(t *testing.T, m *memstore.Store, prefix string, ttl time.Duration) string {
	t.Helper()
	dir, _ := testMountFS(t, m, prefix, ttl)
	return dir
}

// testMountFS is testMount with options changed by each of opts, and the
// filesystem.
func testMountFS(t testing.TB, m *memstore.Store, prefix string, ttl time.Duration, opts ...func(*Options)) (string, *FS) {
	t.Helper()
	dir, f, _ := testMountLog(t, m, prefix, ttl, MountOptions{FsName: "ssecfs:test"}, opts...)
	return dir, f
}

// testMountLog is testMountFS with the kernel-facing options given, and
// the filesystem's log (with every FUSE request when mo.Debug is set).
func testMountLog(t testing.TB, m *memstore.Store, prefix string, ttl time.Duration, mo MountOptions, opts ...func(*Options)) (string, *FS, *syncBuffer) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("in-process FUSE tests mount directly and need root")
	}
	c, err := cache.New(cache.Options{Size: 64 << 10, BlockSize: 4 << 10, Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	level := slog.LevelInfo
	if mo.Debug {
		level = slog.LevelDebug
	}
	o := Options{
		Store: m, Cache: c, Prefix: prefix, MetaTTL: ttl, ReadAhead: 16 << 10,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level})),
	}
	for _, change := range opts {
		change(&o)
	}
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := f.Mount(dir, mo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
		if t.Failed() {
			t.Logf("filesystem log:\n%s", logs.String())
		}
	})
	return dir, f, &logs
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestTreeFromPrefixesAndMarkers(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("a.txt", []byte("A"), nil, ourMD5)
	m.Seed("photos/2024/x.jpg", []byte("jpeg"), nil, ourMD5)
	m.Seed("empty/", nil, nil, "") // folder marker, as the console and s3fs make
	m.Seed("photos/", nil, nil, "")
	dir := testMount(t, m, "", time.Minute)
	if got, want := strings.Join(names(t, dir), " "), "a.txt empty/ photos/"; got != want {
		t.Fatalf("root: %s, want %s", got, want)
	}
	if got := strings.Join(names(t, filepath.Join(dir, "photos")), " "); got != "2024/" {
		t.Fatalf("photos: %s", got)
	}
	if got := names(t, filepath.Join(dir, "empty")); len(got) != 0 {
		t.Fatalf("empty: %v", got)
	}
	b, err := os.ReadFile(filepath.Join(dir, "photos/2024/x.jpg"))
	if err != nil || string(b) != "jpeg" {
		t.Fatalf("read: %q %v", b, err)
	}
	if bad := m.UnkeyedDataCalls(); len(bad) != 0 {
		t.Fatalf("calls without the key: %+v", bad)
	}
}

func TestPrefixIsTheRoot(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("backup/host1/etc.tar", []byte("tar"), nil, ourMD5)
	m.Seed("other/secret", []byte("no"), nil, ourMD5)
	dir := testMount(t, m, "backup/", time.Minute)
	if got := strings.Join(names(t, dir), " "); got != "host1/" {
		t.Fatalf("root: %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("object outside the prefix visible: %v", err)
	}
}

func TestLookupWithoutListingFindsFilesAndFolders(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("d/f", []byte("hello"), map[string]string{"mtime": "1600000000.123456789"}, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	st, err := os.Stat(filepath.Join(dir, "d", "f")) // no readdir first
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 5 || !st.ModTime().Equal(time.Unix(1600000000, 123456789)) {
		t.Fatalf("size %d mtime %v", st.Size(), st.ModTime())
	}
	if _, err := os.Stat(filepath.Join(dir, "d", "nothing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestMetadataFromRcloneAndS3fs(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("rclone.txt", []byte("r"), map[string]string{"mtime": "1500000000.5", "mode": "0100600"}, ourMD5)
	m.Seed("s3fs.txt", []byte("s"), map[string]string{"mtime": "1400000000", "mode": "33261", "uid": "1000", "gid": "1000"}, ourMD5)
	m.Seed("plain-aws.txt", []byte("p"), nil, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	names(t, dir) // list first, as ls -l does
	for name, want := range map[string]struct {
		mtime time.Time
		mode  os.FileMode
	}{
		"rclone.txt":    {time.Unix(1500000000, 5e8), 0o600},
		"s3fs.txt":      {time.Unix(1400000000, 0), 0o755},
		"plain-aws.txt": {time.Unix(1700000000, 0).Add(3 * time.Second), 0o644},
	} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(want.mtime) || st.Mode().Perm() != want.mode {
			t.Errorf("%s: mtime %v mode %v; want %v %v", name, st.ModTime(), st.Mode().Perm(), want.mtime, want.mode)
		}
	}
}

func TestBadNamesAreLeftOutAndFoldersWinOverObjects(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("ok", []byte("1"), nil, ourMD5)
	m.Seed("a//b", []byte("2"), nil, ourMD5)
	m.Seed("./c", []byte("3"), nil, ourMD5)
	m.Seed("../d", []byte("4"), nil, ourMD5)
	m.Seed(strings.Repeat("x", 256), []byte("5"), nil, ourMD5)
	m.Seed("both", []byte("file"), nil, ourMD5)
	m.Seed("both/inner", []byte("6"), nil, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	if got, want := strings.Join(names(t, dir), " "), "a/ both/ ok"; got != want {
		t.Fatalf("root: %q, want %q", got, want)
	}
	if got := names(t, filepath.Join(dir, "a")); len(got) != 0 {
		t.Fatalf("a/ shows %v; the empty component must be left out", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "both/inner")); err != nil || string(b) != "6" {
		t.Fatalf("both/inner: %q %v", b, err)
	}
}

func TestPlaintextObjectIsReadableAndOtherKeyIsEACCES(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("plain", []byte("not encrypted"), nil, "")
	m.Seed("theirs", []byte("secret"), nil, otherMD5)
	dir := testMount(t, m, "", time.Minute)
	if b, err := os.ReadFile(filepath.Join(dir, "plain")); err != nil || string(b) != "not encrypted" {
		t.Fatalf("plain: %q %v", b, err)
	}
	st, err := os.Stat(filepath.Join(dir, "theirs"))
	if err != nil || st.Size() != 6 {
		t.Fatalf("theirs: stat %v %v; it must show with its listed size", st, err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "theirs")); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("theirs: %v, want EACCES", err)
	}
	for _, c := range m.Calls() {
		if c.Op == "read" && c.Key == "plain" && c.KeyMD5 != "" {
			t.Fatalf("plaintext object read with the key: %+v", c)
		}
	}
}

func TestEveryDataCallCarriesTheKey(t *testing.T) {
	m := memstore.New(ourMD5)
	big := bytes.Repeat([]byte("0123456789"), 10000) // 25 blocks
	m.Seed("big", big, nil, ourMD5)
	m.Seed("dir/small", []byte("s"), nil, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	if b, err := os.ReadFile(filepath.Join(dir, "big")); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("big: %v", err)
	}
	names(t, filepath.Join(dir, "dir"))
	os.Stat(filepath.Join(dir, "dir/small"))
	data := 0
	for _, c := range m.Calls() {
		if c.Op == "head" || c.Op == "read" {
			data++
			if c.KeyMD5 != ourMD5 {
				t.Fatalf("call without our key: %+v", c)
			}
		}
	}
	if data == 0 {
		t.Fatal("no data call recorded")
	}
}

func TestChangedObjectGivesOldBytesOrESTALE(t *testing.T) {
	m := memstore.New(ourMD5)
	old := bytes.Repeat([]byte("o"), 40<<10) // ten 4 KiB blocks, beyond the read-ahead
	m.Seed("f", old, nil, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	fh, err := os.Open(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	first := make([]byte, 4096)
	if _, err := io.ReadFull(fh, first); err != nil {
		t.Fatal(err)
	}
	m.Seed("f", bytes.Repeat([]byte("n"), 40<<10), nil, ourMD5) // overwritten by another client
	rest, err := io.ReadAll(fh)
	got := append(first, rest...)
	if err == nil {
		if !bytes.Equal(got, old) {
			t.Fatal("reader got a mix of versions")
		}
		return
	}
	if !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("read error %v, want ESTALE", err)
	}
	if bytes.Contains(got, []byte("n")) {
		t.Fatal("reader got bytes of the new version through the old handle")
	}
}

func TestWritesAreRefusedReadOnly(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("f", []byte("x"), nil, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("y"), 0o644); err == nil {
		t.Fatal("write succeeded on a filesystem without a write path")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "x" {
		t.Fatalf("content changed: %q", b)
	}
}

func TestStatfsReportsSpace(t *testing.T) {
	dir := testMount(t, memstore.New(ourMD5), "", time.Minute)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Bsize != 4096 || st.Blocks != 1<<40 || st.Bavail != 1<<40 || st.Ffree != 1<<40 || st.Namelen != 255 {
		t.Fatalf("statfs: %+v", st)
	}
}

func TestReadingAFolderFileByFileFetchesEachObjectOnce(t *testing.T) {
	m := memstore.New(ourMD5)
	want := map[string]string{}
	for i := 0; i < 60; i++ {
		name := fmt.Sprintf("f%03d", i)
		want[name] = strings.Repeat(name, 100+i)
		m.Seed("dir/"+name, []byte(want[name]), nil, ourMD5)
	}
	dir := testMount(t, m, "", time.Minute)
	for _, n := range names(t, filepath.Join(dir, "dir")) { // as cp -r: list, then read in order
		b, err := os.ReadFile(filepath.Join(dir, "dir", n))
		if err != nil || string(b) != want[n] {
			t.Fatalf("%s: %v or bytes differ", n, err)
		}
	}
	reads := map[string]int{}
	for _, c := range m.Calls() {
		if c.Op == "read" {
			reads[c.Key]++
		}
	}
	for name := range want {
		if reads["dir/"+name] != 1 {
			for _, c := range m.Calls() {
				if c.Key == "dir/"+name {
					t.Logf("%+v", c)
				}
			}
			t.Fatalf("dir/%s read %d times: fetching ahead must not cost a second read", name, reads["dir/"+name])
		}
	}
}

// A server that lists metadata (MinIO): folders are listed with metadata
// while the files listed are stat'ed (ls -l, rsync), plainly once a folder
// was read without (find); a folder listed plainly whose files are stat'ed
// after all costs one HEAD and one listing with metadata.
func TestFoldersAreListedWithMetadataWhileTheirFilesAreStated(t *testing.T) {
	m := memstore.New(ourMD5)
	m.SetListMeta(true)
	for _, d := range []string{"a", "x/b", "y/c"} {
		for i := range 20 {
			m.Seed(fmt.Sprintf("%s/f%02d", d, i), []byte(fmt.Sprint("data ", i)), map[string]string{"mtime": fmt.Sprint(1500000000+i, ".25")}, ourMD5)
		}
	}
	m.Seed("a/plain", []byte("not encrypted"), nil, "")
	m.Seed("a/theirs", []byte("secret"), nil, otherMD5)
	dir := testMount(t, m, "", time.Minute)
	calls := func(op, prefix string) (n int) {
		for _, c := range m.Calls() {
			if c.Op == op && strings.HasPrefix(c.Key, prefix) {
				n++
			}
		}
		return n
	}
	statAll := func(d string) {
		t.Helper()
		for i := range 20 {
			st, err := os.Stat(filepath.Join(dir, d, fmt.Sprintf("f%02d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Unix(int64(1500000000+i), 25e7); !st.ModTime().Equal(want) {
				t.Errorf("%s/f%02d: mtime %v, want %v", d, i, st.ModTime(), want)
			}
		}
	}
	names(t, filepath.Join(dir, "a"))
	statAll("a") // ls -l
	if heads, lists := calls("head", "a/f"), calls("list+meta", "a/"); heads != 0 || lists != 1 {
		t.Fatalf("ls -l of a fresh mount's folder: %d HEADs, %d listings with metadata; want 0 and 1", heads, lists)
	}
	names(t, filepath.Join(dir, "x", "b")) // listed as a was: with metadata
	if n := calls("list+meta", "x/b/"); n != 1 {
		t.Fatalf("x/b: %d listings with metadata after a folder whose files were stat'ed, want 1", n)
	}
	names(t, filepath.Join(dir, "y", "c")) // after x/b, read without a stat (find)
	if n := calls("list+meta", "y/c/"); n != 0 {
		t.Fatalf("y/c: %d listings with metadata after a folder read without stats, want 0", n)
	}
	statAll("y/c")
	if heads, lists := calls("head", "y/c/f"), calls("list+meta", "y/c/"); heads != 1 || lists != 1 {
		t.Fatalf("stat of 20 files listed plainly: %d HEADs and %d listings with metadata, want 1 and 1", heads, lists)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "f07")); err != nil || string(b) != "data 7" {
		t.Fatalf("f07: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "plain")); err != nil || string(b) != "not encrypted" {
		t.Fatalf("plain: %q %v", b, err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "a", "theirs")); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("theirs: %v, want EACCES (the listing cannot tell whose key)", err)
	}
}

// A big folder's listing with metadata comes in chunks of a page, listed
// in parallel; a stat waits for its own chunk, in whatever order the files
// are stat'ed, and every file gets its own attributes.
func TestABigFoldersMetadataIsListedInChunks(t *testing.T) {
	m := memstore.New(ourMD5)
	m.SetListMeta(true)
	const n = 2*1000 + 500 // three chunks of a listing with metadata (ns/metalist.go)
	for i := range n {
		m.Seed(fmt.Sprintf("big/f%05d", i), []byte("x"), map[string]string{"mtime": fmt.Sprint(1500000000 + i)}, ourMD5)
	}
	m.Seed("big/sub/deeper", []byte("y"), nil, ourMD5)
	m.Seed("big/", nil, map[string]string{"mode": "16877"}, ourMD5) // the folder's marker: not a name
	m.Seed("other/f", []byte("z"), nil, ourMD5)
	dir := testMount(t, m, "", time.Minute)
	names(t, filepath.Join(dir, "other")) // read without a stat: big is listed plainly
	if got := len(names(t, filepath.Join(dir, "big"))); got != n+1 {
		t.Fatalf("%d names, want %d", got, n+1)
	}
	order := []int{0}
	for i := n - 1; i > 0; i -= 7 { // from the end, skipping about
		order = append(order, i)
	}
	for i := range n {
		order = append(order, i)
	}
	for _, i := range order {
		st, err := os.Stat(filepath.Join(dir, "big", fmt.Sprintf("f%05d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Unix(int64(1500000000+i), 0); !st.ModTime().Equal(want) {
			t.Fatalf("f%05d: mtime %v, want %v", i, st.ModTime(), want)
		}
	}
	heads, lists := 0, 0
	for _, c := range m.Calls() {
		switch {
		case c.Op == "head" && strings.HasPrefix(c.Key, "big/f"):
			heads++
		case c.Op == "list+meta" && c.Key == "big/":
			lists++
		}
	}
	if heads != 1 || lists != 3 {
		t.Fatalf("%d HEADs of files and %d listings with metadata, want 1 and 3 (one per chunk)", heads, lists)
	}
}

// find walks a tree folder after folder: the folders after the one looked
// up are listed ahead, and each folder is still listed only once.
func TestFolderListingsAheadListEachFolderOnce(t *testing.T) {
	m := memstore.New(ourMD5)
	for i := range 30 {
		for j := range 3 {
			m.Seed(fmt.Sprintf("t/d%02d/f%d", i, j), []byte("x"), nil, ourMD5)
		}
	}
	dir := testMount(t, m, "", time.Minute)
	if _, err := os.Stat(filepath.Join(dir, "t", "d00")); err != nil {
		t.Fatal(err)
	}
	listed := func() map[string]int {
		n := map[string]int{}
		for _, c := range m.Calls() {
			if c.Op == "list" {
				n[c.Key]++
			}
		}
		return n
	}
	// The listings ahead run in the background; wait for the first few.
	deadline := time.Now().Add(10 * time.Second)
	for listed()["t/d08/"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no listing ahead of t/d08/ after a lookup of t/d00: %v", listed())
		}
		time.Sleep(time.Millisecond)
	}
	files := 0
	err := filepath.WalkDir(filepath.Join(dir, "t"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return err
	})
	if err != nil || files != 90 {
		t.Fatalf("walk: %d files, %v", files, err)
	}
	for i := range 30 {
		if p := fmt.Sprintf("t/d%02d/", i); listed()[p] != 1 {
			t.Errorf("%s listed %d times", p, listed()[p])
		}
	}
}
