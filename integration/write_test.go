//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ssecfs/ssecfs/integration/faultproxy"
)

// rawClient talks to s without any key, to check what the bucket holds.
func (s *server) rawClient(t *testing.T) *minio.Client {
	t.Helper()
	u, _ := url.Parse(s.endpoint)
	pem, _ := os.ReadFile(s.ca)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(s.access, s.sec, ""), Secure: true, Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		Transport:    &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertAllEncrypted checks that every object of the bucket refuses a HEAD
// without the key: nothing was stored as plaintext.
func (s *server) assertAllEncrypted(t *testing.T, bucket string) int {
	t.Helper()
	c := s.rawClient(t)
	n := 0
	for o := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
		_, err := c.StatObject(context.Background(), bucket, o.Key, minio.StatObjectOptions{})
		if err == nil {
			t.Errorf("%s answers a HEAD without the key: stored as plaintext", o.Key)
		} else if resp := minio.ToErrorResponse(err); resp.StatusCode != 400 {
			t.Errorf("%s: HEAD without the key answered %d, want 400", o.Key, resp.StatusCode)
		}
	}
	return n
}

// keys lists the bucket's object keys.
func (s *server) keys(t *testing.T, bucket string) []string {
	t.Helper()
	var out []string
	for o := range s.rawClient(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out = append(out, o.Key)
	}
	return out
}

func TestLargeFileAndManySmallFilesAreEncryptedAndReadableByOthers(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--write-back", "0")
		big := random(t, 512<<20)
		src := filepath.Join(t.TempDir(), "big.bin")
		os.WriteFile(src, big, 0o644)
		if out, err := exec.Command("cp", src, filepath.Join(m.dir, "big.bin")).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		tree := t.TempDir()
		mt := time.Date(2020, 1, 2, 3, 4, 5, 600700800, time.UTC)
		want := map[string][]byte{}
		for i := 0; i < 1000; i++ {
			name := fmt.Sprintf("small/d%02d/f%04d.txt", i%25, i)
			want[name] = []byte(fmt.Sprintf("small file %d\n", i))
			p := filepath.Join(tree, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, want[name], 0o644)
			os.Chtimes(p, mt, mt)
		}
		if out, err := exec.Command("cp", "-a", filepath.Join(tree, "small"), m.dir).CombinedOutput(); err != nil {
			t.Fatalf("cp -a: %v %s", err, out)
		}
		m.unmount(t)

		down := filepath.Join(t.TempDir(), "big.bin")
		s.aws(t, append([]string{"s3", "cp", "s3://" + b + "/big.bin", down}, sse(secret)...)...)
		if got, err := fileSum(t, down); err != nil || got != sum(big) {
			t.Fatalf("aws download of the 512 MiB file differs (%v)", err)
		}
		rdir := t.TempDir()
		s.rclone(t, "copy", "r:"+b+"/small", rdir)
		for name, data := range want {
			p := filepath.Join(rdir, strings.TrimPrefix(name, "small/"))
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("rclone read %s: %q %v", name, got, err)
			}
			st, _ := os.Stat(p)
			if d := st.ModTime().Sub(mt); d > time.Microsecond || d < -time.Microsecond {
				t.Fatalf("rclone sees mtime %v for %s, set %v through the mount", st.ModTime(), name, mt)
			}
		}
		if n := s.assertAllEncrypted(t, b); n < 1001 {
			t.Fatalf("%d objects in the bucket", n)
		}
	})
}

func TestRsyncIntoTheMountIsANoOpTheSecondTime(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		src := t.TempDir()
		for i := 0; i < 500; i++ {
			p := filepath.Join(src, fmt.Sprintf("dir%d/sub%d/file%03d", i%5, i%3, i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, random(t, 100+i*37), 0o640)
			mt := time.Unix(1600000000+int64(i)*3600, int64(i)*1234567)
			os.Chtimes(p, mt, mt)
		}
		os.Symlink("dir0/sub0/file000", filepath.Join(src, "link"))
		// Into a folder, as backups go: the bucket root has no marker object
		// to keep its own mtime in (docs/SEMANTICS.md).
		m := s.mount(t, b)
		dst := filepath.Join(m.dir, "backup") + "/"
		if out, err := exec.Command("rsync", "-a", src+"/", dst).CombinedOutput(); err != nil {
			t.Fatalf("rsync -a: %v\n%s", err, out)
		}
		m.unmount(t)
		m = s.mount(t, b)
		dst = filepath.Join(m.dir, "backup") + "/"
		out, err := exec.Command("rsync", "-ai", src+"/", dst).CombinedOutput()
		if err != nil {
			t.Fatalf("second rsync -ai: %v\n%s", err, out)
		}
		if lines := strings.TrimSpace(string(out)); lines != "" {
			t.Fatalf("the second rsync -ai would copy again:\n%s", lines)
		}
		out, err = exec.Command("rsync", "-aic", "--dry-run", src+"/", dst).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Fatalf("rsync -c finds differences: %v\n%s", err, out)
		}
		if out, err := exec.Command("diff", "-r", src, dst).CombinedOutput(); err != nil {
			t.Fatalf("diff -r: %v\n%s", err, out)
		}
		s.assertAllEncrypted(t, b)
	})
}

func TestRenameAndChmodOfUploadedFiles(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--write-back", "0")
		data := random(t, 3<<20)
		os.WriteFile(filepath.Join(m.dir, "a.bin"), data, 0o644)
		os.MkdirAll(filepath.Join(m.dir, "folder/inner"), 0o755)
		os.WriteFile(filepath.Join(m.dir, "folder/inner/x"), []byte("x"), 0o644)
		m.unmount(t) // everything uploaded: the rest needs server-side copies
		m = s.mount(t, b, "--write-back", "0")
		if err := os.Chmod(filepath.Join(m.dir, "a.bin"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(m.dir, "a.bin"), filepath.Join(m.dir, "b.bin")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(m.dir, "folder"), filepath.Join(m.dir, "moved")); err != nil {
			t.Fatal(err)
		}
		m.unmount(t)
		m = s.mount(t, b)
		st, err := os.Stat(filepath.Join(m.dir, "b.bin"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("b.bin: %v %v", st, err)
		}
		if got, err := fileSum(t, filepath.Join(m.dir, "b.bin")); err != nil || got != sum(data) {
			t.Fatal("b.bin bytes differ after rename")
		}
		if got, err := os.ReadFile(filepath.Join(m.dir, "moved/inner/x")); err != nil || string(got) != "x" {
			t.Fatalf("moved/inner/x: %q %v", got, err)
		}
		keys := strings.Join(s.keys(t, b), " ")
		if strings.Contains(keys, "a.bin") || strings.Contains(keys, "folder/") {
			t.Fatalf("old names remain: %s", keys)
		}
		s.assertAllEncrypted(t, b)
	})
}

func TestKilledDaemonsPendingFilesAreUploadedByTheNextMount(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		journal := t.TempDir()
		m := s.mount(t, b, "--write-back", "1h", "--journal-dir", journal)
		want := map[string][]byte{}
		for i := 0; i < 100; i++ {
			name := fmt.Sprintf("f%03d", i)
			want[name] = random(t, 1000+i*1000)
			if err := os.WriteFile(filepath.Join(m.dir, name), want[name], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if keys := s.keys(t, b); len(keys) != 0 {
			t.Fatalf("in the bucket before the window ended: %v", keys)
		}
		syscall.Kill(m.pid, syscall.SIGKILL)
		waitExit(t, m.pid)
		m.pid = 0
		// What the README says to do with the dead daemon's mount
		// ("Transport endpoint is not connected"): a mount there is
		// refused with the way out, which works.
		out, code := s.run(t, "mount", "--endpoint", s.endpoint, "--key-file", keyFile(t, secret), b, m.dir)
		if code != 1 || !strings.Contains(out, "its daemon is gone") || !strings.Contains(out, "ssecfs umount "+m.dir) {
			t.Fatalf("a mount over the dead daemon's mount (%d): %s", code, out)
		}
		if out, code := s.run(t, "umount", m.dir); code != 0 || isMounted(m.dir) {
			t.Fatalf("ssecfs umount of the dead daemon's mount (%d): %s", code, out)
		}
		m = s.mount(t, b, "--journal-dir", journal)
		m.unmount(t) // drains: the resumed uploads are done when it returns
		down := t.TempDir()
		s.aws(t, append([]string{"s3", "sync", "s3://" + b + "/", down}, sse(secret)...)...)
		for name, data := range want {
			if got, _ := os.ReadFile(filepath.Join(down, name)); !bytes.Equal(got, data) {
				t.Fatalf("%s differs after resume", name)
			}
		}
		s.assertAllEncrypted(t, b)
	})
}

func TestUmountWaitsForEveryPendingFile(t *testing.T) {
	s := loadServer(t, "rgw")
	b := s.bucket(t)
	rec := newRecorder(t, s)
	rec.delay = 20 * time.Millisecond // every request pays a round trip
	m := s.mount(t, b, "--endpoint", rec.URL, "--write-back", "1h")
	for i := 0; i < 50; i++ {
		os.WriteFile(filepath.Join(m.dir, fmt.Sprintf("p%02d", i)), []byte(fmt.Sprint(i)), 0o644)
	}
	out, code := s.run(t, "status", m.dir)
	if code != 0 || !strings.Contains(out, "50 files (") || !strings.Contains(out, ") waiting for upload") {
		t.Fatalf("status (%d): %s", code, out)
	}
	if out, err := exec.Command(binary, "umount", m.dir).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	// umount returned: everything must be in the bucket now.
	if keys := s.keys(t, b); len(keys) != 50 {
		t.Fatalf("%d of 50 files in the bucket when umount returned", len(keys))
	}
	waitExit(t, m.pid)
	m.pid = 0

	// Plain umount, then the daemon drains before it exits.
	m = s.mount(t, b, "--endpoint", rec.URL, "--write-back", "1h")
	for i := 0; i < 20; i++ {
		os.WriteFile(filepath.Join(m.dir, fmt.Sprintf("q%02d", i)), []byte("q"), 0o644)
	}
	if out, err := exec.Command("umount", m.dir).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	waitExit(t, m.pid)
	m.pid = 0
	if keys := s.keys(t, b); len(keys) != 70 {
		t.Fatalf("%d of 70 files in the bucket after the daemon exited", len(keys))
	}
}

// An edit of an uploaded file needs the bytes around it from the object
// (its base), and its upload replaces that object. A read whose body is
// cut as often as requests are retried is still read; a PUT whose answers
// are all lost, though the server stored it, is found by the ID it
// carries: failing it would leave every retry reading a base that is gone
// (412), and the edit would never reach the bucket.
func TestAnEditSurvivesCutReadsAndLostUploadAnswers(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		data := random(t, 100<<10)
		s.putObject(t, b, "doc", data)
		fp := s.faulty(t, 1)
		m := s.mount(t, b, "--endpoint", fp.URL, "--write-back", "0s")
		fp.SetRules(
			faultproxy.Rule{Kinds: []faultproxy.Kind{faultproxy.Get}, Action: faultproxy.Truncate, Rate: 1, Max: 4},
			faultproxy.Rule{Kinds: []faultproxy.Kind{faultproxy.Put}, Action: faultproxy.LoseAnswer, Rate: 1, Max: 5},
		)
		f, err := os.OpenFile(filepath.Join(m.dir, "doc"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // on a failure, before the unmount
		if _, err := f.WriteAt([]byte("EDIT"), 50_000); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		copy(data[50_000:], "EDIT")
		if got := s.object(t, b, "doc"); !bytes.Equal(got, data) {
			t.Fatal("the object is not the edited file")
		}
		if n := fp.Injected(); n["get truncate"] != 4 || n["put lose-answer"] != 5 {
			t.Fatalf("faults injected: %v, want 4 cut reads and 5 lost PUT answers", n)
		}
	})
}

// A DELETE whose answers are all lost, though the server deleted the
// object, is sent again: failing it would tell rm the file is still there
// when it is gone (EIO, or ENOENT from the rmdir that os.Remove tries
// next).
func TestAnUnlinkWhoseAnswersAreLostSucceeds(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		s.putObject(t, b, "gone", []byte("bytes"))
		fp := s.faulty(t, 1)
		m := s.mount(t, b, "--endpoint", fp.URL)
		fp.SetRules(faultproxy.Rule{Kinds: []faultproxy.Kind{faultproxy.Delete}, Action: faultproxy.LoseAnswer, Rate: 1, Max: 6})
		if err := os.Remove(filepath.Join(m.dir, "gone")); err != nil {
			t.Fatalf("rm: %v", err)
		}
		if keys := s.keys(t, b); len(keys) != 0 {
			t.Fatalf("left in the bucket: %v", keys)
		}
		if n := fp.Injected()["delete lose-answer"]; n != 6 {
			t.Fatalf("%d lost DELETE answers injected, want 6", n)
		}
	})
}
