package ns

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// What a bucket hands in, fuzzed (`make fuzz`; `make test` runs the seeds
// and 10 s of each target): object names from listings, and x-amz-meta
// values.

// FuzzObjectNames: whatever keys and common prefixes a listing holds,
// every name the folder shows can be a file name, and nothing panics.
func FuzzObjectNames(f *testing.F) {
	for _, s := range []string{"a", "dir/a", "dir/sub/", "a//b", "dir/./x", "dir/../x", "dir/x/", "x\x00y",
		"\xff\xfe", strings.Repeat("n", 256), "dir/", "dir//", "dir/a/b/", "é/ü"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	fsys := newNS(f, memstore.New(ourMD5), nil)
	f.Fuzz(func(t *testing.T, key string, isPrefix bool) {
		for _, prefix := range []string{"", "dir/"} {
			l := newListing(time.Time{})
			fsys.addEntry(l, prefix, store.Entry{Key: key, IsPrefix: isPrefix}, time.Now())
			for n := range l.entries {
				if NameProblem(n) != "" || strings.Contains(n, "/") {
					t.Fatalf("key %q under %q shows as the name %q", key, prefix, n)
				}
			}
		}
	})
}

// FuzzObjectMetadata: any x-amz-meta values give permission bits only
// (no file type, which decides the node), and an object stored without
// SSE-C is never a symlink nor keeps the mode it claims.
func FuzzObjectMetadata(f *testing.F) {
	for _, s := range [][4]string{
		{"1700000000.123456789", "33188", "1000", "1000"},
		{"1700000000", "0100644", "0", "0"},
		{"-1.5", "41471", "-1", "x"},
		{"99999999999999999999", "077777777777", "4294967296", ""},
		{"1.", "0", "", ""},
		{".5", "0x1ed", " 7 ", "+1"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	fsys := newNS(f, memstore.New(ourMD5), nil)
	f.Fuzz(func(t *testing.T, mtime, mode, uid, gid string) {
		meta := map[string]string{"mtime": mtime, "mode": mode, "uid": uid, "gid": gid}
		a := Attrs{Mode: 0o644}
		applyMeta(&a, meta)
		if a.Mode&^0o7777 != 0 {
			t.Fatalf("mode %q gave %o", mode, a.Mode)
		}
		if m, ok := parseMode(mode); ok && a.Symlink != (m&syscall.S_IFMT == syscall.S_IFLNK) {
			t.Fatalf("mode %q: symlink %v", mode, a.Symlink)
		}
		p := Attrs{Mode: 0o644}
		fsys.ApplyAttrs(&p, "k", store.Attrs{Meta: meta, Encryption: store.EncPlain})
		if p.Symlink || p.Mode != 0o644 || p.Owned || !p.Plain {
			t.Fatalf("plaintext object with %v: %+v", meta, p)
		}
	})
}
