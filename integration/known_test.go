//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A fresh mount stats what it learnt on an earlier mount without a HEAD
// (the metadata kept on disk between mounts), but an object that another
// client changed since shows the change: overwritten by aws (a new size and
// mtime), or chmodded by another mount (on RGW the same size and ETag: only
// LastModified tells). On RGW, whose listings carry no metadata, the
// unchanged object costs no HEAD.
func TestAFreshMountKnowsWhatTheLastLearntUnlessAnotherClientChangedIt(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		src := t.TempDir()
		put := func(name, body, meta string) {
			p := filepath.Join(src, name)
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			s.aws(t, append([]string{"s3", "cp", p, "s3://" + b + "/dir/" + name, "--metadata", meta}, sse(secret)...)...)
		}
		put("same", "unchanged\n", "mtime=1600000000,mode=33188")
		put("overwritten", "old\n", "mtime=1600000000,mode=33188")
		put("chmodded", "its mode changes\n", "mtime=1600000000,mode=33188")

		m1 := s.mount(t, b)
		for _, name := range []string{"same", "overwritten", "chmodded"} {
			if _, err := os.Lstat(filepath.Join(m1.dir, "dir", name)); err != nil {
				t.Fatal(err)
			}
		}
		m1.unmount(t)

		put("overwritten", "the new content\n", "mtime=1650000000,mode=33188")
		other := s.mount(t, b, "--no-meta-cache") // another machine
		if err := os.Chmod(filepath.Join(other.dir, "dir", "chmodded"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, code := s.run(t, "sync", other.dir); code != 0 {
			t.Fatalf("sync: %s", out)
		}
		other.unmount(t)

		m3 := s.mount(t, b, "--trace")
		want := map[string]struct {
			size  int64
			mtime int64
			mode  os.FileMode
		}{
			"same":        {10, 1600000000, 0o644},
			"overwritten": {16, 1650000000, 0o644},
			"chmodded":    {17, 1600000000, 0o600},
		}
		for name, w := range want {
			fi, err := os.Lstat(filepath.Join(m3.dir, "dir", name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != w.size || fi.ModTime().Unix() != w.mtime || fi.Mode().Perm() != w.mode {
				t.Errorf("%s: size %d, mtime %d, mode %o; want %d, %d, %o", name, fi.Size(), fi.ModTime().Unix(), fi.Mode().Perm(), w.size, w.mtime, w.mode)
			}
		}
		// After the key check, which HEADs a few objects before mounting.
		_, log, _ := strings.Cut(readLog(m3.log), "msg=mounted")
		headOf := func(name string) bool { return strings.Contains(log, "method=HEAD path=/"+b+"/dir/"+name+" ") }
		// MinIO's listings carry the metadata: no HEAD there at all.
		if s.name == "rgw" && (headOf("same") || !headOf("overwritten") || !headOf("chmodded")) {
			t.Errorf("HEADs on the fresh mount: same %v (want false), overwritten %v, chmodded %v (want true)",
				headOf("same"), headOf("overwritten"), headOf("chmodded"))
		}
	})
}
