//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Crash runs: a copy of many files of mixed sizes into the mount, the
// daemon SIGKILLed at a random point (in the write-back window, during a
// multipart upload, half-way through a file), a new mount on the same
// journal, and then the count of files lost or damaged among those whose
// close (or fsync) had returned 0. SSECFS_CRASH_RUNS and SSECFS_CRASH_FILES
// make it longer (`make crash` runs 20 x 1,000 on each server).

// crashFile is one file of the copy.
type crashFile struct {
	name  string
	seed  int64
	size  int
	fsync bool
}

func (f crashFile) data() []byte {
	b := make([]byte, f.size)
	rand.New(rand.NewSource(f.seed)).Read(b)
	return b
}

// crashPlan draws the files of one run: mostly small, some of several
// blocks, a few large enough to stream as multipart uploads.
func crashPlan(rng *rand.Rand, n int) []crashFile {
	files := make([]crashFile, n)
	for i := range files {
		size := 1 + rng.Intn(64<<10)
		switch r := rng.Intn(1000); {
		case r < 4:
			size = 17<<20 + rng.Intn(16<<20)
		case r < 20:
			size = 1<<20 + rng.Intn(8<<20)
		case r < 120:
			size = 64<<10 + rng.Intn(1<<20)
		}
		files[i] = crashFile{name: fmt.Sprintf("d%02d/f%04d", i/50, i), seed: rng.Int63(), size: size, fsync: rng.Intn(4) == 0}
	}
	return files
}

// crashResult is the count of one run.
type crashResult struct {
	acked, lost, corrupted, partial, leftUploads int
}

func TestCrashRunsLoseNothing(t *testing.T) {
	runs := envInt("SSECFS_CRASH_RUNS", 2)
	nfiles := envInt("SSECFS_CRASH_FILES", 150)
	eachServer(t, func(t *testing.T, s *server) {
		var total crashResult
		for run := 1; run <= runs; run++ {
			r := crashRun(t, s, int64(run), nfiles)
			total.acked += r.acked
			total.lost += r.lost
			total.corrupted += r.corrupted
			total.partial += r.partial
			total.leftUploads += r.leftUploads
		}
		t.Logf("crash runs on %s: %d runs of %d files, %d files acknowledged, lost %d, corrupted %d, partial objects %d, multipart uploads left %d",
			s.name, runs, nfiles, total.acked, total.lost, total.corrupted, total.partial, total.leftUploads)
	})
}

func crashRun(t *testing.T, s *server, seed int64, nfiles int) crashResult {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	files := crashPlan(rng, nfiles)
	b := s.bucket(t)
	journal := t.TempDir()
	// Half the runs upload at close, half keep files in the write-back
	// window: the kill finds files in both states.
	window := []string{"5s", "0s"}[seed%2]
	m := s.mount(t, b, "--journal-dir", journal, "--write-back", window, "--log-level", "info")

	// The kill lands in file killAt, after killChunk of its MiB chunks
	// (after its close when killChunk is past its end).
	killAt := rng.Intn(len(files))
	if rng.Intn(3) == 0 { // one run in three: in or right after a large file
		for i := killAt; i < len(files); i++ {
			if files[i].size > 16<<20 {
				killAt = i
				break
			}
		}
	}
	killChunk := rng.Intn(files[killAt].size>>20 + 2)
	var acked []crashFile
	killed := false
	for i, f := range files {
		err := writeCrashFile(filepath.Join(m.dir, f.name), f, func(chunk int) {
			if i == killAt && chunk == killChunk && !killed {
				syscall.Kill(m.pid, syscall.SIGKILL)
				killed = true
			}
		})
		if err != nil {
			break // the daemon is gone: this file was not acknowledged
		}
		acked = append(acked, f)
		if i == killAt && !killed {
			syscall.Kill(m.pid, syscall.SIGKILL)
			killed = true
		}
		if killed {
			break
		}
	}
	waitExit(t, m.pid)
	m.pid = 0
	exec.Command("umount", "-l", m.dir).Run() // the dead daemon's mount

	t.Logf("run %d (write-back %s): killed in file %d of %d (%d bytes) before its chunk %d; %d files acknowledged",
		seed, window, killAt, len(files), files[killAt].size, killChunk, len(acked))
	again := s.mount(t, b, "--journal-dir", journal, "--log-level", "info")
	again.unmount(t) // drains: every resumed upload is done when it returns
	return checkCrashRun(t, s, b, files, acked, window)
}

// writeCrashFile writes f in 1 MiB chunks, calling at(i) before chunk i
// and at(chunks) before the close.
func writeCrashFile(p string, f crashFile, at func(chunk int)) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	fh, err := os.Create(p)
	if err != nil {
		return err
	}
	data := f.data()
	chunk := 0
	for off := 0; off < len(data); off += 1 << 20 {
		at(chunk)
		chunk++
		if _, err := fh.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			fh.Close()
			return err
		}
	}
	at(chunk)
	if f.fsync {
		if err := fh.Sync(); err != nil {
			fh.Close()
			return err
		}
	}
	return fh.Close()
}

// checkCrashRun reads the bucket with the key: every acknowledged file
// whole, every object a whole file of the copy, no multipart upload left.
func checkCrashRun(t *testing.T, s *server, bucket string, files, acked []crashFile, window string) crashResult {
	t.Helper()
	ctx := context.Background()
	c := s.rawClient(t)
	sse, err := encrypt.NewSSEC([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][32]byte{}
	for _, f := range files {
		want[f.name] = sha256.Sum256(f.data())
	}
	got := map[string][32]byte{}
	r := crashResult{acked: len(acked)}
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.Key[len(o.Key)-1] == '/' {
			continue // a folder marker
		}
		obj, err := c.GetObject(ctx, bucket, o.Key, minio.GetObjectOptions{ServerSideEncryption: sse})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, err = io.Copy(&buf, obj)
		obj.Close()
		if err != nil {
			t.Errorf("%s: %v", o.Key, err)
			continue
		}
		got[o.Key] = sha256.Sum256(buf.Bytes())
		if w, ok := want[o.Key]; !ok || w != got[o.Key] {
			r.partial++
			t.Errorf("window %s: %s holds %d bytes that are no whole file of the copy", window, o.Key, buf.Len())
		}
	}
	for _, f := range acked {
		h, ok := got[f.name]
		switch {
		case !ok:
			r.lost++
			t.Errorf("window %s: %s (%d bytes, fsync %v) was acknowledged and is not in the bucket", window, f.name, f.size, f.fsync)
		case h != want[f.name]:
			r.corrupted++
		}
	}
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil && !errors.Is(u.Err, io.EOF) {
			t.Fatal(u.Err)
		}
		r.leftUploads++
		t.Errorf("multipart upload of %s left in the bucket", u.Key)
	}
	return r
}
