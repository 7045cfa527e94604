package stage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

var (
	sseKey = []byte("0123456789abcdefghijklmnopqrstuv")
	ctx    = context.Background()
	mtime  = time.Unix(1700000000, 123456789)
)

const ours = "ours"

func open(t *testing.T, dir string, m *memstore.Store, window time.Duration) *Manager {
	t.Helper()
	mgr, err := Open(Config{Dir: dir, Key: sseKey, Store: m, Window: window, Parallel: 4, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

func writeFile(t *testing.T, mgr *Manager, key string, data []byte) *Entry {
	t.Helper()
	e, err := mgr.OpenFile(key, nil, Attrs{Mtime: mtime, Mode: 0o640, UID: 1000, GID: 100}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
	return e
}

func TestNoWindowUploadsBeforeCloseReturns(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, 0)
	defer mgr.Close()
	writeFile(t, mgr, "a/file", []byte("hello"))
	data, meta, enc, ok := m.Object("a/file")
	if !ok || string(data) != "hello" || !enc {
		t.Fatalf("object %q ok=%v encrypted=%v", data, ok, enc)
	}
	// A write sets the mtime to now, as write(2) does; nine decimals.
	if !regexp.MustCompile(`^\d{10}\.\d{9}$`).MatchString(meta["mtime"]) || meta["mode"] != "33184" || meta["uid"] != "1000" {
		t.Fatalf("metadata %v", meta)
	}
}

func TestWindowDelaysUploadAndDrainFinishesIt(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, time.Hour)
	defer mgr.Close()
	writeFile(t, mgr, "f", []byte("later"))
	if _, _, _, ok := m.Object("f"); ok {
		t.Fatal("uploaded inside the write-back window")
	}
	if p := mgr.Pending(); len(p) != 1 || p[0].Key != "f" {
		t.Fatalf("pending %+v", p)
	}
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if data, _, _, ok := m.Object("f"); !ok || string(data) != "later" {
		t.Fatalf("after drain: %q %v", data, ok)
	}
	if len(mgr.Pending()) != 0 {
		t.Fatal("still pending after drain")
	}
}

func TestRenameAndChmodInTheWindowCostOneUploadAndNoCopy(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, time.Hour)
	defer mgr.Close()
	e := writeFile(t, mgr, ".file.XXXXXX", []byte("rsync temp"))
	e.SetAttrs(func(a *Attrs) { a.Mode = 0o600; a.Mtime = time.Unix(1600000000, 1) })
	mgr.Rename(e, "file")
	m.ResetCalls()
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, c := range m.Calls() {
		counts[c.Op]++
	}
	if counts["put"] != 1 || counts["copy"]+counts["copypart"] != 0 || counts["delete"] != 0 {
		t.Fatalf("calls %v: want one put, no copy, no delete", counts)
	}
	if got := m.Keys(); len(got) != 1 || got[0] != "file" {
		t.Fatalf("keys %v", got)
	}
	_, meta, _, _ := m.Object("file")
	if meta["mtime"] != "1600000000.000000001" || meta["mode"] != "33152" {
		t.Fatalf("meta %v", meta)
	}
}

func TestJournalSurvivesACrashAndResumes(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	mgr := open(t, dir, m, time.Hour)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: multipart
	writeFile(t, mgr, "big", big)
	writeFile(t, mgr, "small", []byte("s"))
	mgr.Close() // as if killed: nothing uploaded
	if len(m.Keys()) != 0 {
		t.Fatal("uploaded before the crash")
	}
	mgr = open(t, dir, m, time.Hour)
	defer mgr.Close()
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if data, _, _, _ := m.Object("big"); !bytes.Equal(data, big) {
		t.Fatalf("big: %d bytes after resume", len(data))
	}
	if m.Uploads() != 0 {
		t.Fatalf("%d multipart uploads left", m.Uploads())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 { // only the lock
		t.Fatalf("journal not emptied: %v", ents)
	}
}

func TestJournalUnderAnotherKeyIsLeftAlone(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	mgr := open(t, dir, m, time.Hour)
	writeFile(t, mgr, "f", []byte("x"))
	mgr.Close()
	other, err := Open(Config{Dir: dir, Key: []byte("another-key-another-key-another!"), Store: m, Window: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if len(other.Pending()) != 0 || len(m.Keys()) != 0 {
		t.Fatal("a journal under another key was used")
	}
	if _, err := os.Stat(filepath.Join(dir)); err != nil {
		t.Fatal(err)
	}
	recs, _ := filepath.Glob(filepath.Join(dir, "*.rec"))
	if len(recs) != 1 {
		t.Fatalf("record deleted: %v", recs)
	}
}

func TestSpoolAndJournalHoldNoPlaintext(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	mgr := open(t, dir, m, time.Hour)
	defer mgr.Close()
	marker := bytes.Repeat([]byte("PLAINTEXT-MARKER"), 8192)
	writeFile(t, mgr, "secret-name.txt", marker)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("PLAINTEXT-MARKER")) || bytes.Contains(b, []byte("secret-name")) || bytes.Contains(b, sseKey) {
			t.Fatalf("%s holds plaintext", f)
		}
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("journal folder mode %o", st.Mode().Perm())
	}
}

func TestEditingAnObjectFetchesOnlyWhatAPartialWriteNeeds(t *testing.T) {
	m := memstore.New(ours)
	orig := bytes.Repeat([]byte("a"), 5*chunkSize)
	m.Seed("obj", orig, nil, ours)
	mgr := open(t, t.TempDir(), m, 0)
	defer mgr.Close()
	_, _, _, _ = m.Object("obj")
	a, _ := m.Head(ctx, "obj")
	e, err := mgr.OpenFile("obj", &Base{Key: "obj", ETag: a.ETag, Size: a.Size}, Attrs{Mtime: mtime, Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	m.ResetCalls()
	if _, err := e.WriteAt(ctx, []byte("XY"), chunkSize+10); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, c := range m.Calls() {
		if c.Op == "read" {
			reads++
		}
	}
	if reads != 1 {
		t.Fatalf("%d base reads for one partial chunk", reads)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
	want := append([]byte(nil), orig...)
	copy(want[chunkSize+10:], "XY")
	if got, _, _, _ := m.Object("obj"); !bytes.Equal(got, want) {
		t.Fatal("edited object differs")
	}
}

func TestTruncateThenExtendReadsZeros(t *testing.T) {
	m := memstore.New(ours)
	m.Seed("obj", bytes.Repeat([]byte("b"), 3*chunkSize), nil, ours)
	a, _ := m.Head(ctx, "obj")
	mgr := open(t, t.TempDir(), m, 0)
	defer mgr.Close()
	e, _ := mgr.OpenFile("obj", &Base{Key: "obj", ETag: a.ETag, Size: a.Size}, Attrs{Mtime: mtime}, true)
	if err := e.Truncate(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := e.Truncate(ctx, 2*chunkSize); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2*chunkSize)
	n, err := e.ReadAt(ctx, got, 0)
	if err != nil || n != len(got) {
		t.Fatal(n, err)
	}
	if !bytes.Equal(got[:100], bytes.Repeat([]byte("b"), 100)) || bytes.ContainsAny(got[100:], "b") {
		t.Fatal("old bytes came back after truncate and extend")
	}
}

func TestSecondMountOfOneJournalIsRefused(t *testing.T) {
	dir := t.TempDir()
	mgr := open(t, dir, memstore.New(ours), 0)
	defer mgr.Close()
	_, err := Open(Config{Dir: dir, Key: sseKey, Store: memstore.New(ours)})
	if err == nil || !strings.Contains(err.Error(), "cannot be mounted twice") {
		t.Fatalf("err %v", err)
	}
}

func TestFailedUploadIsStickyAndStaysInTheJournal(t *testing.T) {
	m := memstore.New(ours)
	boom := errors.New("server on fire")
	m.Fail = func(op, key string) error {
		if op == "put" {
			return boom
		}
		return nil
	}
	dir := t.TempDir()
	mgr := open(t, dir, m, 0)
	defer mgr.Close()
	e, _ := mgr.OpenFile("f", nil, Attrs{Mtime: mtime}, true)
	e.WriteAt(ctx, []byte("data"), 0)
	if err := e.Flush(ctx); !errors.Is(err, boom) {
		t.Fatalf("close returned %v, want the upload error", err)
	}
	e.Release(true)
	if err := mgr.Drain(ctx); !errors.Is(err, ErrNotDrained) {
		t.Fatalf("drain: %v", err)
	}
	if recs, _ := filepath.Glob(filepath.Join(dir, "*.rec")); len(recs) != 1 {
		t.Fatal("failed file not in the journal")
	}
	m.Fail = nil
	if err := mgr.Drain(ctx); err != nil {
		t.Fatalf("drain after the server recovered: %v", err)
	}
}

func TestMetadataChangeOfUploadedObjectFallsBackWhenCopyIsRefused(t *testing.T) {
	m := memstore.New(ours)
	m.SetNoCopyObject(true) // as Ceph RGW before v20
	m.Seed("obj", []byte("content"), map[string]string{"mode": "33188"}, ours)
	a, _ := m.Head(ctx, "obj")
	mgr := open(t, t.TempDir(), m, 0)
	defer mgr.Close()
	e, _ := mgr.OpenFile("obj", &Base{Key: "obj", ETag: a.ETag, Size: a.Size}, Attrs{Mtime: mtime, Mode: 0o644}, false)
	e.SetAttrs(func(a *Attrs) { a.Mode = 0o600 })
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	data, meta, enc, _ := m.Object("obj")
	if string(data) != "content" || meta["mode"] != "33152" || !enc {
		t.Fatalf("%q %v %v", data, meta, enc)
	}
}

func TestMultipartUploadLeftByACrashIsAborted(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	mgr := open(t, dir, m, 0)
	// What a daemon killed between CreateMultipartUpload and its completion
	// leaves: the upload in the bucket, its note in the journal.
	id, err := m.CreateMultipart(ctx, "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	mgr.trackUpload("big", id)
	mgr.Close()
	if m.Uploads() != 1 {
		t.Fatalf("%d uploads open", m.Uploads())
	}
	m2 := open(t, dir, m, time.Hour)
	defer m2.Close()
	if m.Uploads() != 0 {
		t.Fatal("the multipart upload of the dead run is still open")
	}
	if notes, _ := filepath.Glob(filepath.Join(dir, "*.mpu")); len(notes) != 0 {
		t.Fatalf("notes left: %v", notes)
	}
}

func TestFinishedUploadsLeaveNoNote(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	mgr := open(t, dir, m, 0)
	defer mgr.Close()
	writeFile(t, mgr, "big", bytes.Repeat([]byte("y"), 20<<20))
	if notes, _ := filepath.Glob(filepath.Join(dir, "*.mpu")); len(notes) != 0 || m.Uploads() != 0 {
		t.Fatalf("notes %v, uploads %d", notes, m.Uploads())
	}
}

func TestAnOpenFileStaysUsableAfterItsDeletion(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	mgr := open(t, dir, m, time.Hour)
	defer mgr.Close()
	e, _ := mgr.OpenFile("f", nil, Attrs{Mtime: mtime}, true)
	e.WriteAt(ctx, []byte("before"), 0)
	mgr.Drop(e) // unlink while open
	if _, err := e.WriteAt(ctx, []byte(" after"), 6); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	if n, err := e.ReadAt(ctx, buf, 0); err != nil || string(buf[:n]) != "before after" {
		t.Fatalf("%q %v", buf[:n], err)
	}
	e.Release(true)
	if files, _ := filepath.Glob(filepath.Join(dir, "*.dat")); len(files) != 0 || len(m.Keys()) != 0 {
		t.Fatalf("left: %v %v", files, m.Keys())
	}
}

// A file truncated while its upload is in flight must not get the old
// bytes back from the new object once the upload ends.
func TestTruncateDuringAnUploadStillHolds(t *testing.T) {
	m := memstore.New(ours)
	m.Seed("obj", bytes.Repeat([]byte("b"), 3*chunkSize), nil, ours)
	a, _ := m.Head(ctx, "obj")
	mgr := open(t, t.TempDir(), m, 0)
	defer mgr.Close()
	e, _ := mgr.OpenFile("obj", &Base{Key: "obj", ETag: a.ETag, Size: a.Size}, Attrs{Mtime: mtime}, true)
	if _, err := e.WriteAt(ctx, []byte("X"), 0); err != nil {
		t.Fatal(err)
	}
	// Hold the upload at its PUT, once it has read the bytes it sends.
	put, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m.Fail = func(op, key string) error {
		if op == "put" && key == "obj" {
			once.Do(func() { close(put); <-release })
		}
		return nil
	}
	synced := make(chan error, 1)
	go func() { synced <- e.Sync(ctx) }()
	select {
	case <-put:
	case err := <-synced:
		t.Fatalf("uploaded without a PUT: %v %v", err, m.Calls())
	}
	if err := e.Truncate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteAt(ctx, []byte("Y"), 2*chunkSize+5); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
	want := make([]byte, 2*chunkSize+6)
	want[len(want)-1] = 'Y'
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if data, _, _, _ := m.Object("obj"); !bytes.Equal(data, want) {
		t.Fatalf("the bucket holds %d bytes, %d of them 'b': the truncation was lost", len(data), bytes.Count(data, []byte("b")))
	}
}

// A base read that fails half-way through an upload fails the upload: the
// bytes it could not read are never stored as zeros.
func TestFailedBaseReadFailsTheUploadNotZeros(t *testing.T) {
	m := memstore.New(ours)
	m.Seed("obj", bytes.Repeat([]byte("b"), 3*chunkSize), nil, ours)
	a, _ := m.Head(ctx, "obj")
	mgr := open(t, t.TempDir(), m, 0)
	defer mgr.Close()
	e, _ := mgr.OpenFile("obj", &Base{Key: "obj", ETag: a.ETag, Size: a.Size}, Attrs{Mtime: mtime}, true)
	// In the middle chunk: the upload reads the chunks before and after it
	// from the object, in two reads.
	if _, err := e.WriteAt(ctx, []byte("X"), chunkSize); err != nil {
		t.Fatal(err)
	}
	reads := 0
	m.Fail = func(op, key string) error {
		if op == "read" {
			// The upload's first read succeeds; every read after it,
			// its retries' included, fails.
			if reads++; reads >= 2 {
				return store.ErrUnavailable
			}
		}
		return nil
	}
	err := e.Sync(ctx)
	data, _, _, _ := m.Object("obj")
	if bytes.Contains(data, make([]byte, 1024)) {
		t.Fatalf("the upload stored zeros for bytes it could not read (sync: %v)", err)
	}
	if err == nil {
		t.Fatal("sync succeeded although a base read failed")
	}
}

// The unchanged bytes of an edited file come from its object in one ranged
// read per run of chunks, not one per 64 KiB chunk.
func TestUnchangedBytesOfAnEditedFileAreReadInRuns(t *testing.T) {
	m := memstore.New(ours)
	old := bytes.Repeat([]byte("b"), 40*chunkSize)
	m.Seed("obj", old, nil, ours)
	a, _ := m.Head(ctx, "obj")
	mgr := open(t, t.TempDir(), m, 0)
	defer mgr.Close()
	e, _ := mgr.OpenFile("obj", &Base{Key: "obj", ETag: a.ETag, Size: a.Size}, Attrs{Mtime: mtime}, true)
	if _, err := e.WriteAt(ctx, bytes.Repeat([]byte("X"), chunkSize), 20*chunkSize); err != nil {
		t.Fatal(err)
	}
	m.ResetCalls()
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, c := range m.Calls() {
		if c.Op == "read" {
			reads++
		}
	}
	if reads != 2 {
		t.Errorf("%d reads of the old object, want 2 (the chunks before and after the edit)", reads)
	}
	want := append(append(old[:20*chunkSize:20*chunkSize], bytes.Repeat([]byte("X"), chunkSize)...), old[21*chunkSize:]...)
	if got, _, _, _ := m.Object("obj"); !bytes.Equal(got, want) {
		t.Error("the edited file is not the old bytes with the edit")
	}
	e.Release(true)
}
