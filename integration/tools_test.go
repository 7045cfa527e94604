//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The compatibility suite: real backup and file tools from Debian 12's
// packages (installed by servers/install.sh) run against a mount, as their
// users run them, on both servers. Each tool works in a folder of its own
// on one mount; then the mount is unmounted, a fresh one restores or reads
// back what each tool wrote and compares it with the source by SHA-256,
// and every object of the bucket, downloaded with aws s3 cp --sse-c, is
// compared with the same file read through the fresh mount. The table in
// docs/TOOLS.md is this test's.

// tool is one program's run: write does its work on the mount (m1), check
// reads it back through a fresh mount (m2).
type tool struct {
	name  string
	write func(t *testing.T, c *toolCase)
	check func(t *testing.T, c *toolCase)
}

// toolCase is one tool's folders: its own folder on the mount, its own
// scratch folder, and the state its check needs.
type toolCase struct {
	mnt     string // the tool's folder on the mount
	scratch string // local scratch space
	src     string // the source tree the tool backs up (its own copy)
	env     []string
	want    map[string]string // the tree a restore must give (treeSums)
}

func TestBackupToolsOnTheMount(t *testing.T) {
	tools := []tool{resticTool(), borgTool(), duplicityTool(), rsyncTool(), gitTool(), sqliteTool(), tarTool()}
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		source := t.TempDir()
		makeSourceTree(t, source)
		cases := map[string]*toolCase{}
		for _, tl := range tools {
			c := &toolCase{scratch: t.TempDir(), env: toolEnv(t)}
			c.src = filepath.Join(c.scratch, "src")
			copyTree(t, source, c.src)
			cases[tl.name] = c
		}
		m1 := s.mount(t, b)
		// The tools run at once, as on a machine with several backup
		// jobs; each in its own folder.
		t.Run("write", func(t *testing.T) {
			for _, tl := range tools {
				t.Run(tl.name, func(t *testing.T) {
					t.Parallel()
					c := cases[tl.name]
					c.mnt = filepath.Join(m1.dir, tl.name)
					mkdir(t, c.mnt)
					start := time.Now()
					tl.write(t, c)
					t.Logf("%s on %s: %.1f s", tl.name, s.name, time.Since(start).Seconds())
				})
			}
		})
		if t.Failed() {
			return
		}
		m1.unmount(t)
		m2 := s.mount(t, b)
		t.Run("check", func(t *testing.T) {
			for _, tl := range tools {
				t.Run(tl.name, func(t *testing.T) {
					t.Parallel()
					c := cases[tl.name]
					c.mnt = filepath.Join(m2.dir, tl.name)
					c.scratch = t.TempDir()
					tl.check(t, c)
				})
			}
		})
		t.Run("objects", func(t *testing.T) {
			n := s.assertAllEncrypted(t, b)
			compareObjectsWithMount(t, s, b, m2.dir)
			t.Logf("%d objects in the bucket", n)
		})
	})
}

// makeSourceTree writes a tree of awkward files: sizes from empty to past
// the multipart threshold, names with spaces and UTF-8, a symlink, modes
// and mtimes that must survive; about 12 MiB in 60 files.
func makeSourceTree(t *testing.T, dir string) {
	t.Helper()
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, name)
		mkdir(t, filepath.Dir(p))
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		mt := time.Unix(1700000000+int64(len(name))*3607, int64(len(data))%1e9)
		os.Chtimes(p, mt, mt)
	}
	write("empty", nil, 0o644)
	write("with space & ü.txt", []byte("names with spaces and UTF-8\n"), 0o600)
	write("run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	write("big/9MiB.bin", random(t, 9<<20+3), 0o644) // one multipart upload
	for i := 0; i < 50; i++ {
		text := strings.Repeat(fmt.Sprintf("line %d of a text file that compresses\n", i), 20+i*37)
		write(fmt.Sprintf("docs/d%d/note%02d.txt", i%4, i), []byte(text), 0o644)
	}
	for i := 0; i < 6; i++ {
		write(fmt.Sprintf("photos/img%d.jpg", i), random(t, 100<<10+i*50000), 0o644)
	}
	if err := os.Symlink("docs/d0/note00.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies src to dst keeping modes, mtimes and symlinks.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
}

// changeTree makes the changes a second backup must pick up: a new file,
// a changed one, a removed one.
func changeTree(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "docs/new.txt"), []byte("added after the first backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "docs/d1/note01.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("changed after the first backup\n")
	f.Close()
	if err := os.Remove(filepath.Join(dir, "photos/img5.jpg")); err != nil {
		t.Fatal(err)
	}
}

// treeSums describes a tree by relative path: a file's SHA-256 and mode,
// a symlink's target, "dir" for a folder.
func treeSums(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		// lstat, not the entry's type from readdir: the mount reports
		// symlinks as files there until they are stat'ed (SEMANTICS.md).
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "link " + target
			return err
		case info.IsDir():
			out[rel] = "dir"
		default:
			h, err := fileSum(t, p)
			out[rel] = fmt.Sprintf("%s %o", hex.EncodeToString(h[:]), info.Mode().Perm())
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails the test with the differences between two trees.
func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+k)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %s, want %s", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+k)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%s differs from the source (%d):\n%s", what, len(diffs), strings.Join(diffs[:min(len(diffs), 30)], "\n"))
	}
}

// toolEnv is a clean environment for a tool: its own HOME, no proxy.
func toolEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"HOME=" + home, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "TZ=UTC",
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache")}
}

// run runs a tool in dir and fails the test with its output if it fails.
func (c *toolCase) run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// compareObjectsWithMount downloads the whole bucket with aws s3 cp
// --sse-c and compares every object with the file of that name read
// through the mount (a symlink's object holds its target).
func compareObjectsWithMount(t *testing.T, s *server, bucket, mnt string) {
	t.Helper()
	local := t.TempDir()
	s.aws(t, append([]string{"s3", "cp", "--recursive", "s3://" + bucket + "/", local + "/"}, sse(secret)...)...)
	n := 0
	err := filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(local, p)
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		through := filepath.Join(mnt, rel)
		if target, err := os.Readlink(through); err == nil {
			if target != string(want) {
				t.Errorf("%s: the mount shows a link to %q, the object holds %q", rel, target, want)
			}
			return nil
		}
		f, err := os.Open(through)
		if err != nil {
			t.Errorf("%s: in the bucket, not readable through the mount: %v", rel, err)
			return nil
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			t.Errorf("%s: reading through the mount: %v", rel, err)
			return nil
		}
		if got := sha256.Sum256(want); hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(got[:]) {
			t.Errorf("%s: the object and the file read through the mount differ", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("aws s3 cp downloaded nothing")
	}
	t.Logf("%d objects downloaded with aws s3 cp --sse-c, each equal to its file through a fresh mount", n)
}
