//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Memory under stress, with default options: a folder of 100,000 objects
// listed and stat'ed, a 10 GiB file written and read, 32 files open at
// once. The daemon's peak RSS (VmHWM) in each stays under the documented
// bound. Minutes long: only with SSECFS_STRESS=1 (`make stress`);
// SSECFS_STRESS_SERVERS=minio,rgw picks the servers (minio by default).

// rssBound is the documented bound of the daemon's memory with default
// options: its caches (160 MiB of blocks, 64 MiB of read-ahead) and 64 MiB
// of upload buffers and bookkeeping, with room for the Go runtime.
const rssBound = 300 << 20

func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func checkPeak(t *testing.T, s *server, m *mount, what string) {
	t.Helper()
	peak := peakRSS(t, m.pid)
	t.Logf("%s, %s: daemon peak RSS %d MiB (bound %d MiB)", s.name, what, peak>>20, rssBound>>20)
	if peak > rssBound {
		t.Errorf("%s: peak RSS %d MiB is over the bound of %d MiB", what, peak>>20, rssBound>>20)
	}
}

func TestMemoryStaysBoundedUnderStress(t *testing.T) {
	if os.Getenv("SSECFS_STRESS") == "" {
		t.Skip("minutes long: SSECFS_STRESS=1 (make stress)")
	}
	servers := strings.Split(envOr("SSECFS_STRESS_SERVERS", "minio"), ",")
	for _, name := range servers {
		t.Run(name, func(t *testing.T) {
			s := loadServer(t, name)
			t.Run("folder of 100,000 objects", func(t *testing.T) { stressFolder(t, s, envInt("SSECFS_STRESS_OBJECTS", 100000)) })
			t.Run("10 GiB file", func(t *testing.T) { stressBigFile(t, s, int64(envInt("SSECFS_STRESS_GIB", 10))<<30) })
			t.Run("32 files open at once", func(t *testing.T) { stressOpenFiles(t, s, 32, 64<<20) })
		})
	}
}

func stressFolder(t *testing.T, s *server, n int) {
	b := s.bucket(t)
	c := s.rawClient(t)
	sse, _ := encrypt.NewSSEC([]byte(secret))
	keys := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				body := []byte(fmt.Sprintf("object %d\n", i))
				_, err := c.PutObject(context.Background(), b, fmt.Sprintf("big/f%06d", i), bytes.NewReader(body), int64(len(body)),
					minio.PutObjectOptions{ServerSideEncryption: sse})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		keys <- i
	}
	close(keys)
	wg.Wait()
	m := s.mount(t, b, "--log-level", "info")
	out, err := exec.Command("ls", "-l", filepath.Join(m.dir, "big")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(out, []byte("\n")); lines != n+1 { // "total" line
		t.Errorf("ls -l shows %d lines, want %d", lines, n+1)
	}
	checkPeak(t, s, m, fmt.Sprintf("ls -l of %d objects", n))
}

func stressBigFile(t *testing.T, s *server, size int64) {
	b := s.bucket(t)
	m := s.mount(t, b, "--log-level", "info")
	src := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{7}), size) }
	want := sha256.New()
	io.Copy(want, src())
	f, err := os.Create(filepath.Join(m.dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	checkPeak(t, s, m, fmt.Sprintf("write of %d GiB", size>>30))
	m.unmount(t)
	r := s.mount(t, b, "--log-level", "info")
	f, err = os.Open(filepath.Join(r.dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	_, err = io.Copy(got, f)
	f.Close()
	if err != nil || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read back: %v, or wrong bytes", err)
	}
	checkPeak(t, s, r, fmt.Sprintf("read of %d GiB", size>>30))
}

func stressOpenFiles(t *testing.T, s *server, n int, each int64) {
	b := s.bucket(t)
	m := s.mount(t, b, "--log-level", "info")
	files := make([]*os.File, n)
	for i := range files {
		f, err := os.Create(filepath.Join(m.dir, fmt.Sprintf("f%02d", i)))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = f
	}
	// Round robin, 1 MiB at a time: every file grows at once.
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < each; off += int64(len(chunk)) {
		for i, f := range files {
			chunk[0], chunk[1] = byte(i), byte(off>>20)
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	checkPeak(t, s, m, fmt.Sprintf("%d files of %d MiB written at once", n, each>>20))
	m.unmount(t)
	r := s.mount(t, b, "--log-level", "info")
	for i := range files {
		f, err := os.Open(filepath.Join(r.dir, fmt.Sprintf("f%02d", i)))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = f
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < each; off += int64(len(buf)) {
		for i, f := range files {
			if _, err := io.ReadFull(f, buf); err != nil || buf[0] != byte(i) || buf[1] != byte(off>>20) {
				t.Fatalf("f%02d at %d: %v, or wrong bytes", i, off, err)
			}
		}
	}
	for _, f := range files {
		f.Close()
	}
	checkPeak(t, s, r, fmt.Sprintf("%d files of %d MiB read at once", n, each>>20))
}
