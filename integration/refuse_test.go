//go:build integration

package integration

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refuse runs a mount that must fail, and checks that it fails with one
// line holding want, a non-zero exit, and nothing mounted.
func refuse(t *testing.T, s *server, want string, keyMaterial string, args ...string) {
	t.Helper()
	refuseAt(t, s, t.TempDir(), want, keyMaterial, args...)
}

func refuseAt(t *testing.T, s *server, dir, want string, keyMaterial string, args ...string) {
	t.Helper()
	full := append([]string{"mount", "--key-file", keyFile(t, keyMaterial),
		"--log-file", filepath.Join(t.TempDir(), "log")}, args...)
	full = append(full, dir)
	out, code := s.run(t, full...)
	if code == 0 {
		t.Fatalf("mount succeeded; want a refusal with %q", want)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
		t.Errorf("want one line, got %d:\n%s", len(lines), out)
	}
	if !strings.Contains(out, want) {
		t.Errorf("message %q lacks %q", strings.TrimSpace(out), want)
	}
	if strings.Contains(out, secret) {
		t.Errorf("message shows the key")
	}
	if isMounted(dir) {
		t.Errorf("%s is mounted after a refusal", dir)
	}
}

func TestMountRefusesWithOneLine(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		src := filepath.Join(t.TempDir(), "obj")
		os.WriteFile(src, []byte("sealed"), 0o644)
		s.aws(t, append([]string{"s3", "cp", src, "s3://" + b + "/obj"}, sse(secret)...)...)

		t.Run("wrong key", func(t *testing.T) {
			refuse(t, s, "wrong key?", "Wrong-key-wrong-key-wrong-key-32", "--endpoint", s.endpoint, b)
		})
		t.Run("missing bucket", func(t *testing.T) {
			refuse(t, s, "no such bucket", secret, "--endpoint", s.endpoint, b+"-missing")
		})
		t.Run("bad credentials", func(t *testing.T) {
			bad := *s
			bad.sec = "not-the-secret-key-0123456789"
			refuse(t, &bad, "refused the credentials", secret, "--endpoint", s.endpoint, b)
		})
		t.Run("the right key mounts after a wrong one", func(t *testing.T) {
			// A wrong key is refused without writing anything that would
			// lock the right key out.
			refuse(t, s, "wrong key?", "Wrong-key-wrong-key-wrong-key-32", "--endpoint", s.endpoint, b)
			m := s.mount(t, b)
			if got, err := os.ReadFile(filepath.Join(m.dir, "obj")); err != nil || string(got) != "sealed" {
				t.Fatalf("%q %v", got, err)
			}
		})
	})
}

func TestMountRefusesBadEndpoints(t *testing.T) {
	s := loadServer(t, "minio")
	b := s.bucket(t)
	t.Run("key of 31 characters", func(t *testing.T) {
		refuse(t, s, "not a 32-byte key", secret[:31], "--endpoint", s.endpoint, b)
	})
	t.Run("key of 33 characters", func(t *testing.T) {
		refuse(t, s, "not a 32-byte key", secret+"x", "--endpoint", s.endpoint, b)
	})
	t.Run("plain HTTP", func(t *testing.T) {
		refuse(t, s, "plain HTTP", secret, "--endpoint", strings.Replace(s.endpoint, "https:", "http:", 1), b)
	})
	t.Run("nothing listening", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		refuse(t, s, "cannot reach the server", secret, "--endpoint", "https://"+addr, b)
	})
	t.Run("silent endpoint", func(t *testing.T) {
		// Accepts connections and never answers, like a dead proxy.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var held []net.Conn
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
		refuse(t, s, "no answer within 5s", secret, "--timeout", "5s", "--endpoint", "https://"+l.Addr().String(), b)
	})
	t.Run("certificate for another name", func(t *testing.T) {
		cert, err := tls.LoadX509KeyPair(filepath.Join(stateDir, "tls/wrongname.crt"), filepath.Join(stateDir, "tls/wrongname.key"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { c.(*tls.Conn).Handshake(); c.Close() }()
			}
		}()
		refuse(t, s, "certificate does not verify", secret, "--endpoint", "https://"+l.Addr().String(), b)
	})
	t.Run("no key source", func(t *testing.T) {
		out, code := s.run(t, "mount", "--endpoint", s.endpoint, b, t.TempDir())
		if code == 0 || !strings.Contains(out, "no key") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("missing mountpoint", func(t *testing.T) {
		refuseAt(t, s, filepath.Join(t.TempDir(), "nope"), "does not exist", secret, "--endpoint", s.endpoint, b)
	})
}
