//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/integration/faultproxy"
)

// The bad inputs of docs/SEMANTICS.md ("Bad input") that no other test
// covers through the real binary.

// refusedMount runs "ssecfs mount ARGS MOUNTPOINT" with env and checks that
// it exits with code, printing one line that holds want and not the key,
// and that it mounted nothing.
func refusedMount(t *testing.T, env []string, code int, want, mountpoint string, args ...string) string {
	t.Helper()
	before := isMounted(mountpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append(append([]string{"mount"}, args...), mountpoint)...)
	cmd.Env = env
	outb, err := cmd.CombinedOutput()
	out := strings.TrimSpace(string(outb))
	if ctx.Err() != nil {
		t.Fatalf("ssecfs mount hung")
	}
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if got != code {
		t.Errorf("exit code %d, want %d (output %q)", got, code, out)
	}
	if lines := strings.Split(out, "\n"); len(lines) != 1 {
		t.Errorf("want one line, got %d:\n%s", len(lines), out)
	}
	if !strings.Contains(out, want) {
		t.Errorf("message %q lacks %q", out, want)
	}
	if strings.Contains(out, secret) {
		t.Error("the message shows the key")
	}
	if isMounted(mountpoint) != before {
		t.Errorf("%s: mount state changed by a refused mount", mountpoint)
	}
	return out
}

// keyed is the start of a mount command line with s's endpoint, the key
// in a private file, and a log file.
func (s *server) keyed(t *testing.T) []string {
	return []string{"--endpoint", s.endpoint, "--key-file", keyFile(t, secret),
		"--log-file", filepath.Join(t.TempDir(), "log")}
}

// eventually polls for a state that no event announces (a log line, a
// mount table change), giving up after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// putObject uploads data under key with the key, through aws.
func (s *server) putObject(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "obj")
	os.WriteFile(src, data, 0o644)
	s.aws(t, append([]string{"s3", "cp", src, "s3://" + bucket + "/" + key}, sse(secret)...)...)
}

// object downloads key with the key, through aws.
func (s *server) object(t *testing.T, bucket, key string) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "obj")
	s.aws(t, append([]string{"s3", "cp", "s3://" + bucket + "/" + key, dst}, sse(secret)...)...)
	data, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestMistypedKeysAndOptionsAreRefusedInOneLine(t *testing.T) {
	s := loadServer(t, "minio")
	b := s.bucket(t)
	dir := t.TempDir()
	base := []string{"--endpoint", s.endpoint, "--log-file", filepath.Join(t.TempDir(), "log")}
	empty := filepath.Join(t.TempDir(), "empty-key")
	os.WriteFile(empty, nil, 0o600)
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	for _, tc := range []struct {
		name, want string
		code       int
		mountpoint string
		env        []string
		args       []string
	}{
		{"key file of 0 bytes", "not a 32-byte key: got 0 bytes", 1, dir, nil,
			[]string{"--key-file", empty, b}},
		{"key variable holding nothing", "key variable SSECFS_TEST_KEY: not a 32-byte key: got 0 bytes", 1, dir,
			[]string{"SSECFS_TEST_KEY="}, []string{"--key-env", "SSECFS_TEST_KEY", b}},
		{"key variable not set", "key variable SSECFS_TEST_UNSET is not set", 1, dir, nil,
			[]string{"--key-env", "SSECFS_TEST_UNSET", b}},
		{"key file missing", "no such file or directory", 1, dir, nil,
			[]string{"--key-file", filepath.Join(dir, "nope"), b}},
		{"two key sources", "give only one of --barbican-secret, --key-file, --key-command and --key-env", 2, dir,
			[]string{"SSECFS_TEST_KEY=" + secret}, []string{"--key-file", keyFile(t, secret), "--key-env", "SSECFS_TEST_KEY", b}},
		{"empty secret href", "no key: give --barbican-secret HREF", 2, dir, nil,
			[]string{"--barbican-secret", "", b}},
		{"secret href of another service", "is not a Barbican secret href", 1, dir, nil,
			[]string{"--barbican-secret", "https://kms.example.net/v1/orders/0d5fb6a4-1b2c-4d5e-8f90-123456789abc", b}},
		{"secret name instead of href", "is neither a secret href nor a secret UUID", 1, dir, nil,
			[]string{"--barbican-secret", "objectSecret", b}},
		{"mountpoint is a file", "is not a directory", 1, notDir, nil,
			[]string{"--key-file", keyFile(t, secret), b}},
		{"no bucket", "no bucket in", 2, dir, nil,
			[]string{"--key-file", keyFile(t, secret), "s3://"}},
		{"size that is not one", `--cache-size 12Q: "12Q" is not a size like 256M`, 2, dir, nil,
			[]string{"--key-file", keyFile(t, secret), "--cache-size", "12Q", b}},
		{"duration without a unit", "--timeout 5: a duration like 30s or 2m", 2, dir, nil,
			[]string{"--key-file", keyFile(t, secret), "--timeout", "5", b}},
		{"owner that is no user", "--uid no-such-user-here: no such user (a user name or a number)", 2, dir, nil,
			[]string{"--key-file", keyFile(t, secret), "--uid", "no-such-user-here", b}},
		{"AWS profile that does not exist", `AWS profile "no-such-profile" not found`, 1, dir, nil,
			[]string{"--key-file", keyFile(t, secret), "--profile", "no-such-profile", b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedMount(t, append(s.env(), tc.env...), tc.code, tc.want, tc.mountpoint, append(base, tc.args...)...)
		})
	}
}

func TestWorldReadableKeyFileMountsWithAWarning(t *testing.T) {
	s := loadServer(t, "minio")
	b := s.bucket(t)
	s.putObject(t, b, "obj", []byte("sealed"))
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte(secret+"\n"), 0o644)
	os.Chmod(key, 0o644) // whatever the umask
	m := &mount{dir: t.TempDir(), log: filepath.Join(t.TempDir(), "ssecfs.log")}
	out, code := s.run(t, "mount", "--endpoint", s.endpoint, "--key-file", key, "--log-file", m.log, b, m.dir)
	if code != 0 {
		t.Fatalf("mount (%d): %s", code, out)
	}
	m.pid = pidFromLog(t, m.log)
	t.Cleanup(func() { m.unmount(t) })
	want := "ssecfs: warning: key file " + key + " is readable by others (mode 0644); chmod 600 it"
	if strings.TrimSpace(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if got, err := os.ReadFile(filepath.Join(m.dir, "obj")); err != nil || string(got) != "sealed" {
		t.Fatalf("obj: %q %v", got, err)
	}
}

func TestNonEmptyMountpointIsRefusedUnlessNonempty(t *testing.T) {
	s := loadServer(t, "minio")
	b := s.bucket(t)
	s.putObject(t, b, "obj", []byte("sealed"))
	dir := t.TempDir()
	mine := filepath.Join(dir, "mine.txt")
	os.WriteFile(mine, []byte("local file"), 0o644)
	refusedMount(t, s.env(), 1, "is not empty; its files would be hidden under the mount (give --nonempty", dir,
		append(s.keyed(t), b)...)
	if got, err := os.ReadFile(mine); err != nil || string(got) != "local file" {
		t.Fatalf("the local file after a refusal: %q %v", got, err)
	}
	out, code := s.run(t, append(append([]string{"mount"}, s.keyed(t)...), "--nonempty", b, dir)...)
	if code != 0 {
		t.Fatalf("mount --nonempty (%d): %s", code, out)
	}
	t.Cleanup(func() { exec.Command(binary, "umount", dir).Run() })
	if got, err := os.ReadFile(filepath.Join(dir, "obj")); err != nil || string(got) != "sealed" {
		t.Fatalf("obj through the mount: %q %v", got, err)
	}
	if _, err := os.Stat(mine); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the local file shows through the mount: %v", err)
	}
	if out, err := exec.Command(binary, "umount", dir).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	if got, err := os.ReadFile(mine); err != nil || string(got) != "local file" {
		t.Fatalf("the local file after unmount: %q %v", got, err)
	}
}

func TestBusyMountpointAndBucketAreRefusedAndTheFirstMountKeepsWorking(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b, other := s.bucket(t), s.bucket(t)
		journal := t.TempDir()
		m := s.mount(t, b, "--journal-dir", journal, "--write-back", "1h")
		if err := os.WriteFile(filepath.Join(m.dir, "before"), []byte("written before"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run("mountpoint already mounted", func(t *testing.T) {
			refusedMount(t, s.env(), 1, m.dir+" is already a mountpoint", m.dir, append(s.keyed(t), other)...)
		})
		t.Run("bucket already mounted", func(t *testing.T) {
			out := refusedMount(t, s.env(), 1, "cannot be mounted twice on one machine", t.TempDir(),
				append(s.keyed(t), "--journal-dir", journal, b)...)
			if want := fmt.Sprintf("is in use by another ssecfs (pid %d)", m.pid); !strings.Contains(out, want) {
				t.Errorf("message %q does not name the journal's holder: %q", out, want)
			}
		})
		// The first mount serves on, and its waiting file is intact.
		if got, err := os.ReadFile(filepath.Join(m.dir, "before")); err != nil || string(got) != "written before" {
			t.Fatalf("before: %q %v", got, err)
		}
		if err := os.WriteFile(filepath.Join(m.dir, "after"), []byte("written after"), 0o644); err != nil {
			t.Fatal(err)
		}
		m.unmount(t)
		for name, want := range map[string]string{"before": "written before", "after": "written after"} {
			if got := s.object(t, b, name); string(got) != want {
				t.Errorf("%s in the bucket: %q", name, got)
			}
		}
	})
}

// rgwUser makes (once) a second RGW user, who owns nothing of the test
// user's buckets, and returns its credentials.
func rgwUser(t *testing.T) (access, sec string) {
	t.Helper()
	access, sec = "SSECFSRGWOTHERKEY001", "ssecfs-rgw-other-secret-0123456789abcdef"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "radosgw-admin", "-c", filepath.Join(stateDir, "rgw/ceph.conf"),
		"user", "create", "--uid", "ssecfs-other", "--display-name", "ssecfs tests: another user",
		"--access-key", access, "--secret-key", sec).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "exists") {
		t.Fatalf("radosgw-admin user create: %v\n%s", err, out)
	}
	return access, sec
}

func TestBucketOfAnotherUserIsRefusedAsAccessDenied(t *testing.T) {
	s := loadServer(t, "rgw")
	b := s.bucket(t)
	s.putObject(t, b, "obj", []byte("sealed"))
	stranger := *s
	stranger.access, stranger.sec = rgwUser(t)
	refusedMount(t, stranger.env(), 1, "access denied; the credentials need the right to list and read the bucket",
		t.TempDir(), append(s.keyed(t), b)...)
	if keys := s.keys(t, b); len(keys) != 1 || string(s.object(t, b, "obj")) != "sealed" {
		t.Fatalf("the bucket changed: %v", keys)
	}
}

func TestBucketRefusingSSECWritesFailsTheWriterAndKeepsTheFile(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		fp := s.faulty(t, 1)
		// As AWS answers every SSE-C upload to a bucket that blocks SSE-C.
		fp.SetRules(faultproxy.Rule{Kinds: []faultproxy.Kind{faultproxy.Put, faultproxy.Create},
			Action: faultproxy.Status, Status: 403, Code: "AccessDenied", Rate: 1})
		m := s.mount(t, b, "--endpoint", fp.URL, "--journal-dir", t.TempDir())
		data := random(t, 300<<10)
		f, err := os.Create(filepath.Join(m.dir, "report.pdf"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); !errors.Is(err, syscall.EACCES) {
			t.Errorf("fsync: %v, want EACCES", err)
		}
		if err := f.Close(); !errors.Is(err, syscall.EACCES) {
			t.Errorf("close after a failed fsync: %v, want EACCES", err)
		}
		if fp.Injected()["put status"] == 0 {
			t.Fatalf("no upload reached the proxy: %v", fp.Seen())
		}
		out, code := s.run(t, "status", m.dir)
		if code != 1 || !strings.Contains(out, "report.pdf") || !strings.Contains(out, "FAILED") ||
			!strings.Contains(out, "refuses SSE-C writes") {
			t.Errorf("status (%d):\n%s", code, out)
		}
		log := readLog(m.log)
		if !strings.Contains(log, `msg="fsync: the file is not in the bucket" key=report.pdf`) ||
			!strings.Contains(log, "access denied (403 AccessDenied): the credentials may not allow writing, or the bucket refuses SSE-C writes") {
			t.Error("the log does not say why the file is not in the bucket")
		}
		// Nothing lost: the file reads back from the journal, and reaches
		// the bucket once the server takes SSE-C writes.
		if got, err := fileSum(t, filepath.Join(m.dir, "report.pdf")); err != nil || got != sum(data) {
			t.Fatalf("report.pdf through the mount: %v, or bytes differ", err)
		}
		fp.SetRules()
		m.unmount(t)
		if got := s.object(t, b, "report.pdf"); !bytes.Equal(got, data) {
			t.Fatal("report.pdf in the bucket differs from what was written")
		}
	})
}

func TestSIGHUPLeavesTheMountServingAndLosesNothing(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--write-back", "1h")
		// Sent right after "ssecfs mount" returned, as a careless script
		// or a closing terminal would.
		if err := syscall.Kill(m.pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(m.dir, "before"), []byte("before SIGHUP"), 0o644)
		eventually(t, "SIGHUP logged", func() bool { return strings.Contains(readLog(m.log), "SIGHUP ignored") })
		if err := unix.Kill(m.pid, 0); err != nil || !isMounted(m.dir) {
			t.Fatalf("after SIGHUP: daemon %v, mounted %v", err, isMounted(m.dir))
		}
		if err := os.WriteFile(filepath.Join(m.dir, "after"), []byte("after SIGHUP"), 0o644); err != nil {
			t.Fatal(err)
		}
		m.unmount(t)
		for name, want := range map[string]string{"before": "before SIGHUP", "after": "after SIGHUP"} {
			if got := s.object(t, b, name); string(got) != want {
				t.Errorf("%s in the bucket: %q", name, got)
			}
		}
	})
}

func TestSIGTERMWithALargeFileOpenUploadsItWhole(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--journal-dir", t.TempDir())
		f, err := os.Create(filepath.Join(m.dir, "big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		head := random(t, 64<<20)
		if _, err := f.Write(head); err != nil {
			t.Fatal(err)
		}
		// Its multipart upload is under way (created in the background
		// once the file passed 16 MiB), and nothing is visible yet.
		raw := s.rawClient(t)
		eventually(t, "the multipart upload of big.bin under way", func() bool {
			n := 0
			for u := range raw.ListIncompleteUploads(context.Background(), b, "big.bin", false) {
				if u.Err != nil {
					t.Fatal(u.Err)
				}
				n++
			}
			return n == 1
		})
		if keys := s.keys(t, b); len(keys) != 0 {
			t.Fatalf("before SIGTERM: objects %v", keys)
		}
		if err := syscall.Kill(m.pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// The file is open: the mount is detached, the writer goes on.
		eventually(t, "the mount detached", func() bool { return !isMounted(m.dir) })
		tail := random(t, 3<<20)
		if _, err := f.Write(tail); err != nil {
			t.Fatalf("write after SIGTERM: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close after SIGTERM: %v", err)
		}
		waitExit(t, m.pid)
		m.pid = 0
		want := append(head, tail...)
		if got := s.object(t, b, "big.bin"); !bytes.Equal(got, want) {
			t.Fatalf("big.bin in the bucket: %d bytes, want %d, or bytes differ", len(got), len(want))
		}
		for u := range raw.ListIncompleteUploads(context.Background(), b, "", true) {
			t.Errorf("incomplete upload left: %s %v", u.Key, u.Err)
		}
		log := readLog(m.log)
		for _, line := range []string{"mount busy; detaching it lazily", "all files uploaded"} {
			if !strings.Contains(log, line) {
				t.Errorf("the log lacks %q", line)
			}
		}
	})
}

func TestNamesThatAreNotUTF8AreRefusedWithEILSEQ(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--write-back", "0")
		good := filepath.Join(m.dir, "café.txt")
		bad := filepath.Join(m.dir, "caf\xe9.txt") // Latin-1, as an old archive holds it
		if err := os.WriteFile(good, []byte("utf-8 name"), 0o644); err != nil {
			t.Fatal(err)
		}
		for what, err := range map[string]error{
			"create":  os.WriteFile(bad, []byte("latin-1 name"), 0o644),
			"mkdir":   os.Mkdir(filepath.Join(m.dir, "dir\xff"), 0o755),
			"symlink": os.Symlink("café.txt", filepath.Join(m.dir, "link\xff")),
			"rename":  os.Rename(good, bad),
		} {
			if !errors.Is(err, syscall.EILSEQ) {
				t.Errorf("%s with a name that is not UTF-8: %v, want EILSEQ", what, err)
			}
		}
		if got, err := os.ReadFile(good); err != nil || string(got) != "utf-8 name" {
			t.Fatalf("café.txt after the refused rename: %q %v", got, err)
		}
		m.unmount(t) // fails the test if anything is left waiting
		if keys := s.keys(t, b); len(keys) != 1 || keys[0] != "café.txt" {
			t.Fatalf("bucket holds %q", keys)
		}
	})
}

// A file written out of order (it cannot stream) that fills the journal
// gets ENOSPC once the other waiting files have been uploaded to make room:
// nothing else can leave the journal while it is open. The log and
// `ssecfs status` say why; what was accepted is kept and uploaded.
func TestAnOpenFileThatCannotLeaveAFullJournalGetsENOSPCAndKeepsWhatItAccepted(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--journal-size", "1M", "--write-back", "1h", "--journal-dir", t.TempDir())
		if err := os.WriteFile(filepath.Join(m.dir, "earlier.txt"), []byte("accepted earlier"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(m.dir, "sparse.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// The end first, as a database or a torrent client writes: the
		// file cannot stream out of the journal.
		const end = 4 << 20
		last := random(t, 64<<10)
		if _, err := f.WriteAt(last, end); err != nil {
			t.Fatal(err)
		}
		data := random(t, 2<<20)
		acked := 0
		for acked < len(data) {
			n, err := f.WriteAt(data[acked:acked+64<<10], int64(acked))
			acked += n
			if err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("write at %d: %v, want ENOSPC", acked, err)
				}
				break
			}
		}
		if acked == 0 || acked == len(data) {
			t.Fatalf("%d of %d bytes accepted by a 1 MiB journal", acked, len(data))
		}
		// While the file is open nothing can make room: status says why.
		if out, _ := s.run(t, "status", m.dir); !strings.Contains(out, "journal full, writers refused") {
			t.Errorf("status does not say the journal is full:\n%s", out)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if !strings.Contains(readLog(m.log), "journal full of files still open that cannot be uploaded before they are closed") {
			t.Error("the log does not say why the journal is full")
		}

		want := make([]byte, end+len(last))
		copy(want, data[:acked])
		copy(want[end:], last)
		if got, err := os.ReadFile(filepath.Join(m.dir, "sparse.bin")); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("sparse.bin through the mount: %v, or the accepted bytes differ", err)
		}
		m.unmount(t)
		if got := s.object(t, b, "sparse.bin"); !bytes.Equal(got, want) {
			t.Fatal("sparse.bin in the bucket: the accepted bytes differ")
		}
		if got := s.object(t, b, "earlier.txt"); string(got) != "accepted earlier" {
			t.Fatalf("earlier.txt in the bucket: %q", got)
		}
		s.assertAllEncrypted(t, b)
	})
}
