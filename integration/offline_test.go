//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
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
	})
}
