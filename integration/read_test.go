//go:build integration

package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeTree makes a folder of files of awkward sizes and names.
func writeTree(t *testing.T, dir string, withBig bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"empty":                   {},
		"tiny.txt":                []byte("hello\n"),
		"with space & ü.txt":      []byte("names with spaces and UTF-8"),
		"one-mib.bin":             random(t, 1<<20),
		"nested/a/b/c.bin":        random(t, 300<<10+7),
		"nested/a/sibling.txt":    []byte("sibling"),
		"block-edge/8MiB-exactly": random(t, 8<<20),
	}
	if withBig {
		files["big/multipart.bin"] = random(t, 100<<20+1) // aws cp uploads it in parts
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

func fileSum(t *testing.T, p string) ([32]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

// rclone runs Debian's rclone with an on-the-fly remote "r" for s.
func (s *server) rclone(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("/usr/bin/rclone", args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") { // rclone's --ca-cert breaks with AWS_CA_BUNDLE set
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "RCLONE_CONFIG_R_TYPE=s3", "RCLONE_CONFIG_R_PROVIDER=Other",
		"RCLONE_CONFIG_R_ENDPOINT="+s.endpoint, "RCLONE_CONFIG_R_ACCESS_KEY_ID="+s.access,
		"RCLONE_CONFIG_R_SECRET_ACCESS_KEY="+s.sec, "RCLONE_CONFIG_R_REGION=us-east-1",
		"RCLONE_CONFIG_R_SSE_CUSTOMER_ALGORITHM=AES256", "RCLONE_CONFIG_R_SSE_CUSTOMER_KEY="+secret,
		"SSL_CERT_FILE="+s.ca, "RCLONE_CONFIG=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rclone %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestReadsWhatAwsAndRcloneUploaded(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		src := t.TempDir()
		files := writeTree(t, src, true)
		// Distinct mtimes with nanoseconds, for rclone to store.
		base := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
		for name := range files {
			os.Chtimes(filepath.Join(src, name), base, base)
		}
		s.aws(t, append([]string{"s3", "sync", src, "s3://" + b + "/sync/"}, sse(secret)...)...)
		s.aws(t, append([]string{"s3", "cp", filepath.Join(src, "tiny.txt"), "s3://" + b + "/cp/tiny.txt"}, sse(secret)...)...)
		s.rclone(t, "copy", "--exclude", "big/**", src, "r:"+b+"/rclone")

		m := s.mount(t, b)
		for _, top := range []string{"sync", "rclone"} {
			for name, data := range files {
				if top == "rclone" && strings.HasPrefix(name, "big/") {
					continue
				}
				got, err := fileSum(t, filepath.Join(m.dir, top, name))
				if err != nil || got != sum(data) {
					t.Errorf("%s/%s: %v, or bytes differ", top, name, err)
				}
			}
		}
		if got, err := os.ReadFile(filepath.Join(m.dir, "cp/tiny.txt")); err != nil || string(got) != "hello\n" {
			t.Errorf("cp/tiny.txt: %q %v", got, err)
		}

		// ls -l shows the size, and the mtime rclone stored (as a decimal
		// float, so within a microsecond).
		for name, data := range files {
			if strings.HasPrefix(name, "big/") {
				continue
			}
			st, err := os.Stat(filepath.Join(m.dir, "rclone", name))
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != int64(len(data)) {
				t.Errorf("rclone/%s: size %d, want %d", name, st.Size(), len(data))
			}
			if d := st.ModTime().Sub(base); d > time.Microsecond || d < -time.Microsecond {
				t.Errorf("rclone/%s: mtime %v, want %v", name, st.ModTime(), base)
			}
		}

		// find, du and stat work as on a local tree.
		out, err := exec.Command("find", filepath.Join(m.dir, "sync"), "-type", "f").Output()
		if n := len(strings.Split(strings.TrimSpace(string(out)), "\n")); err != nil || n != len(files) {
			t.Errorf("find: %d files, want %d (%v)", n, len(files), err)
		}
		var total int64
		for _, d := range files {
			total += int64(len(d))
		}
		out, err = exec.Command("du", "-sb", "--apparent-size", filepath.Join(m.dir, "sync")).Output()
		du, _ := strconv.ParseInt(strings.Fields(string(out) + " 0")[0], 10, 64)
		// du counts the folders' own 4096-byte sizes too.
		if err != nil || du < total || du > total+64<<10 {
			t.Errorf("du: %d, files hold %d (%v)", du, total, err)
		}
		if out, err := exec.Command("stat", "-c", "%s %F", filepath.Join(m.dir, "sync/one-mib.bin")).Output(); err != nil ||
			strings.TrimSpace(string(out)) != "1048576 regular file" {
			t.Errorf("stat: %q %v", out, err)
		}
	})
}

func TestMixedBucketPlaintextReadableOtherKeyRefused(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		src := t.TempDir()
		write := func(name, content string) string {
			p := filepath.Join(src, name)
			os.WriteFile(p, []byte(content), 0o644)
			return p
		}
		s.aws(t, append([]string{"s3", "cp", write("ours", "our secret"), "s3://" + b + "/ours"}, sse(secret)...)...)
		s.aws(t, "s3", "cp", write("plain", "plain text"), "s3://"+b+"/plain")
		s.aws(t, append([]string{"s3", "cp", write("theirs", "their secret"), "s3://" + b + "/theirs"},
			sse("Zx9Zx9Zx9Zx9Zx9Zx9Zx9Zx9Zx9Zx9Zx")...)...)
		m := s.mount(t, b)
		for name, want := range map[string]string{"ours": "our secret", "plain": "plain text"} {
			if got, err := os.ReadFile(filepath.Join(m.dir, name)); err != nil || string(got) != want {
				t.Errorf("%s: %q %v", name, got, err)
			}
		}
		if _, err := os.ReadFile(filepath.Join(m.dir, "theirs")); !errors.Is(err, syscall.EACCES) {
			t.Errorf("theirs: %v, want EACCES", err)
		}
		if st, err := os.Stat(filepath.Join(m.dir, "theirs")); err != nil || st.Size() != int64(len("their secret")) {
			t.Errorf("theirs must still show with its size: %v %v", st, err)
		}
		if !strings.Contains(readLog(m.log), "another key") {
			t.Error("no log line names the object under another key")
		}
	})
}

func TestOverwriteWhileOpenGivesOldBytesOrESTALE(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		src := t.TempDir()
		old := bytes.Repeat([]byte("old!"), 2<<20) // 8 MiB
		p := filepath.Join(src, "f")
		os.WriteFile(p, old, 0o644)
		s.aws(t, append([]string{"s3", "cp", p, "s3://" + b + "/f"}, sse(secret)...)...)
		// No read-ahead and 1 MiB blocks: the rest of the file is fetched
		// after the overwrite, pinned to the old ETag.
		m := s.mount(t, b, "--read-ahead", "0", "--block-size", "1M")
		f, err := os.Open(filepath.Join(m.dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got := make([]byte, 1<<20)
		if _, err := io.ReadFull(f, got); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, bytes.Repeat([]byte("NEW!"), 2<<20), 0o644)
		s.aws(t, append([]string{"s3", "cp", p, "s3://" + b + "/f"}, sse(secret)...)...)
		rest, err := io.ReadAll(f)
		got = append(got, rest...)
		if bytes.Contains(got, []byte("NEW!")) {
			t.Fatal("a handle opened on the old version returned bytes of the new one")
		}
		if err == nil && !bytes.Equal(got, old) {
			t.Fatal("short or wrong old content without an error")
		}
		if err != nil && !errors.Is(err, syscall.ESTALE) {
			t.Fatalf("error %v, want ESTALE", err)
		}
		t.Logf("reader got %d old bytes, then %v", len(got), err)
	})
}

// isMounted reports whether dir is a mountpoint.
func isMounted(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// A big file read at random is fetched whole to the disk cache, sealed: no
// plaintext in the cache folder, right bytes from it, nothing left after
// the unmount.
func TestRandomReadsOfABigFileGoThroughASealedDiskCache(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		var text []byte
		for i := 0; len(text) < 24<<20; i++ {
			text = append(text, "ssecfs-plaintext-marker-"+strconv.Itoa(i)+"\n"...)
		}
		s.putObject(t, b, "big.txt", text)
		root := t.TempDir()
		// The file is more than half the memory cache, less than half the disk's.
		m := s.mount(t, b, "--cache-size", "16M", "--block-size", "1M", "--read-ahead", "4M",
			"--cache-dir", root, "--disk-cache-size", "64M")
		f, err := os.Open(filepath.Join(m.dir, "big.txt"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p := make([]byte, 4096)
		read := func(from, n int) {
			for i := from; i < from+n; i++ {
				off := int64(i) * 7_919_003 % int64(len(text)-len(p))
				if _, err := f.ReadAt(p, off); err != nil {
					t.Fatalf("read at %d: %v", off, err)
				}
				if !bytes.Equal(p, text[off:off+int64(len(p))]) {
					t.Fatalf("read at %d: wrong bytes", off)
				}
			}
		}
		read(1, 16)
		eventually(t, "the sweep to the disk cache", func() bool {
			return strings.Contains(readLog(m.log), "swept to the disk cache")
		})
		if !strings.Contains(readLog(m.log), `msg="swept to the disk cache" key=big.txt complete=true`) {
			t.Fatal("the sweep did not complete")
		}
		blocks := 0
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() == "lock" {
				return err
			}
			blocks++
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("plaintext-marker")) {
				t.Errorf("%s holds plaintext", path)
			}
			return nil
		})
		if want := (len(text) + 1<<20 - 1) >> 20; blocks != want {
			t.Errorf("%d blocks in the disk cache, want the file's %d", blocks, want)
		}
		read(17, 200)
		f.Close()
		m.unmount(t)
		if left, _ := os.ReadDir(root); len(left) != 0 {
			t.Errorf("the disk cache left %d entries after the unmount", len(left))
		}
	})
}
