//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A long outage in the middle of a copy into an existing folder (make soak:
// SSECFS_SOAK_OUTAGE=10m; skipped otherwise): the network drops every
// packet for the whole outage, half the files are copied before it and
// half during it (no folder can be made offline), with the mount's default
// timeouts. The copy finishes with exit 0, and every file is in the
// bucket, byte for byte, within 30 s of the return, with no user action.
func TestSoakAnOutageDuringACopyLosesNothing(t *testing.T) {
	outage, err := time.ParseDuration(os.Getenv("SSECFS_SOAK_OUTAGE"))
	if err != nil {
		t.Skip("SSECFS_SOAK_OUTAGE is not set (make soak sets it)")
	}
	const files = 500
	src := t.TempDir()
	want := map[string][]byte{}
	var names [2][]string // the files copied before the outage, and during it
	for i := range files {
		name := fmt.Sprintf("f%03d.bin", i)
		want[name] = random(t, 16<<10+i)
		os.WriteFile(filepath.Join(src, name), want[name], 0o644)
		names[i*2/files] = append(names[i*2/files], filepath.Join(src, name))
	}
	eachServer(t, func(t *testing.T, s *server) {
		t.Parallel() // the outage is mostly waiting
		b := s.bucket(t)
		fp := s.faulty(t, 1)
		m := s.mount(t, b, "--endpoint", fp.URL, "--journal-dir", t.TempDir())
		t.Cleanup(func() { fp.Blackhole(false) }) // before the unmount's drain
		dst := filepath.Join(m.dir, "backup")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		cp := func(half int) {
			start := time.Now()
			if out, err := exec.Command("cp", append([]string{"-t", dst}, names[half]...)...).CombinedOutput(); err != nil {
				t.Fatalf("cp of half %d: %v\n%s", half, err, out)
			}
			t.Logf("cp of half %d (%d files): exit 0 in %.1f s", half, files/2, time.Since(start).Seconds())
		}
		cp(0)
		fp.Blackhole(true)
		began := time.Now()
		cp(1)
		out, _ := s.run(t, "status", m.dir)
		t.Logf("status during the outage:\n%s", out)
		time.Sleep(outage - time.Since(began)) // the outage itself, not synchronisation
		if out, _ := s.run(t, "status", m.dir); !strings.Contains(out, "offline since") {
			t.Errorf("status at the end of the outage:\n%s", out)
		}
		fp.Blackhole(false)
		back := time.Now()
		for {
			n := len(s.keys(t, b))
			if n >= files+1 { // the files and the folder's marker
				break
			}
			if time.Since(back) > 30*time.Second {
				t.Fatalf("%d of %d files in the bucket 30 s after the server came back", n-1, files)
			}
		}
		t.Logf("all %d files in the bucket %.1f s after a %s outage", files, time.Since(back).Seconds(), outage)
		for name, data := range want {
			if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(got) != string(data) {
				t.Fatalf("%s reads back wrong: %v", name, err)
			}
		}
		m.unmount(t)
		down := t.TempDir()
		s.aws(t, append([]string{"s3", "cp", "--recursive", "--quiet", "s3://" + b + "/backup", down}, sse(secret)...)...)
		for _, d := range diffFiles(down, src) {
			t.Errorf("through aws s3 cp: %s", d)
		}
	})
}
