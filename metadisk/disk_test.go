package metadisk

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// logLines collects the log lines of a Disk.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func open(t *testing.T, dir string, key byte, max int64) (*Disk, *logLines) {
	t.Helper()
	lines := &logLines{}
	d, err := Open(Options{Dir: dir, Key: bytes.Repeat([]byte{key}, 32), Scope: "https://s3\nbucket\n", MaxBytes: max,
		Log: slog.New(slog.NewTextHandler(lines, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d, lines
}

func records(n int) []Record {
	lm := time.Date(2026, 12, 5, 5, 26, 5, 64_000_000, time.UTC)
	var out []Record
	for i := range n {
		name := fmt.Sprintf("file-%04d.jpg", i)
		out = append(out, Record{Name: name, Ver: Version{ETag: `"e` + name + `"`, Size: int64(i), LastModified: lm},
			Attrs: store.Attrs{Size: int64(i), ETag: `"e` + name + `"`, LastModified: lm.Truncate(time.Second),
				Meta: map[string]string{"mode": "33188", "mtime": "1700000000.123456789"}, Encryption: store.EncOurs}})
	}
	out = append(out, Record{Name: "plain", Attrs: store.Attrs{Encryption: store.EncPlain, Listed: true}})
	return out
}

func TestRecordsComeBackAsSaved(t *testing.T) {
	dir := t.TempDir()
	d, _ := open(t, dir, 1, 0)
	want := records(50)
	if err := d.Save("photos/2024/", want); err != nil {
		t.Fatal(err)
	}
	if d.Load("photos/2023/") != nil {
		t.Fatal("another folder's records loaded")
	}
	d2, lines := open(t, dir, 1, 0) // the next mount
	got := d2.Load("photos/2024/")
	if len(got) != len(want) {
		t.Fatalf("%d records back, want %d", len(got), len(want))
	}
	for _, r := range want {
		g := got[r.Name]
		if !g.Ver.Equal(r.Ver) || !g.Attrs.LastModified.Equal(r.Attrs.LastModified) {
			t.Fatalf("%s: %+v, want %+v", r.Name, g, r)
		}
		g.Ver.LastModified, g.Attrs.LastModified = r.Ver.LastModified, r.Attrs.LastModified
		if !reflect.DeepEqual(g, r) {
			t.Fatalf("%s: %+v, want %+v", r.Name, g, r)
		}
	}
	if lines.String() != "" {
		t.Fatalf("logged: %s", lines)
	}
	// The disk shows neither the folder's name nor its objects'.
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		b, _ := os.ReadFile(p)
		if strings.Contains(p, "photos") || bytes.Contains(b, []byte("file-00")) || bytes.Contains(b, []byte("33188")) {
			t.Errorf("%s shows a name or metadata", p)
		}
		return nil
	})
	if err := d2.Save("photos/2024/", nil); err != nil || d2.Load("photos/2024/") != nil || d2.Bytes() != 0 {
		t.Fatalf("a folder saved with no records kept its file (%v, %d bytes)", err, d2.Bytes())
	}
}

// A file that does not open is ignored with a log line and removed, and
// the folder is saved anew: under another key, torn, altered, or moved
// from another folder's place.
func TestAFileThatDoesNotOpenIsIgnoredWithALogLine(t *testing.T) {
	damage := map[string]func(d *Disk, path string, b []byte){
		"another key": func(d *Disk, path string, b []byte) {
			other, _ := open(t, t.TempDir(), 2, 0)
			other.Save("photos/", records(3))
			b, _ = os.ReadFile(filepath.Join(other.dir, other.fileName("photos/")))
			os.WriteFile(path, b, 0o600)
		},
		"truncated":    func(d *Disk, path string, b []byte) { os.WriteFile(path, b[:len(b)/2], 0o600) },
		"empty":        func(d *Disk, path string, b []byte) { os.WriteFile(path, nil, 0o600) },
		"flipped byte": func(d *Disk, path string, b []byte) { b[len(b)-40] ^= 1; os.WriteFile(path, b, 0o600) },
		"another folder's": func(d *Disk, path string, b []byte) {
			d.Save("videos/", records(3))
			b, _ = os.ReadFile(filepath.Join(d.dir, d.fileName("videos/")))
			os.WriteFile(path, b, 0o600)
		},
	}
	for what, spoil := range damage {
		t.Run(what, func(t *testing.T) {
			dir := t.TempDir()
			d, lines := open(t, dir, 1, 0)
			if err := d.Save("photos/", records(10)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, d.fileName("photos/"))
			b, _ := os.ReadFile(path)
			spoil(d, path, b)
			if got := d.Load("photos/"); got != nil {
				t.Fatalf("%d records from a spoilt file", len(got))
			}
			if !strings.Contains(lines.String(), "metadata cache file ignored and removed") {
				t.Fatalf("no log line: %q", lines)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatal("the spoilt file stayed")
			}
			if err := d.Save("photos/", records(10)); err != nil || len(d.Load("photos/")) != 11 {
				t.Fatal("the folder was not saved anew")
			}
		})
	}
}

// A mount under another key (the key was changed) drops the whole folder
// at once with one line: none of its files could open.
func TestAnotherKeysFolderIsDroppedAtOpen(t *testing.T) {
	dir := t.TempDir()
	d, _ := open(t, dir, 1, 0)
	d.Save("a/", records(3))
	d.Save("b/", records(3))
	d2, lines := open(t, dir, 2, 0)
	if !strings.Contains(lines.String(), "metadata cache written under another key") || d2.Bytes() != 0 {
		t.Fatalf("log %q, %d bytes kept", lines, d2.Bytes())
	}
	if d2.Load("a/") != nil {
		t.Fatal("another key's records loaded")
	}
	d3, lines := open(t, dir, 2, 0)
	if lines.String() != "" || d3.Load("a/") != nil {
		t.Fatalf("the next mount under the new key: %q", lines)
	}
}

// Past the bound, the folders used longest ago are dropped; a load counts
// as a use, and what a crash left half-written is removed at open.
func TestTheFilesStayWithinTheBound(t *testing.T) {
	dir := t.TempDir()
	d, _ := open(t, dir, 1, 0)
	d.Save("probe/", records(20))
	one := d.Bytes()
	d.Save("probe/", nil)

	d, _ = open(t, dir, 1, 5*one)
	for i := range 5 {
		if err := d.Save(fmt.Sprintf("f%d/", i), records(20)); err != nil {
			t.Fatal(err)
		}
	}
	if d.Load("f0/") == nil {
		t.Fatal("f0 gone before the bound was passed")
	}
	d.Save("f5/", records(20)) // past the bound: f1 and f2 go, f0 was used since
	for p, kept := range map[string]bool{"f0/": true, "f1/": false, "f2/": false, "f3/": true, "f4/": true, "f5/": true} {
		if (d.Load(p) != nil) != kept {
			t.Errorf("%s kept %v, want %v", p, !kept, kept)
		}
	}
	if d.Bytes() > 5*one {
		t.Fatalf("%d bytes kept, bound %d", d.Bytes(), 5*one)
	}
	os.WriteFile(filepath.Join(dir, "x.123.tmp"), []byte("half"), 0o600)
	d2, _ := open(t, dir, 1, 5*one)
	if _, err := os.Stat(filepath.Join(dir, "x.123.tmp")); !os.IsNotExist(err) {
		t.Fatal("a half-written file stayed")
	}
	if d2.Bytes() != d.Bytes() {
		t.Fatalf("reopened: %d bytes, had %d", d2.Bytes(), d.Bytes())
	}
}

// Whatever the bytes, decode returns records or an error, never a panic,
// and what encode made comes back.
func FuzzRecords(f *testing.F) {
	f.Add(encode(records(2)))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decode(b)
		if err != nil {
			return
		}
		again, err := decode(encode(recs))
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-encoded records do not decode: %v", err)
		}
	})
}
