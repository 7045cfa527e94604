package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Past its bound the log moves to LOG.1 (LOG.1 to LOG.2 ...), no file
// grows past the bound, at most keep old ones stay, and no line is lost
// or cut in two until the oldest is dropped.
func TestTheLogIsRotatedAtItsBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mnt-b.log")
	const bound, keep = 1000, 2
	l, err := openLogFile(p, bound, keep, false)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := 0; i < 100; i++ {
		line := fmt.Sprintf("time=now level=INFO msg=line n=%03d\n", i) // 37 bytes
		lines = append(lines, line)
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	var kept string
	for _, name := range []string{p + ".2", p + ".1", p} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) > bound {
			t.Errorf("%s: %d bytes, past the bound %d", name, len(b), bound)
		}
		kept += string(b)
	}
	if _, err := os.Stat(p + ".3"); err == nil {
		t.Error("more than keep rotated files")
	}
	// What is kept is the last lines, whole and in order.
	want := strings.Join(lines, "")
	if !strings.HasSuffix(want, kept) || !strings.HasPrefix(kept, "time=") || len(kept) < 2*bound {
		t.Fatalf("kept %d bytes, not the last whole lines:\n%s", len(kept), kept)
	}
	// Reopened, it goes on from its size.
	l, err = openLogFile(p, bound, keep, false)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	l.Write([]byte(strings.Repeat("x", bound-len(before)+1)))
	l.Close()
	if b, _ := os.ReadFile(p + ".1"); string(b) != string(before) {
		t.Error("a reopened log was not rotated at its bound")
	}
}
