//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/integration/faultproxy"
)

// duOf is a folder's disk use: the blocks its files hold.
func duOf(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // removed meanwhile
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// A copy bigger than the journal, over an uplink slower than the disk:
// 256 MiB of 8 MiB files through a 16 MiB journal and a link capped at
// 20 MB/s. cp -r and rsync -a succeed (the writers wait for the uploads),
// the journal's disk use, sampled every 100 ms, never exceeds its cap, and
// every object is the source byte for byte.
func TestACopyBiggerThanTheJournalWaitsForTheUplink(t *testing.T) {
	const files, size, journalCap = 32, 8 << 20, 16 << 20
	src := t.TempDir()
	want := map[string][]byte{}
	for i := range files {
		name := fmt.Sprintf("f%02d.bin", i)
		want[name] = random(t, size)
		if err := os.WriteFile(filepath.Join(src, name), want[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eachServer(t, func(t *testing.T, s *server) {
		u, err := url.Parse(s.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		link, err := faultproxy.NewLink(u.Host, faultproxy.LinkOptions{Up: 20_000_000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(link.Close)
		for _, tool := range []struct {
			name string
			args func(dst string) []string
		}{
			{"cp", func(dst string) []string { return []string{"cp", "-r", src, dst} }},
			{"rsync", func(dst string) []string { return []string{"rsync", "-a", src + "/", dst + "/"} }},
		} {
			t.Run(tool.name, func(t *testing.T) {
				b := s.bucket(t)
				journal := t.TempDir()
				m := s.mount(t, b, "--endpoint", "https://"+link.Addr, "--journal-dir", journal,
					"--journal-size", fmt.Sprint(journalCap))
				var peak atomic.Int64
				stop, stopped := make(chan struct{}), make(chan struct{})
				go func() {
					defer close(stopped)
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for {
						peak.Store(max(peak.Load(), duOf(journal)))
						select {
						case <-stop:
							return
						case <-tick.C:
						}
					}
				}()
				start := time.Now()
				out, err := exec.Command(tool.args(filepath.Join(m.dir, "copy"))[0], tool.args(filepath.Join(m.dir, "copy"))[1:]...).CombinedOutput()
				copied := time.Since(start)
				m.unmount(t)
				close(stop)
				<-stopped
				if err != nil {
					t.Fatalf("%s: %v\n%s", tool.name, err, out)
				}
				t.Logf("%s of %d MiB through a %d MiB journal at 20 MB/s: %.1f s to return, %.1f s with the unmount; journal peak %d KiB",
					tool.name, files*size>>20, journalCap>>20, copied.Seconds(), time.Since(start).Seconds(), peak.Load()>>10)
				if peak.Load() > journalCap {
					t.Errorf("the journal took %d bytes, over its cap of %d", peak.Load(), journalCap)
				}
				got := t.TempDir()
				s.aws(t, append([]string{"s3", "cp", "--recursive", "s3://" + b + "/copy/", got}, sse(secret)...)...)
				for name, data := range want {
					if g, err := os.ReadFile(filepath.Join(got, name)); err != nil || !bytes.Equal(g, data) {
						t.Errorf("%s in the bucket: %v, or its bytes differ", name, err)
					}
				}
			})
		}
	})
}
