package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"
)

// Nightly backups at scale: a tree of nightlyFiles small files in folders
// of nightlyPerDir, the same in the bucket and on local disk, walked as a
// nightly backup walks its target: rsync -a of the unchanged tree (a
// no-op), find, du -s, ls -lR. The bucket is kept between bench runs (it
// takes minutes to fill on RGW), filled once by the bench's own client, 64
// objects at a time, with the mtimes and modes rsync compares; the local
// copy is kept too. Both are made anew if the marker saying they are whole
// is missing.

const (
	nightlyPerDir   = 100
	nightlyFileSize = 1000
	nightlyMtime    = 1700000000 // seconds; file i gets nightlyMtime+i
	nightlyRoot     = "/var/tmp/ssecfs-bench-nightly"
)

// nightlySet is the tree: its local copy and, once Target ran, its bucket.
type nightlySet struct {
	files int
	local string // the local tree
}

func newNightlySet(files int) *nightlySet {
	return &nightlySet{files: files, local: filepath.Join(nightlyRoot, fmt.Sprintf("tree-%d", files))}
}

func (s *nightlySet) folders() int { return (s.files + nightlyPerDir - 1) / nightlyPerDir }

func (s *nightlySet) rel(i int) string {
	return fmt.Sprintf("dir-%04d/file-%03d.dat", i/nightlyPerDir, i%nightlyPerDir)
}

func (s *nightlySet) body(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("nightly %08d\n", i)), nightlyFileSize/17+1)[:nightlyFileSize]
}

// makeLocal writes the local tree unless a marker says it is whole:
// files 0644 with their mtimes, folders 0755 with nightlyMtime.
func (s *nightlySet) makeLocal() error {
	done := s.local + ".complete"
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	logf("writing the local tree of %d files (%s)", s.files, s.local)
	if err := os.RemoveAll(s.local); err != nil {
		return err
	}
	for i := range s.files {
		p := filepath.Join(s.local, s.rel(i))
		if i%nightlyPerDir == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(p, s.body(i), 0o644); err != nil {
			return err
		}
		mt := time.Unix(nightlyMtime+int64(i), 0)
		if err := os.Chtimes(p, mt, mt); err != nil {
			return err
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(s.local, "dir-*"))
	for _, d := range append(dirs, s.local) {
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
		if err := os.Chtimes(d, time.Unix(nightlyMtime, 0), time.Unix(nightlyMtime, 0)); err != nil {
			return err
		}
	}
	return os.WriteFile(done, nil, 0o644)
}

// Target returns the kept bucket, filled, with its secret, reached
// through srv (the proxy, with -latency); it is filled directly.
func (s *nightlySet) Target(ctx context.Context, srv *Server, name string) (*Target, error) {
	if err := s.makeLocal(); err != nil {
		return nil, err
	}
	bucket := fmt.Sprintf("ssecfs-nightly-%d", s.files)
	secretFile := filepath.Join(nightlyRoot, name+"-"+bucket+".secret")
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		secret = []byte(randomString(32))
		if err := writePrivate(secretFile, string(secret)); err != nil {
			return nil, err
		}
	}
	direct, err := loadServer(name)
	if err != nil {
		return nil, err
	}
	fill, err := newObjStore(direct, bucket, string(secret))
	if err != nil {
		return nil, err
	}
	const marker = "nightly.complete"
	if _, err := fill.c.StatObject(ctx, bucket, marker, minio.StatObjectOptions{ServerSideEncryption: fill.sse}); err != nil {
		if err := s.fill(ctx, fill); err != nil {
			return nil, err
		}
		if _, err := fill.c.PutObject(ctx, bucket, marker, bytes.NewReader(nil), 0,
			minio.PutObjectOptions{ServerSideEncryption: fill.sse}); err != nil {
			return nil, err
		}
	}
	s3, err := newObjStore(srv, bucket, string(secret))
	if err != nil {
		return nil, err
	}
	return &Target{Server: srv, Bucket: bucket, Secret: string(secret), S3: s3}, nil
}

// fill uploads the tree under nightly/, 64 objects at a time, with the
// metadata rsync compares (mtime, mode) as s3fs and rclone write it, and a
// marker per folder with its mtime and mode.
func (s *nightlySet) fill(ctx context.Context, o *objStore) error {
	logf("filling bucket %s with %d objects (kept for the next bench runs)", o.bucket, s.files)
	if err := o.c.MakeBucket(ctx, o.bucket, minio.MakeBucketOptions{}); err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code != "BucketAlreadyOwnedByYou" && resp.Code != "BucketAlreadyExists" {
			return err
		}
	}
	put := func(ctx context.Context, key string, body []byte, mtime int64, mode string) error {
		_, err := o.c.PutObject(ctx, o.bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{
			ServerSideEncryption: o.sse, DisableMultipart: true,
			UserMetadata: map[string]string{"mtime": fmt.Sprint(mtime), "mode": mode}})
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	var done atomic.Int64
	start := time.Now()
	g.Go(func() error { return put(gctx, "nightly/", nil, nightlyMtime, "16877") })
	for d := range s.folders() {
		g.Go(func() error { return put(gctx, fmt.Sprintf("nightly/dir-%04d/", d), nil, nightlyMtime, "16877") })
	}
	for i := range s.files {
		g.Go(func() error {
			if n := done.Add(1); n%20000 == 0 {
				logf("%d objects put (%.0f/s)", n, float64(n)/time.Since(start).Seconds())
			}
			return put(gctx, "nightly/"+s.rel(i), s.body(i), nightlyMtime+int64(i), "33188")
		})
	}
	return g.Wait()
}

// nightlyWalker is what the nightly workloads need from a tool: one walk
// of the tree under prefix, its output one line each.
type nightlyWalker interface {
	Walk(ctx context.Context, op, src, prefix string) ([]string, error)
}

// nightlyOp is one walk of the tree, timed on a fresh mount.
type nightlyOp struct {
	set *nightlySet
	op  string // rsync, find, du, ls
}

// nightlyWalks are the walks of the nightly tree.
var nightlyWalks = []string{"rsync", "find", "du", "ls"}

func nightlyWorkloads(files int, walks []string) []Workload {
	set := newNightlySet(files)
	var out []Workload
	for _, op := range walks {
		out = append(out, &nightlyOp{set: set, op: op})
	}
	return out
}

func (w *nightlyOp) Name() string {
	what := map[string]string{"rsync": "nightly rsync -a no-op", "find": "find", "du": "du -s", "ls": "ls -lR"}[w.op]
	return fmt.Sprintf("%s, %d files in %d folders", what, w.set.files, w.set.folders())
}
func (w *nightlyOp) Bytes() int64 { return 0 }
func (w *nightlyOp) Files() int   { return w.set.files }
func (w *nightlyOp) Close()       {}

// Prepare: the kept bucket is the workload's own (keptBucket).
func (w *nightlyOp) Prepare(ctx context.Context, t *Target) error { return nil }

// keptBucket is a workload that runs in a bucket of its own, kept between
// bench runs, rather than in the run's bucket.
type keptBucket interface {
	Target(ctx context.Context, srv *Server, name string) (*Target, error)
}

func (w *nightlyOp) Target(ctx context.Context, srv *Server, name string) (*Target, error) {
	return w.set.Target(ctx, srv, name)
}

// Seed walks the tree once before the timed runs, so that a tool that
// keeps what it learnt between mounts (ssecfs) has done so: the nightly
// run after the first. Not timed.
func (w *nightlyOp) Seed(ctx context.Context, tool Tool) Outcome {
	if s, ok := tool.(*ssecfsTool); !ok || !s.keepState || w.op != "rsync" {
		return Outcome{Status: OK}
	}
	return w.Run(ctx, tool)
}

func (w *nightlyOp) Run(ctx context.Context, tool Tool) Outcome {
	nw, ok := tool.(nightlyWalker)
	if !ok {
		return lacks(tool, "walk a tree")
	}
	sw := watchOf(ctx)
	sw.start(ctx)
	out, err := nw.Walk(ctx, w.op, w.set.local, "nightly")
	dur := sw.stop(ctx)
	if err != nil {
		return failed(err)
	}
	if w.op == "rsync" {
		if len(out) > 0 {
			return Outcome{Status: NotNoop, Dur: dur, Changes: len(out),
				Err: fmt.Errorf("first changes: %s", strings.Join(out[:min(3, len(out))], "; "))}
		}
		return Outcome{Status: OK, Dur: dur}
	}
	files := 0
	for _, l := range out {
		if strings.HasSuffix(l, ".dat") {
			files++
		}
	}
	if files != w.set.files && !(w.op == "du" && len(out) > 0) {
		return failed(fmt.Errorf("%d files listed, want %d", files, w.set.files))
	}
	return Outcome{Status: OK, Dur: dur}
}

// Walk, on a mount, runs the program a user would.
func (m mountFS) Walk(ctx context.Context, op, src, prefix string) ([]string, error) {
	dir := filepath.Join(m.mp, prefix)
	var out string
	var err error
	switch op {
	case "rsync":
		out, err = m.run(ctx, "rsync", "-ai", src+"/", dir+"/")
	case "find":
		out, err = m.run(ctx, "find", dir)
	case "du":
		out, err = m.run(ctx, "du", "-s", dir)
	case "ls":
		out, err = m.run(ctx, "ls", "-lR", dir)
	default:
		return nil, fmt.Errorf("unknown walk %q", op)
	}
	return lines(out), err
}

// Walk, for aws: sync --dryrun for rsync (it compares size and mtime, and
// prints what it would upload), ls --recursive for the others.
func (a *awsTool) Walk(ctx context.Context, op, src, prefix string) ([]string, error) {
	if op == "rsync" {
		out, err := a.run(ctx, "sync", "--dryrun", "--no-progress", src, a.url(prefix+"/"))
		return lines(out), err
	}
	args := []string{"ls", "--recursive", a.url(prefix + "/")}
	if op == "du" {
		args = append(args, "--summarize")
	}
	out, err := a.exec(ctx, args...)
	return lines(out), err
}

// rawLister is the floor of every walk: the bench's own client (minio-go)
// listing the tree, a folder per request, rawParallel folders at a time,
// as ssecfs lists folders ahead of a walk. No FUSE, no program.
type rawLister struct{ t *Target }

const rawParallel = 16 // as ssecfs lists ahead (ns/listahead.go)

func newRawLister() Tool { return &rawLister{} }

func (r *rawLister) Name() string { return "raw listing" }
func (r *rawLister) Version(ctx context.Context) string {
	return "minio-go, " + fmt.Sprint(rawParallel) + " folders at a time"
}
func (r *rawLister) Setup(ctx context.Context, t *Target) error      { r.t = t; return nil }
func (r *rawLister) Mount(ctx context.Context) error                 { return nil }
func (r *rawLister) Durable(context.Context, map[string]int64) error { return nil }
func (r *rawLister) PeakRSS() int64                                  { return 0 }
func (r *rawLister) Unmount(ctx context.Context) error               { return nil }

// Walk lists every folder under prefix and returns the object keys; for
// rsync, whose floor is the same listing, it returns nothing (no change).
func (r *rawLister) Walk(ctx context.Context, op, src, prefix string) ([]string, error) {
	o := r.t.S3
	var mu sync.Mutex
	var keys []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rawParallel)
	var list func(p string) error
	list = func(p string) error {
		var found []string
		for obj := range o.c.ListObjects(gctx, o.bucket, minio.ListObjectsOptions{Prefix: p}) {
			switch {
			case obj.Err != nil:
				return obj.Err
			case strings.HasSuffix(obj.Key, "/") && obj.Key != p:
				// A folder listed from within a listing: in a slot of
				// its own if one is free, else here (waiting for a slot
				// held by a lister waiting for one would never end).
				sub := obj.Key
				if !g.TryGo(func() error { return list(sub) }) {
					if err := list(sub); err != nil {
						return err
					}
				}
			case obj.Key != p:
				found = append(found, obj.Key)
			}
		}
		mu.Lock()
		keys = append(keys, found...)
		mu.Unlock()
		return nil
	}
	if err := list(prefix + "/"); err != nil {
		return nil, err
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if op == "rsync" {
		return nil, nil // the listing is all a no-op needs to know
	}
	return keys, nil
}
