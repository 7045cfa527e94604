//go:build integration

package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The system calls of a tool that keeps git packfiles, as traced on a
// mount: a pack and its index written in a temporary folder (the index
// synced, mapped and written through the mapping, then appended to),
// renamed out, and the folder removed. rmdir answered ENOTEMPTY: the
// index, renamed while waiting for upload, still had its old object in
// the folder.
func TestAPackfileWriterCanRemoveItsTemporaryFolder(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := s.mount(t, b)
		objects := filepath.Join(m.dir, "objects")
		tmp := filepath.Join(objects, "pack-tmp-1")
		mkdir(t, tmp)
		mkdir(t, filepath.Join(objects, "pack"))

		pack := random(t, 2<<20)
		f, err := os.Create(filepath.Join(tmp, "pack"))
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(pack); off += 8192 {
			if _, err := f.Write(pack[off:min(off+8192, len(pack))]); err != nil {
				t.Fatal(err)
			}
		}
		copy(pack[:32], "PACK header, rewritten at the end")
		if _, err := f.WriteAt(pack[:32], 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}

		idxPath := filepath.Join(tmp, "idx")
		idx, err := os.Create(idxPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := idx.Truncate(65536); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fdatasync(int(idx.Fd())); err != nil {
			t.Fatal(err)
		}
		mem, err := unix.Mmap(int(idx.Fd()), 0, 65536, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		table := random(t, 65536)
		copy(mem, table)
		if err := idx.Close(); err != nil { // the mapping stays
			t.Fatal(err)
		}
		idx, err = os.OpenFile(idxPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := idx.WriteString("trailer"); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fdatasync(int(idx.Fd())); err != nil {
			t.Fatal(err)
		}
		if err := idx.Close(); err != nil {
			t.Fatal(err)
		}

		for _, n := range []string{"pack", "idx"} {
			if err := os.Rename(filepath.Join(tmp, n), filepath.Join(objects, "pack", n)); err != nil {
				t.Fatal(err)
			}
		}
		if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
			t.Fatalf("the temporary folder lists %v (%v)", ents, err)
		}
		if err := os.Remove(tmp); err != nil {
			t.Fatalf("rmdir of the emptied temporary folder: %v", err)
		}
		if err := unix.Munmap(mem); err != nil {
			t.Fatal(err)
		}

		m.unmount(t)
		m = s.mount(t, b)
		wantIdx := append(table, "trailer"...)
		for n, want := range map[string][]byte{"pack": pack, "idx": wantIdx} {
			got, err := os.ReadFile(filepath.Join(m.dir, "objects/pack", n))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s through a fresh mount: %d bytes, want %d (%v)", n, len(got), len(want), err)
			}
		}
		if _, err := os.Stat(filepath.Join(m.dir, "objects/pack-tmp-1")); !os.IsNotExist(err) {
			t.Errorf("the temporary folder is still there: %v", err)
		}
	})
}
