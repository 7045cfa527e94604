//go:build integration

package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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

// Offline (the network drops everything, nothing is reset): a folder
// listed before lists, a file read before reads, new files are written
// into the journal and read back, fsync of one fails with EIO within
// seconds and keeps it queued, mkdir fails with EIO and says why in the
// log, status says offline; once the server is back every waiting file
// reaches the bucket with no user action, and mkdir works again.
func TestOfflineTheMountAnswersWhatItKnowsAndWritesWait(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		fp := s.faulty(t, 1)
		// Every listing and stat is out of date at once (--meta-ttl 1ms):
		// offline, only the offline rule can answer them.
		m := s.mount(t, b, "--endpoint", fp.URL, "--journal-dir", t.TempDir(), "--write-back", "1s",
			"--timeout", "2s", "--retries", "1", "--upload-backoff-max", "2s", "--meta-ttl", "1ms")
		t.Cleanup(func() { fp.Blackhole(false) }) // before the unmount's drain
		p := func(name string) string { return filepath.Join(m.dir, name) }
		if err := os.Mkdir(p("docs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p("docs/before.txt"), []byte("written online"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, code := s.run(t, "sync", m.dir); code != 0 {
			t.Fatalf("sync: %s", out)
		}
		if got, err := os.ReadFile(p("docs/before.txt")); err != nil || string(got) != "written online" {
			t.Fatalf("read online: %q %v", got, err)
		}

		fp.Blackhole(true)
		start := time.Now()
		// This listing is the call that finds the server gone, after its
		// own attempts.
		names, err := os.ReadDir(p("docs"))
		if err != nil || len(names) != 1 || names[0].Name() != "before.txt" {
			t.Fatalf("offline listing of a folder listed before: %v %v", names, err)
		}
		t.Logf("first listing offline: %.1f s (the request that found the server gone)", time.Since(start).Seconds())
		start = time.Now()
		if got, err := os.ReadFile(p("docs/before.txt")); err != nil || string(got) != "written online" {
			t.Fatalf("offline read of a file read before: %q %v", got, err)
		}
		t.Logf("offline stat, open and read of a cached file: %.1f s", time.Since(start).Seconds())
		if err := os.WriteFile(p("docs/offline.txt"), []byte("written offline"), 0o644); err != nil {
			t.Fatalf("offline write into a listed folder: %v", err)
		}
		if got, err := os.ReadFile(p("docs/offline.txt")); err != nil || string(got) != "written offline" {
			t.Fatalf("offline read of a file in the journal: %q %v", got, err)
		}
		f, err := os.Create(p("docs/synced.txt"))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("fsync'd offline")
		start = time.Now()
		err = f.Sync()
		f.Close()
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("offline fsync: %v, want EIO", err)
		}
		t.Logf("offline fsync failed with EIO after %.1f s", time.Since(start).Seconds())
		start = time.Now()
		if err := os.Mkdir(p("docs/sub"), 0o755); !errors.Is(err, syscall.EIO) {
			t.Fatalf("offline mkdir: %v, want EIO", err)
		}
		t.Logf("offline mkdir failed with EIO after %.1f s", time.Since(start).Seconds())
		if log := readLog(m.log); !strings.Contains(log, "mkdir failed: the server cannot be reached") ||
			!strings.Contains(log, "offline since") {
			t.Error("the log does not say why mkdir failed")
		}
		if out, _ := s.run(t, "status", m.dir); !strings.Contains(out, "offline since") || !strings.Contains(out, "synced.txt") {
			t.Errorf("status offline:\n%s", out)
		}

		fp.Blackhole(false)
		back := time.Now()
		for !slices.Contains(s.keys(t, b), "docs/synced.txt") || !slices.Contains(s.keys(t, b), "docs/offline.txt") {
			if time.Since(back) > 2*time.Minute {
				t.Fatalf("files written offline not in the bucket 2 min after the server came back: %v", s.keys(t, b))
			}
		}
		t.Logf("files written offline in the bucket %.1f s after the server came back", time.Since(back).Seconds())
		if got := s.object(t, b, "docs/synced.txt"); string(got) != "fsync'd offline" {
			t.Fatalf("synced.txt: %q", got)
		}
		if err := os.Mkdir(p("docs/sub"), 0o755); err != nil {
			t.Fatalf("mkdir once the server is back: %v", err)
		}
		if out, _ := s.run(t, "status", m.dir); strings.Contains(out, "offline") {
			t.Errorf("status once the server is back:\n%s", out)
		}
	})
}

// A laptop that sleeps: the daemon stopped for 20 s (SIGSTOP) while the
// network drops every packet, and the connections it held dead when it
// runs again. It notices the pause, drops them and goes on without a
// remount: the sync that was running finishes, and ls, a read of a file
// never read and a write with fsync work. The times are reported.
func TestAMountGoesOnAfterASuspend(t *testing.T) {
	s := loadServer(t, "rgw")
	b := s.bucket(t)
	s.putObject(t, b, "docs/unread.bin", []byte("never read before the pause"))
	fp := s.faulty(t, 1)
	m := s.mount(t, b, "--endpoint", fp.URL, "--journal-dir", t.TempDir(), "--write-back", "1h",
		"--timeout", "10s", "--meta-ttl", "1ms")
	t.Cleanup(func() { fp.Blackhole(false); syscall.Kill(m.pid, syscall.SIGCONT) })
	p := func(name string) string { return filepath.Join(m.dir, name) }
	for i := range 20 {
		if err := os.WriteFile(p(fmt.Sprintf("docs/f%02d", i)), random(t, 256<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	syncDone := make(chan string, 1)
	go func() {
		out, code := s.run(t, "sync", m.dir)
		syncDone <- fmt.Sprintf("exit %d: %s", code, out)
	}()

	fp.Blackhole(true)
	if err := syscall.Kill(m.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Second) // the suspend itself, not synchronisation
	fp.Blackhole(false)
	woke := time.Now()
	if err := syscall.Kill(m.pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	if out := <-syncDone; !strings.HasPrefix(out, "exit 0") {
		t.Fatalf("the sync running across the pause: %s", out)
	}
	t.Logf("the sync running across the pause finished %.1f s after the wake-up", time.Since(woke).Seconds())
	start := time.Now()
	names, err := os.ReadDir(p("docs"))
	if err != nil || len(names) != 21 {
		t.Fatalf("ls after the pause: %d names, %v", len(names), err)
	}
	if got, err := os.ReadFile(p("docs/unread.bin")); err != nil || string(got) != "never read before the pause" {
		t.Fatalf("read after the pause: %q %v", got, err)
	}
	f, err := os.Create(p("docs/after.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("written after the pause")
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync after the pause: %v", err)
	}
	f.Close()
	t.Logf("ls, a read and a write with fsync after the pause: %.1f s", time.Since(start).Seconds())
	if !strings.Contains(readLog(m.log), "woke from a pause") {
		t.Error("the daemon did not notice the pause")
	}
	if got := s.object(t, b, "docs/after.txt"); string(got) != "written after the pause" {
		t.Fatalf("after.txt: %q", got)
	}
}
