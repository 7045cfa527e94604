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

	"github.com/ssecfs/ssecfs/integration/faultproxy"
)

// The server unreachable (every connection cut) for longer than the whole
// retry budget of earlier versions (five tries over about 15 s here, with
// --timeout 2s and --retries 1) while 100 files wait for upload: once it
// is back, every file reaches the bucket with no write, fsync, unmount or
// remount; the delay after the return is reported.
func TestUploadsHealAfterAnOutageLongerThanEveryRetryBudget(t *testing.T) {
	const files, outage = 100, 25 * time.Second
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		fp := s.faulty(t, 1)
		m := s.mount(t, b, "--endpoint", fp.URL, "--journal-dir", t.TempDir(), "--write-back", "3s",
			"--timeout", "2s", "--retries", "1", "--upload-backoff-max", "5s")
		for i := range files {
			if err := os.WriteFile(filepath.Join(m.dir, fmt.Sprintf("f%03d", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// The files wait out their window: their uploads meet the outage.
		fp.SetRules(faultproxy.Rule{Action: faultproxy.Reset, Rate: 1})
		time.Sleep(outage) // the outage itself, not synchronisation
		if fp.Injected()["put reset"] < files {
			t.Fatalf("the uploads did not meet the outage: %v", fp.Injected())
		}
		if out, _ := s.run(t, "status", m.dir); !strings.Contains(out, "server unreachable since") ||
			!strings.Contains(out, "tried again within 5s") {
			t.Errorf("status during the outage:\n%s", out)
		}
		fp.SetRules()
		back := time.Now()
		for {
			n := len(s.keys(t, b))
			if n == files {
				break
			}
			if time.Since(back) > 3*time.Minute {
				t.Fatalf("%d of %d files in the bucket 3 min after the server came back", n, files)
			}
		}
		t.Logf("all %d files in the bucket %.1f s after the server came back (%d resets injected)",
			files, time.Since(back).Seconds(), fp.Total())
		if out, _ := s.run(t, "status", m.dir); strings.Contains(out, "unreachable") {
			t.Errorf("status once the server is back:\n%s", out)
		}
	})
}

// Unmounting while the server is gone does not hang: once no upload has
// succeeded for --drain-timeout, ssecfs umount exits 1 listing the files,
// which stay in the journal; the next mount uploads them.
func TestUnmountWithTheServerGoneStopsAfterTheDrainTimeout(t *testing.T) {
	s := loadServer(t, "rgw")
	b := s.bucket(t)
	fp := s.faulty(t, 1)
	journal := t.TempDir()
	m := s.mount(t, b, "--endpoint", fp.URL, "--journal-dir", journal, "--write-back", "1h",
		"--timeout", "2s", "--retries", "1", "--drain-timeout", "5s")
	if err := os.WriteFile(filepath.Join(m.dir, "stranded.txt"), []byte("written offline"), 0o644); err != nil {
		t.Fatal(err)
	}
	fp.SetRules(faultproxy.Rule{Action: faultproxy.Reset, Rate: 1})
	start := time.Now()
	out, err := exec.Command(binary, "umount", m.dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "files could not be uploaded") || !strings.Contains(string(out), "stranded.txt") {
		t.Fatalf("umount with the server gone: %v\n%s", err, out)
	}
	waitExit(t, m.pid)
	m.pid = 0
	t.Logf("umount returned after %.1f s: %s", time.Since(start).Seconds(), strings.TrimSpace(string(out)))
	if !strings.Contains(readLog(m.log), "no upload succeeded for 5s") {
		t.Error("the log does not say why the drain stopped")
	}
	fp.SetRules()
	again := s.mount(t, b, "--endpoint", fp.URL, "--journal-dir", journal)
	again.unmount(t)
	if got := s.object(t, b, "stranded.txt"); string(got) != "written offline" {
		t.Fatalf("stranded.txt after the next mount: %q", got)
	}
}
