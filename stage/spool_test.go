package stage

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// A file waiting for upload with no handle open holds no descriptor: a
// copy of 100,000 small files that outruns its uploads must not need
// 100,000 (the hard limit is often far lower). Its bytes still read back
// and upload.
func TestWaitingFilesHoldNoDescriptor(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, time.Hour)
	before := openFDs(t)
	for i := range 200 {
		writeFile(t, mgr, fmt.Sprintf("f%03d", i), []byte(fmt.Sprintf("file %d", i)))
	}
	if grew := openFDs(t) - before; grew > 10 {
		t.Fatalf("200 waiting files hold %d more descriptors", grew)
	}
	e := mgr.Hold("f007", false)
	buf := make([]byte, 6)
	if _, err := e.ReadAt(ctx, buf, 0); err != nil || string(buf) != "file 7" {
		t.Fatalf("read back %q, %v", buf, err)
	}
	e.Release(false)
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	objectIs(t, m, "f199", "file 199")
	mgr.Close()
}
