//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(root, n)
		mkdir(t, filepath.Dir(p))
		if err := os.WriteFile(p, []byte("data of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// `ssecfs sync MOUNTPOINT [PATH]` uploads what waits (under PATH) now,
// without unmounting; a folder's fsync uploads what waits directly in it.
func TestSyncUploadsWhatWaitsWithoutUnmounting(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--write-back", "1h")
		writeFiles(t, m.dir, "a/1", "a/deeper/2", "b/3", "c/4", "c/sub/5")
		if keys := s.keys(t, b); slices.Contains(keys, "a/1") {
			t.Fatalf("uploaded before the window: %v", keys)
		}
		d, err := os.Open(filepath.Join(m.dir, "c"))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			t.Fatalf("fsync of a folder: %v", err)
		}
		d.Close()
		out, code := s.run(t, "sync", m.dir, filepath.Join(m.dir, "a"))
		if code != 0 || !strings.Contains(out, "2 files uploaded") {
			t.Fatalf("ssecfs sync MOUNTPOINT a: exit %d: %s", code, out)
		}
		keys := s.keys(t, b)
		for _, k := range []string{"a/1", "a/deeper/2", "c/4"} {
			if !slices.Contains(keys, k) {
				t.Errorf("%s is not in the bucket after the sync of its folder: %v", k, keys)
			}
		}
		for _, k := range []string{"b/3", "c/sub/5"} {
			if slices.Contains(keys, k) {
				t.Errorf("%s was uploaded, outside what was synced", k)
			}
		}
		if out, code := s.run(t, "sync", m.dir); code != 0 || !strings.Contains(out, "2 files uploaded") {
			t.Fatalf("ssecfs sync MOUNTPOINT: exit %d: %s", code, out)
		}
		if keys := s.keys(t, b); !slices.Contains(keys, "b/3") || !slices.Contains(keys, "c/sub/5") {
			t.Fatalf("after ssecfs sync of the whole mount, the bucket holds %v", keys)
		}
		if got := string(s.object(t, b, "b/3")); got != "data of b/3" {
			t.Fatalf("b/3 holds %q", got)
		}
		if out, code := s.run(t, "sync", m.dir, "/etc"); code != 2 || !strings.Contains(out, "not inside the mount") {
			t.Fatalf("ssecfs sync of a path outside the mount: exit %d: %s", code, out)
		}
	})
}

// A sync that cannot upload exits 1 naming the files, which stay waiting
// and are uploaded by the next sync once the bucket takes them.
func TestSyncReportsWhatCouldNotBeUploaded(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b, "--write-back", "1h")
		writeFiles(t, m.dir, "report.txt")
		s.aws(t, "s3api", "delete-bucket", "--bucket", b) // empty: nothing was uploaded
		out, code := s.run(t, "sync", m.dir)
		if code != 1 || !strings.Contains(out, "report.txt") || !strings.Contains(out, "could not be uploaded") {
			t.Fatalf("ssecfs sync without the bucket: exit %d: %s", code, out)
		}
		s.aws(t, "s3", "mb", "s3://"+b)
		if out, code := s.run(t, "sync", m.dir); code != 0 || !strings.Contains(out, "1 file uploaded") {
			t.Fatalf("ssecfs sync once the bucket is back: exit %d: %s", code, out)
		}
		if got := string(s.object(t, b, "report.txt")); got != "data of report.txt" {
			t.Fatalf("report.txt holds %q", got)
		}
	})
}
