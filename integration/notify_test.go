//go:build integration

package integration

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Under systemd (Type=notify, "ssecfs mount -f"), READY=1 comes once the
// mount answers, STOPPING=1 when it is asked to stop, and the process
// exits 0 after uploading what waited. The socket is a real datagram
// socket, once by path and once by an abstract name ("@...").
func TestSystemdIsToldWhenTheMountIsReadyAndWhenItStops(t *testing.T) {
	s := loadServer(t, "rgw")
	for _, abstract := range []bool{false, true} {
		name := filepath.Join(t.TempDir(), "notify")
		if abstract {
			name = "@ssecfs-test-notify-" + filepath.Base(t.TempDir())
		}
		t.Run(map[bool]string{false: "path", true: "abstract"}[abstract], func(t *testing.T) {
			msgs := notifySocket(t, name)
			b, mp := s.bucket(t), t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "mount", "-f", "--endpoint", s.endpoint,
				"--key-file", keyFile(t, secret), "--write-back", "1h", b, mp)
			cmd.Env = append(s.env(), "NOTIFY_SOCKET="+name)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-exited
				}
			}()
			next := func(want string) string {
				t.Helper()
				for {
					select {
					case m, ok := <-msgs:
						if !ok {
							t.Fatalf("socket closed before %s", want)
						}
						if strings.Contains(m, want) {
							return m
						}
					case err := <-exited:
						t.Fatalf("ssecfs exited (%v) before %s: %s", err, want, stderr.String())
					case <-ctx.Done():
						t.Fatalf("no %s: %s", want, stderr.String())
					}
				}
			}
			ready := next("READY=1")
			if !isMounted(mp) || !strings.Contains(ready, "STATUS=Mounted s3://"+b) {
				t.Fatalf("READY=1 (%q) before the mount answers", ready)
			}
			if err := os.WriteFile(filepath.Join(mp, "f"), []byte("waits for upload"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if stop := next("STOPPING=1"); !strings.Contains(stop, "Uploading 1 files before exit") {
				t.Fatalf("STOPPING=1 without what waits: %q", stop)
			}
			if err := <-exited; err != nil {
				t.Fatalf("ssecfs mount -f: %v: %s", err, stderr.String())
			}
			if keys := s.keys(t, b); !slices.Contains(keys, "f") {
				t.Fatalf("the waiting file was not uploaded before exit: %v", keys)
			}
		})
	}
}

// notifySocket listens on a datagram socket as systemd does for a
// Type=notify service (name: a path, or "@..." for an abstract name) and
// returns its messages; closed when the test ends.
func notifySocket(t *testing.T, name string) <-chan string {
	t.Helper()
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}
