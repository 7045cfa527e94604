//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/integration/faultproxy"
	"github.com/ssecfs/ssecfs/internal/ptytest"
)

// heldPuts is a transport that holds every upload until released.
type heldPuts struct {
	next    http.RoundTripper
	release chan struct{}
}

func (h heldPuts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		<-h.release
	}
	return h.next.RoundTrip(r)
}

// `ssecfs umount` on a terminal shows one line, rewritten in place, with
// what is left to upload while it drains, then a summary; into a pipe,
// plain lines (the first after a second) and the summary.
func TestUmountShowsTheDrainLive(t *testing.T) {
	t.Run("terminal", func(t *testing.T) { umountShowsTheDrain(t, true) })
	t.Run("pipe", func(t *testing.T) { umountShowsTheDrain(t, false) })
}

func umountShowsTheDrain(t *testing.T, terminal bool) {
	s := loadServer(t, "rgw")
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	url, _ := s.tlsProxy(t, func(rt http.RoundTripper) http.RoundTripper { return heldPuts{rt, release} })
	b := s.bucket(t)
	m := s.mount(t, b, "--endpoint", url, "--write-back", "1h")
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(filepath.Join(m.dir, fmt.Sprintf("f%d", i)), []byte("some bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var master, tty *os.File
	var err error
	if terminal {
		master, tty = ptytest.Open(t)
	} else if master, tty, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "umount", m.dir)
	cmd.Env = s.env()
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds it now: the master sees EOF when it exits
	var mu sync.Mutex
	var screen strings.Builder
	seen := make(chan struct{}, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			seen <- struct{}{}
			if err != nil {
				return
			}
		}
	}()
	live := "\r\x1b[Kuploading before unmount: 3 files (30 B) left"
	if !terminal {
		live = "\nuploading before unmount: 3 files (30 B) left"
	}
	for shown := false; !shown; {
		select {
		case <-seen:
		case <-ctx.Done():
			t.Fatalf("no live line while the uploads are held: %q", screen.String())
		}
		mu.Lock()
		shown = strings.Contains("\n"+screen.String(), live)
		mu.Unlock()
	}
	free()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("umount: %v: %q", err, screen.String())
	}
	m.pid = 0 // unmounted and drained: the cleanup has nothing to do
	if mu.Lock(); !terminal && strings.Contains(screen.String(), "\x1b") {
		t.Errorf("terminal codes into a pipe: %q", screen.String())
	}
	mu.Unlock()
	for !strings.Contains(func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }(), "unmounted; uploaded 3 files (30 B) in ") {
		select {
		case <-seen:
		case <-ctx.Done():
			t.Fatalf("no summary: %q", screen.String())
		}
	}
	if keys := s.keys(t, b); len(keys) != 3 {
		t.Fatalf("after umount: %v", keys)
	}
}

// --on-failure runs its command when an upload fails for good, with the
// file's path and the reason in its environment and neither the key nor
// the credentials.
func TestOnFailureRunsTheCommandWhenAnUploadFailsForGood(t *testing.T) {
	s := loadServer(t, "rgw")
	fp := s.faulty(t, 1)
	fp.SetRules(faultproxy.Rule{Kinds: []faultproxy.Kind{faultproxy.Put, faultproxy.Create},
		Action: faultproxy.Status, Status: 403, Code: "AccessDenied", Rate: 1})
	// The command writes into a FIFO: reading it waits for the command.
	fifo := filepath.Join(t.TempDir(), "env")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	m := s.mount(t, s.bucket(t), "--endpoint", fp.URL, "--journal-dir", t.TempDir(), "--write-back", "1s",
		"--upload-backoff-max", "1s", "--on-failure", "env > "+fifo)
	if err := os.WriteFile(filepath.Join(m.dir, "report.pdf"), []byte("refused"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := readFIFO(t, fifo, m.log)
	for _, want := range []string{"SSECFS_EVENT=upload_failed", "SSECFS_PATH=" + filepath.Join(m.dir, "report.pdf"),
		"SSECFS_MOUNTPOINT=" + m.dir, "SSECFS_FOLDED=0"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("no %s in the command's environment:\n%s", want, env)
		}
	}
	if !strings.Contains(env, "SSECFS_REASON=") || !strings.Contains(env, "access denied (403 AccessDenied)") {
		t.Errorf("the reason is not given:\n%s", env)
	}
	if strings.Contains(env, secret) || strings.Contains(env, s.sec) {
		t.Fatal("the command got the key or the secret access key")
	}
	fp.SetRules() // the bucket takes it again: the unmount uploads it
}

// readFIFO waits for a writer of fifo (an --on-failure command) and
// returns what it wrote.
func readFIFO(t *testing.T, fifo, log string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	select {
	case env := <-got:
		return env
	case <-time.After(3 * time.Minute): // only catches a command never run
		os.WriteFile(fifo, nil, 0) // ends the reader
		t.Fatalf("--on-failure never ran; log:\n%s", readLog(log))
	}
	return ""
}

// A mount offline for longer than --offline-alert runs --on-failure once,
// saying since when.
func TestOnFailureRunsWhenTheMountStaysOffline(t *testing.T) {
	s := loadServer(t, "rgw")
	fp := s.faulty(t, 1)
	fifo := filepath.Join(t.TempDir(), "env")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	m := s.mount(t, s.bucket(t), "--endpoint", fp.URL, "--timeout", "2s", "--retries", "1", "--meta-ttl", "1ms",
		"--offline-alert", "1s", "--on-failure", "env > "+fifo)
	t.Cleanup(func() { fp.Blackhole(false) })
	if err := os.Mkdir(filepath.Join(m.dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	fp.Blackhole(true)
	os.ReadDir(filepath.Join(m.dir, "docs")) // finds the server gone
	env := readFIFO(t, fifo, m.log)
	if !strings.Contains(env, "SSECFS_EVENT=offline\n") || !strings.Contains(env, "SSECFS_REASON=the server has not answered since ") {
		t.Fatalf("the command's environment:\n%s", env)
	}
}
