//go:build integration

package integration

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// soakWorker applies ops random operations to the tree under mnt and to a
// shadow copy of it on local disk, and records every difference: an error on
// one side only, another errno, other bytes. Names come from a small set, so
// that operations meet each other's files (and their absence) often.
type soakWorker struct {
	mnt, shadow string
	rng         *rand.Rand
	Counts      map[string]int
	Mismatches  []string
	Checks      int       // whole-tree comparisons (after each fsync)
	trace       io.Writer // each operation before it starts, to find a hang
}

var (
	soakDirs  = []string{"", "d0", "d1", "d0/e"}
	soakFiles = []string{"f0", "f1", "f2", "f3", "f4", "f5"}
)

func newSoakWorker(mnt, shadow string, seed int64) *soakWorker {
	return &soakWorker{mnt: mnt, shadow: shadow, rng: rand.New(rand.NewSource(seed)), Counts: map[string]int{}}
}

func (w *soakWorker) file() string {
	return filepath.Join(soakDirs[w.rng.Intn(len(soakDirs))], soakFiles[w.rng.Intn(len(soakFiles))])
}

func (w *soakWorker) dir() string { return soakDirs[1+w.rng.Intn(len(soakDirs)-1)] }

// size draws a file size: mostly small, some of several blocks, now and
// then one large enough to stream as a multipart upload.
func (w *soakWorker) size() int {
	switch r := w.rng.Intn(100); {
	case r < 70:
		return w.rng.Intn(16 << 10)
	case r < 97:
		return w.rng.Intn(1 << 20)
	case r < 99:
		return 1<<20 + w.rng.Intn(10<<20)
	default:
		return 17<<20 + w.rng.Intn(4<<20)
	}
}

func (w *soakWorker) bytes(n int) []byte {
	b := make([]byte, n)
	w.rng.Read(b)
	return b
}

// both runs f on the mount and on the shadow and compares the outcomes.
func (w *soakWorker) both(op, name string, f func(root string) ([]byte, error)) {
	w.Counts[op]++
	if w.trace != nil {
		fmt.Fprintln(w.trace, op, name)
	}
	got, gerr := f(w.mnt)
	want, werr := f(w.shadow)
	if errnoOf(gerr) != errnoOf(werr) {
		w.mismatch("%s %s: mount says %v, local disk %v", op, name, gerr, werr)
		return
	}
	if !bytes.Equal(got, want) {
		w.mismatch("%s %s: mount gives %d bytes, local disk %d, not the same", op, name, len(got), len(want))
	}
}

func (w *soakWorker) mismatch(format string, args ...any) {
	w.Mismatches = append(w.Mismatches, fmt.Sprintf(format, args...))
}

func errnoOf(err error) error {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}

// step does one random operation.
func (w *soakWorker) step() {
	name := w.file()
	switch r := w.rng.Intn(100); {
	case r < 18:
		data := w.bytes(w.size())
		w.both("create", name, func(root string) ([]byte, error) {
			return nil, os.WriteFile(filepath.Join(root, name), data, 0o644)
		})
	case r < 32:
		off, data := int64(w.rng.Intn(1<<20)), w.bytes(1+w.rng.Intn(64<<10))
		w.both("write", name, func(root string) ([]byte, error) {
			return nil, withFile(filepath.Join(root, name), os.O_WRONLY, func(f *os.File) error {
				_, err := f.WriteAt(data, off)
				return err
			})
		})
	case r < 40:
		data := w.bytes(w.rng.Intn(32 << 10))
		w.both("append", name, func(root string) ([]byte, error) {
			return nil, withFile(filepath.Join(root, name), os.O_WRONLY|os.O_APPEND, func(f *os.File) error {
				_, err := f.Write(data)
				return err
			})
		})
	case r < 47:
		n := int64(w.rng.Intn(1 << 20))
		w.both("truncate", name, func(root string) ([]byte, error) {
			return nil, os.Truncate(filepath.Join(root, name), n)
		})
	case r < 56:
		to := w.file()
		w.both("rename", name+" "+to, func(root string) ([]byte, error) {
			return nil, os.Rename(filepath.Join(root, name), filepath.Join(root, to))
		})
	case r < 62:
		w.both("unlink", name, func(root string) ([]byte, error) {
			return nil, os.Remove(filepath.Join(root, name))
		})
	case r < 67:
		d := w.dir()
		w.both("mkdir", d, func(root string) ([]byte, error) {
			return nil, os.Mkdir(filepath.Join(root, d), 0o755)
		})
	case r < 70:
		d := w.dir()
		w.both("rmdir", d, func(root string) ([]byte, error) {
			return nil, syscall.Rmdir(filepath.Join(root, d))
		})
	case r < 82:
		off, n := int64(w.rng.Intn(2<<20)), w.rng.Intn(256<<10)
		w.both("read", name, func(root string) ([]byte, error) {
			var buf []byte
			err := withFile(filepath.Join(root, name), os.O_RDONLY, func(f *os.File) error {
				buf = make([]byte, n)
				k, err := f.ReadAt(buf, off)
				buf = buf[:k]
				if err == io.EOF {
					err = nil
				}
				return err
			})
			return buf, err
		})
	case r < 90:
		w.both("stat", name, func(root string) ([]byte, error) {
			fi, err := os.Stat(filepath.Join(root, name))
			if err != nil {
				return nil, err
			}
			return []byte(fmt.Sprint(fi.IsDir(), fi.Size())), nil
		})
	default:
		w.both("fsync", name, func(root string) ([]byte, error) {
			return nil, withFile(filepath.Join(root, name), os.O_RDWR, (*os.File).Sync)
		})
		w.Checks++
		w.compareTrees()
	}
}

func withFile(p string, flag int, f func(*os.File) error) error {
	fh, err := os.OpenFile(p, flag, 0)
	if err != nil {
		return err
	}
	err = f(fh)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// compareTrees checks the whole tree under the mount against the shadow.
func (w *soakWorker) compareTrees() {
	for _, d := range diffTrees(w.mnt, w.shadow) {
		w.mismatch("tree: %s", d)
	}
}

// treeOf maps each path under root to "dir" or the sha256 of the file.
func treeOf(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = fmt.Sprintf("%d bytes %x", len(data), sha256.Sum256(data))
		return nil
	})
	return out, err
}

// diffTrees lists the differences between the tree at got and at want.
func diffTrees(got, want string) []string {
	g, err := treeOf(got)
	if err != nil {
		return []string{"walking " + got + ": " + err.Error()}
	}
	wt, err := treeOf(want)
	if err != nil {
		return []string{"walking " + want + ": " + err.Error()}
	}
	var diffs []string
	for p, v := range wt {
		if g[p] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q, want %q%s", p, orNone(g[p]), v, whereDiffer(filepath.Join(got, p), filepath.Join(want, p))))
		}
	}
	for p, v := range g {
		if _, ok := wt[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %q, should not exist", p, v))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func orNone(s string) string {
	if s == "" {
		return "missing"
	}
	return s
}

// whereDiffer describes where two files of one size differ, to tell a
// shifted, zeroed or stale range apart.
func whereDiffer(a, b string) string {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil || len(x) != len(y) {
		return ""
	}
	first, last, zeros := -1, -1, 0
	for i := range x {
		if x[i] != y[i] {
			if first < 0 {
				first = i
			}
			last = i
			if x[i] == 0 {
				zeros++
			}
		}
	}
	return fmt.Sprintf(" (bytes %d..%d differ, %d of them zero where the file is not)", first, last, zeros)
}
