package ns

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// BenchmarkCopyInSmallFiles is cp -r of many small files as the front end
// sees it, without FUSE or a network: per file a lookup that finds nothing,
// a create, a write and a close, in folders of 100, each folder listed
// once as cp's own readdir would; the files wait out the write-back window
// (an hour here), so they all stay waiting, as when a copy outruns its
// uploads. files/s should not fall with the number of files waiting.
//
//	go test -run '^$' -bench CopyInSmallFiles -benchtime 1x ./ns
func BenchmarkCopyInSmallFiles(b *testing.B) {
	for _, files := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(files), func(b *testing.B) {
			for range b.N {
				n := newNS(b, memstore.New(ourMD5), func(o *Options) { o.Journal.Window = time.Hour })
				ctx := context.Background()
				data := []byte("a small file\n")
				start := time.Now()
				for i := range files {
					dir := fmt.Sprintf("d%04d/", i/100)
					d := n.Folder(dir)
					if i%100 == 0 {
						if _, err := d.List(ctx); err != nil {
							b.Fatal(err)
						}
					}
					name := fmt.Sprintf("f%03d", i%100)
					if _, err := d.Find(ctx, name); !errors.Is(err, store.ErrNotFound) {
						b.Fatalf("lookup of a new file: %v", err)
					}
					e, err := n.Stage().OpenFile(dir+name, nil, stage.Attrs{Mtime: start, Mode: 0o644}, true)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := e.WriteAt(ctx, data, 0); err != nil {
						b.Fatal(err)
					}
					e.Release(true)
				}
				b.ReportMetric(float64(files)/time.Since(start).Seconds(), "files/s")
			}
		})
	}
}
