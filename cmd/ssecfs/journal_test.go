package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// The journal's default folder is ~/.local/state/ssecfs/journal/BUCKET-HASH
// (XDG_STATE_HOME honoured), one per endpoint, bucket and prefix, so that a
// remount finds what a crash left; it is made 0700; --journal-dir moves it.
func TestTheJournalFolderIsOnePerEndpointBucketAndPrefix(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	dirFor := func(c *mountConfig, endpoint string) string { return journalFor(c, journalScope(c, endpoint)) }
	c := &mountConfig{bucket: "b", prefix: "p/"}
	dir := dirFor(c, "https://s3.example")
	if filepath.Dir(dir) != filepath.Join(state, "ssecfs", "journal") || !strings.HasPrefix(filepath.Base(dir), "b-") {
		t.Fatalf("journal folder %s", dir)
	}
	if again := dirFor(&mountConfig{bucket: "b", prefix: "p/"}, "https://s3.example"); again != dir {
		t.Fatalf("the same bucket and prefix found %s, then %s", dir, again)
	}
	for _, other := range []string{
		dirFor(&mountConfig{bucket: "b", prefix: "q/"}, "https://s3.example"),
		dirFor(&mountConfig{bucket: "b", prefix: "p/"}, "https://other.example"),
		dirFor(&mountConfig{bucket: "c", prefix: "p/"}, "https://s3.example"),
	} {
		if other == dir {
			t.Fatalf("another prefix, endpoint or bucket shares %s", dir)
		}
	}
	m, err := stage.Open(stage.Config{Dir: dir, Key: make([]byte, 32),
		Store: memstore.New("k")})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("journal folder mode: %v %v", st.Mode(), err)
	}
	moved := &mountConfig{bucket: "b", prefix: "p/", journalDir: "/elsewhere"}
	if got := dirFor(moved, "https://s3.example"); filepath.Dir(got) != "/elsewhere" {
		t.Fatalf("--journal-dir: %s", got)
	}
}
