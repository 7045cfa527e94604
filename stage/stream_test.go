package stage

import (
	"bytes"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// writeAppending writes data in 1 MiB appends, as cp does.
func writeAppending(t *testing.T, e *Entry, data []byte) {
	t.Helper()
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := e.WriteAt(ctx, data[off:min(off+1<<20, len(data))], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/4096 + i)
	}
	return b
}

func TestLargeFileUploadsWhileItIsWritten(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, time.Hour)
	defer mgr.Close()
	data := pattern(40<<20 + 123)
	e, _ := mgr.OpenFile("big", nil, Attrs{Mtime: mtime, Mode: 0o644}, true)
	writeAppending(t, e, data)
	e.stream.wg.Wait()
	parts := 0
	for _, c := range m.Calls() {
		if c.Op == "part" {
			parts++
		}
	}
	if parts < 4 { // 40 MiB: parts 1-4 of 8 MiB are complete before close
		t.Fatalf("%d parts uploaded while the file was open", parts)
	}
	e.SetAttrs(func(a *Attrs) { a.Mode = 0o600 }) // after the stream began: one copy fixes it
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	got, meta, ours, _ := m.Object("big")
	if !bytes.Equal(got, data) || !ours || meta["mode"] != "33152" {
		t.Fatalf("stored %d bytes (want %d), encrypted %v, meta %v", len(got), len(data), ours, meta)
	}
	if m.Uploads() != 0 {
		t.Fatalf("%d uploads left open", m.Uploads())
	}
}

func TestWritingBackIntoAStreamedPartFallsBackToTheSpool(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, 0)
	defer mgr.Close()
	data := pattern(30 << 20)
	e, _ := mgr.OpenFile("f", nil, Attrs{Mtime: mtime}, true)
	writeAppending(t, e, data)
	copy(data[100:], "PATCHED HEADER") // as zip and mp4 writers do at the end
	if _, err := e.WriteAt(ctx, []byte("PATCHED HEADER"), 100); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
	if got, _, _, _ := m.Object("f"); !bytes.Equal(got, data) {
		t.Fatal("stored bytes differ")
	}
	if m.Uploads() != 0 {
		t.Fatalf("%d uploads left open", m.Uploads())
	}
}

func TestRenamedStreamedFileEndsUnderItsNewName(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, time.Hour)
	defer mgr.Close()
	data := pattern(20 << 20)
	e, _ := mgr.OpenFile(".big.tmp", nil, Attrs{Mtime: mtime}, true)
	writeAppending(t, e, data)
	e.Flush(ctx)
	e.Release(true)
	mgr.Rename(e, "big")
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.Keys(); len(got) != 1 || got[0] != "big" {
		t.Fatalf("keys %v", got)
	}
	if got, _, _, _ := m.Object("big"); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
}

func TestStreamPartsGrowToFitTenThousandParts(t *testing.T) {
	off, size := streamPart(999)
	if off != 999*8<<20 || size != 8<<20 {
		t.Fatal(off, size)
	}
	off, size = streamPart(1000)
	if off != 1000*8<<20 || size != 16<<20 {
		t.Fatal(off, size)
	}
	last, lastSize := streamPart(9999)
	if last+lastSize < 80<<30 {
		t.Fatalf("10,000 parts hold only %d bytes", last+lastSize)
	}
}

func TestFileLargerThanTheJournalIsWrittenAndUploaded(t *testing.T) {
	m := memstore.New(ours)
	const journal = 80 << 20
	mgr, err := Open(Config{Dir: t.TempDir(), Key: sseKey, Store: m, Window: time.Hour, Cap: journal, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	data := pattern(200 << 20)
	e, _ := mgr.OpenFile("huge", nil, Attrs{Mtime: mtime}, true)
	writeAppending(t, e, data)
	if _, err := e.ReadAt(ctx, make([]byte, 10), 0); err == nil {
		t.Fatal("bytes dropped from the journal read back")
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Release(true)
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := m.Object("huge"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, wrote %d", len(got), len(data))
	}
}

func TestCrashAfterPartsLeftTheJournalResumesTheUpload(t *testing.T) {
	m := memstore.New(ours)
	dir := t.TempDir()
	cfg := Config{Dir: dir, Key: sseKey, Store: m, Window: time.Hour, Cap: 80 << 20, Parallel: 2}
	mgr, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(150 << 20)
	e, _ := mgr.OpenFile("huge", nil, Attrs{Mtime: mtime}, true)
	writeAppending(t, e, data)
	e.Flush(ctx) // close returned: the file must survive a crash
	e.Release(true)
	e.stream.wg.Wait()
	mgr.Close() // killed inside the write-back window
	mgr, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := m.Object("huge"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, wrote %d", len(got), len(data))
	}
	if m.Uploads() != 0 {
		t.Fatalf("%d uploads open", m.Uploads())
	}
}
