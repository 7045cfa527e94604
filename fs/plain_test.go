package fs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// Anyone who can write to the bucket can store objects without the key.
// Such an object is readable, but no key holder wrote its metadata: it is
// a regular read-only file, whatever mode, owner or symlink flag it
// claims; a plaintext folder marker's mode is ignored too.
func TestAPlaintextObjectIsAReadOnlyFileWhateverItsMetadataSays(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("link", []byte("/etc/shadow"), map[string]string{"mode": "41471", "uid": "0", "gid": "0"}, "")                        // S_IFLNK|0777
	m.Seed("tool", []byte("#!/bin/sh\n"), map[string]string{"mode": "35309", "uid": "0", "gid": "0", "mtime": "1600000000"}, "") // setuid 0755
	m.Seed("open/", nil, map[string]string{"mode": "16895"}, "")                                                                 // 040777
	m.Seed("open/x", []byte("x"), nil, ourMD5)
	m.Seed("mine", []byte("m"), map[string]string{"mode": "33152", "uid": "1234", "gid": "1234"}, ourMD5) // 0600
	dir, f := testMountFS(t, m, "", time.Minute, func(o *Options) { o.OwnerFromMeta = true })

	st, err := os.Lstat(filepath.Join(dir, "link"))
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o444 {
		t.Fatalf("plaintext 'symlink': %v %v, want a regular file 0444", st.Mode(), err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "link")); err != nil || string(data) != "/etc/shadow" {
		t.Fatalf("reading it: %q %v", data, err)
	}
	var sys syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "tool"), &sys); err != nil {
		t.Fatal(err)
	}
	if sys.Mode != syscall.S_IFREG|0o444 || sys.Mtim.Sec != 1600000000 {
		t.Fatalf("plaintext setuid tool: mode %o uid %d mtime %d, want 0444 and its mtime", sys.Mode, sys.Uid, sys.Mtim.Sec)
	}
	if st, err := os.Stat(filepath.Join(dir, "open")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("folder with a plaintext 0777 marker: %v %v, want 0755", st.Mode(), err)
	}
	if err := syscall.Stat(filepath.Join(dir, "mine"), &sys); err != nil || sys.Mode&0o7777 != 0o600 || sys.Uid != 1234 {
		t.Fatalf("an encrypted file's metadata is kept: mode %o uid %d %v", sys.Mode, sys.Uid, err)
	}
	if n := f.PlaintextSeen(); n != 3 {
		t.Fatalf("%d plaintext objects counted, want 3", n)
	}
}

// With RefusePlaintext, a plaintext object is hidden once a HEAD has shown
// it (the listing alone does not tell), and cannot be opened.
func TestRefusePlaintextHidesPlaintextObjects(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("planted", []byte("p"), nil, "")
	m.Seed("mine", []byte("m"), nil, ourMD5)
	dir, f := testMountFS(t, m, "", time.Minute, func(o *Options) { o.RefusePlaintext = true })
	if got := names(t, dir); !slices.Equal(got, []string{"mine", "planted"}) {
		t.Fatalf("before any HEAD the listing shows %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of a plaintext object: %v, want ENOENT", err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open of a plaintext object: %v, want ENOENT", err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"mine"}) {
		t.Fatalf("once known, the listing shows %v", got)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "mine")); err != nil || string(data) != "m" {
		t.Fatalf("an encrypted file: %q %v", data, err)
	}
	for _, c := range m.Calls() {
		if c.Op == "read" && c.Key == "planted" {
			t.Fatal("the refused object was read")
		}
	}
	if f.PlaintextSeen() != 1 {
		t.Fatalf("counted %d", f.PlaintextSeen())
	}
}
