//go:build integration

package integration

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A server restart in the middle of a 1 GiB write and of a 1 GiB read: the
// transfer completes after retries or fails with an error the program
// sees, never with wrong bytes, and the mount works afterwards.

const restartSize = 1 << 30

// restartServerErr restarts s with the project's own scripts: MinIO whole,
// the RADOS gateway alone (mon and OSD stay, as in a real cluster).
func restartServerErr(s *server) error {
	var cmds [][]string
	switch s.name {
	case "minio":
		cmds = [][]string{{"servers/minio.sh", "stop"}, {"servers/minio.sh", "start"}}
	case "rgw":
		cmds = [][]string{{"servers/rgw.sh", "restart-gateway"}}
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %v\n%s", c, err, out)
		}
	}
	return nil
}

// stream is the deterministic content of the test file.
func stream(seed uint64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), restartSize)
}

// halfway passes bytes on and calls at once, after n of them.
// restartAsync restarts s while the transfer goes on; wait waits for it.
func restartAsync(t *testing.T, s *server) (start func(), wait func()) {
	done := make(chan struct{})
	var err error
	start = func() {
		go func() {
			defer close(done)
			err = restartServerErr(s)
		}()
	}
	wait = func() {
		<-done
		if err != nil {
			t.Fatal(err)
		}
	}
	return start, wait
}

type halfway struct {
	r    io.Reader
	n    int64
	at   func()
	done bool
}

func (h *halfway) Read(p []byte) (int, error) {
	if !h.done && h.n <= 0 {
		h.done = true
		h.at()
	}
	k, err := h.r.Read(p)
	h.n -= int64(k)
	return k, err
}

func TestServerRestartMidTransfer(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--write-back", "0s")
		p := filepath.Join(m.dir, "big")
		want := sha256.New()
		io.Copy(want, stream(1))

		// The write: the server goes away a quarter of the way in.
		err := func() error {
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			start, wait := restartAsync(t, s)
			defer wait()
			src := &halfway{r: stream(1), n: restartSize / 4, at: start}
			if _, err := io.Copy(f, src); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
		if err != nil {
			t.Logf("%s: the write failed, and said so: %v", s.name, err)
		} else {
			t.Logf("%s: the write completed across the restart", s.name)
		}
		t.Logf("%s: the daemon logged %d retries and errors during the write", s.name, problems(m.log))
		checkStillWorks(t, m.dir)
		if err != nil {
			return // nothing to read back
		}

		// The read, through a fresh mount (nothing cached): the server
		// goes away a quarter of the way in.
		m.unmount(t)
		r := s.mount(t, b)
		f, err := os.Open(filepath.Join(r.dir, "big"))
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.New()
		start, wait := restartAsync(t, s)
		_, rerr := io.Copy(got, &halfway{r: f, n: restartSize / 4, at: start})
		f.Close()
		wait()
		switch {
		case rerr != nil:
			t.Logf("%s: the read failed, and said so: %v", s.name, rerr)
		case string(got.Sum(nil)) != string(want.Sum(nil)):
			t.Fatalf("%s: the read completed with wrong bytes", s.name)
		default:
			t.Logf("%s: the read completed across the restart, bytes exact", s.name)
		}
		t.Logf("%s: the daemon logged %d retries and errors during the read", s.name, problems(r.log))
		checkStillWorks(t, r.dir)
		// Whatever the read did, the object is whole.
		f, err = os.Open(filepath.Join(r.dir, "big"))
		if err != nil {
			t.Fatal(err)
		}
		again := sha256.New()
		_, err = io.Copy(again, f)
		f.Close()
		if err != nil || string(again.Sum(nil)) != string(want.Sum(nil)) {
			t.Fatalf("reading the file after the restart: %v, or wrong bytes", err)
		}
	})
}

// checkStillWorks writes and reads back a small file.
func checkStillWorks(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "after-restart")
	if err := os.WriteFile(p, []byte("still here"), 0o644); err != nil {
		t.Fatalf("the mount no longer writes: %v", err)
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "still here" {
		t.Fatalf("the mount no longer reads: %q %v", got, err)
	}
}

// problems counts the warnings and errors in a daemon log.
func problems(log string) int { return len(problemLines(readLog(log))) }
