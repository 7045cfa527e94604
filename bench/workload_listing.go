package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"
)

// Listing workloads: ls -l of one big folder, find over a tree of many
// folders. Both read names (and for ls -l sizes and times) of objects
// users put there with another client, cold.

const (
	listObjects    = 10000 // in each of the two sets
	findFolders    = 100
	listObjectSize = 1000 // bytes: a size ls -l must show right
)

// lister is what the listing workloads need from a tool.
type lister interface {
	// ListLong lists the folder prefix with sizes and times: ls -l
	// MOUNT/prefix (aws s3 ls s3://bucket/prefix/). One line per entry.
	ListLong(ctx context.Context, prefix string) ([]string, error)
	// Find lists everything under prefix: find MOUNT/prefix (aws s3 ls
	// --recursive). One line per entry.
	Find(ctx context.Context, prefix string) ([]string, error)
}

// objectSet is listObjects small objects under prefix, in folders folders
// (1: all in prefix itself), written once per bucket by Prepare.
type objectSet struct {
	prefix  string
	folders int
}

func (s objectSet) keys() []string {
	var keys []string
	per := listObjects / s.folders
	for i := range listObjects {
		if s.folders == 1 {
			keys = append(keys, fmt.Sprintf("%s/obj-%05d.dat", s.prefix, i))
		} else {
			keys = append(keys, fmt.Sprintf("%s/d-%03d/f-%04d.dat", s.prefix, i/per, i%per))
		}
	}
	return keys
}

// put writes the set with the bench's own client, SSE-C, 32 at a time:
// through one tool this would take minutes on RGW.
func (s objectSet) put(ctx context.Context, t *Target) error {
	logf("writing %d objects under %s/", listObjects, s.prefix)
	body := bytes.Repeat([]byte("ssecfs-bench "), listObjectSize/13+1)[:listObjectSize]
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, k := range s.keys() {
		g.Go(func() error {
			_, err := t.S3.c.PutObject(gctx, t.S3.bucket, k, bytes.NewReader(body), int64(len(body)),
				minio.PutObjectOptions{ServerSideEncryption: t.S3.sse, DisableMultipart: true})
			return err
		})
	}
	return g.Wait()
}

// counted checks a listing: listObjects lines name an object of the set
// (ending in .dat); with sizes, each of those shows listObjectSize.
func counted(out []string, sizes bool) error {
	n := 0
	for _, l := range out {
		if !strings.HasSuffix(l, ".dat") {
			continue
		}
		n++
		if sizes && !strings.Contains(" "+l+" ", " "+strconv.Itoa(listObjectSize)+" ") {
			return fmt.Errorf("%w: wrong size in %q", errBytes, l)
		}
	}
	if n != listObjects {
		return fmt.Errorf("%w: %d objects listed, %d there", errBytes, n, listObjects)
	}
	return nil
}

// listLong is ls -l of a folder of listObjects objects.
type listLong struct{ set objectSet }

func newListLong() *listLong { return &listLong{objectSet{prefix: "ls", folders: 1}} }

func (w *listLong) Name() string {
	return fmt.Sprintf("ls -l of %s objects", thousands(listObjects))
}
func (w *listLong) Bytes() int64 { return 0 }
func (w *listLong) Files() int   { return listObjects }
func (w *listLong) Close()       {}

func (w *listLong) Prepare(ctx context.Context, t *Target) error { return w.set.put(ctx, t) }

func (w *listLong) Run(ctx context.Context, tool Tool) Outcome {
	return runListing(ctx, tool, func(l lister) ([]string, error) { return l.ListLong(ctx, w.set.prefix) }, true)
}

// findTree is find over listObjects objects in findFolders folders.
type findTree struct{ set objectSet }

func newFindTree() *findTree { return &findTree{objectSet{prefix: "find", folders: findFolders}} }

func (w *findTree) Name() string {
	return fmt.Sprintf("find, %s objects in %d folders", thousands(listObjects), findFolders)
}
func (w *findTree) Bytes() int64 { return 0 }
func (w *findTree) Files() int   { return listObjects }
func (w *findTree) Close()       {}

func (w *findTree) Prepare(ctx context.Context, t *Target) error { return w.set.put(ctx, t) }

func (w *findTree) Run(ctx context.Context, tool Tool) Outcome {
	return runListing(ctx, tool, func(l lister) ([]string, error) { return l.Find(ctx, w.set.prefix) }, false)
}

// runListing times one listing and checks what it showed.
func runListing(ctx context.Context, tool Tool, list func(lister) ([]string, error), sizes bool) Outcome {
	l, ok := tool.(lister)
	if !ok {
		return lacks(tool, "list folders")
	}
	sw := watchOf(ctx)
	sw.start(ctx)
	out, err := list(l)
	dur := sw.stop(ctx)
	if err != nil {
		return failed(err)
	}
	if err := counted(out, sizes); err != nil {
		return checked(err)
	}
	return Outcome{Status: OK, Dur: dur}
}

// thousands writes n with a comma every three digits: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
