package fs

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// BenchmarkWalkMemory reports the daemon's memory per object walked, on an
// in-memory bucket of folders of 1,000 files (the million does not fit a
// real server on this machine in reasonable time): live heap after a
// collection, less what it was right after mounting, divided by the
// objects. "find" reads every folder; "stat" then stats every file, as
// rsync's receiver and `ls -lR` do (a lookup, a node in go-fuse and in the
// kernel, a metadata answer per file); "forgotten" is after the kernel
// dropped its cached names (drop_caches), which it also does under memory
// pressure: what stays is the namespace's own bounded caches.
//
//	go test -run '^$' -bench WalkMemory -benchtime 1x -timeout 0 ./fs
//	SSECFS_WALK_OBJECTS=1000000 go test ... (default: 100,000)
func BenchmarkWalkMemory(b *testing.B) {
	objects := 100_000
	if v := os.Getenv("SSECFS_WALK_OBJECTS"); v != "" {
		fmt.Sscan(v, &objects)
	}
	const perFolder = 1000
	m := memstore.New(ourMD5)
	data := make([]byte, 100)
	for i := range objects {
		m.Seed(fmt.Sprintf("d%04d/f%04d", i/perFolder, i%perFolder), data,
			map[string]string{"mtime": fmt.Sprint(1600000000+i, ".5"), "mode": "0644"}, ourMD5)
	}
	for range b.N {
		dir, _ := testMountFS(b, m, "", time.Hour)
		heap := func() uint64 {
			m.ResetCalls() // the store's record of calls is not the daemon's
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapAlloc
		}
		base := heap()
		run := func(name string, args ...string) {
			start := time.Now()
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", name, err, out)
			}
			h := heap()
			b.Logf("%s: %.1f s, live heap %d MiB over the mount's, %d bytes per object",
				name, time.Since(start).Seconds(), (h-base)>>20, int64(h-base)/int64(objects))
			b.ReportMetric(float64(int64(h-base))/float64(objects), name+"-B/object")
		}
		run("find", "sh", "-c", "find "+dir+" >/dev/null")
		run("stat", "sh", "-c", "find "+dir+" -type f -printf '%s %T@ %m\\n' >/dev/null")
		run("forgotten", "sh", "-c", "sync; echo 2 >/proc/sys/vm/drop_caches")
	}
}
