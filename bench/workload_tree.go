package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// A tree of many small files: treeDirs folders of treeFilesPerDir files of
// treeFileSize random bytes, as a source folder of documents or code.
const (
	treeDirs        = 10
	treeFilesPerDir = 100
	treeFileSize    = 16 << 10
)

type tree struct {
	dir      string            // the local copy, the source of every write
	files    map[string][]byte // path relative to dir → content
	fileSize int64
}

// newTree writes the tree under work/tree. The files keep the mtimes they
// get when written (nanoseconds, as any program leaves them).
func newTree(work string) (*tree, error) {
	return newTreeOf(filepath.Join(work, "tree"), treeDirs, treeFilesPerDir, treeFileSize)
}

// A backup's first copy: backupFileSize files (photos, videos, archives)
// of -size in all, more than the journal holds when the journal is small
// (-ssecfs-options "--journal-size 64M") and the uplink slow (-uplink).
const backupFileSize = 8 << 20

func newBackupTree(work string, size int64) (*tree, error) {
	return newTreeOf(filepath.Join(work, "backup"), 1, int(max(size/backupFileSize, 1)), backupFileSize)
}

func newTreeOf(root string, dirs, filesPerDir int, fileSize int64) (*tree, error) {
	t := &tree{dir: root, files: map[string][]byte{}, fileSize: fileSize}
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	src := rand.NewChaCha8(seed)
	for d := range dirs {
		dir := fmt.Sprintf("dir-%d", d)
		if err := os.MkdirAll(filepath.Join(t.dir, dir), 0o755); err != nil {
			return nil, err
		}
		for f := range filesPerDir {
			rel := fmt.Sprintf("%s/file-%03d.dat", dir, f)
			b := make([]byte, fileSize)
			src.Read(b)
			if err := os.WriteFile(filepath.Join(t.dir, rel), b, 0o644); err != nil {
				return nil, err
			}
			t.files[rel] = b
		}
	}
	return t, nil
}

func (t *tree) count() int { return len(t.files) }

func (t *tree) bytes() int64 { return int64(len(t.files)) * t.fileSize }

func (t *tree) label() string { return fmt.Sprintf("%d × %s", t.count(), formatSize(t.fileSize)) }

// sizes is key → size of the tree's objects under prefix.
func (t *tree) sizes(prefix string) map[string]int64 {
	m := map[string]int64{}
	for rel, b := range t.files {
		m[prefix+"/"+rel] = int64(len(b))
	}
	return m
}

// contents is key → bytes of the tree's objects under prefix.
func (t *tree) contents(prefix string) map[string][]byte {
	m := map[string][]byte{}
	for rel, b := range t.files {
		m[prefix+"/"+rel] = b
	}
	return m
}

// checkStored checks the tree's objects under prefix: encrypted, complete,
// the same bytes.
func (t *tree) checkStored(ctx context.Context, s3 *objStore, prefix string) error {
	if err := s3.checkEncrypted(ctx, t.sizes(prefix)); err != nil {
		return err
	}
	return s3.sameObjects(ctx, t.contents(prefix))
}

// sameAs checks a local copy of the tree: the same files, the same bytes.
func (t *tree) sameAs(dir string) error {
	seen := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		want, ok := t.files[rel]
		if !ok {
			return fmt.Errorf("%s: %w (a file that was not written)", rel, errBytes)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s: %w", rel, errBytes)
		}
		seen++
		return nil
	})
	if err == nil && seen != t.count() {
		err = fmt.Errorf("%d of %d files copied: %w", seen, t.count(), errBytes)
	}
	return err
}

// ---------------------------------------------------------------------------
// cp -r of the tree into the mount until durable, and out of it cold.

// treeCopier is what the two cp -r workloads need from a tool.
type treeCopier interface {
	// CopyIn copies the local folder src to prefix (cp -r src MOUNT/prefix;
	// aws s3 cp --recursive). Tool.Durable follows.
	CopyIn(ctx context.Context, src, prefix string) error
	// CopyOut copies prefix to the new local folder dst.
	CopyOut(ctx context.Context, prefix, dst string) error
}

type copyIn struct {
	tree *tree
	s3   *objStore
	// last is, per tool, the prefix of its last copy that passed the
	// checks: copyOut reads it back.
	last map[string]string
}

func (w *copyIn) Name() string { return "cp -r in " + w.tree.label() }
func (w *copyIn) Bytes() int64 { return w.tree.bytes() }
func (w *copyIn) Files() int   { return w.tree.count() }
func (w *copyIn) Close()       {}

func (w *copyIn) Prepare(ctx context.Context, t *Target) error {
	w.s3, w.last = t.S3, map[string]string{}
	return nil
}

// Run copies the tree to a new prefix, times it until durable, then checks
// every object.
func (w *copyIn) Run(ctx context.Context, tool Tool) Outcome {
	tc, ok := tool.(treeCopier)
	if !ok {
		return lacks(tool, "copy folders")
	}
	prefix := "cpin-" + slug(tool.Name()) + "-" + randomString(6)
	o := w.tree.writeDurable(ctx, tool, w.s3, prefix, func() error { return tc.CopyIn(ctx, w.tree.dir, prefix) })
	if o.Status == OK {
		w.last[tool.Name()] = prefix
	}
	return o
}

// writeDurable times write of the tree under prefix and the tool's
// Durable, then checks what the bucket holds.
func (t *tree) writeDurable(ctx context.Context, tool Tool, s3 *objStore, prefix string, write func() error) Outcome {
	sw := watchOf(ctx)
	sw.start(ctx)
	if err := write(); err != nil {
		return failed(err)
	}
	if err := tool.Durable(ctx, t.sizes(prefix)); err != nil {
		return failed(fmt.Errorf("until durable: %w", err))
	}
	dur := sw.stop(ctx)
	if err := t.checkStored(ctx, s3, prefix); err != nil {
		return checked(err)
	}
	return Outcome{Status: OK, Dur: dur}
}

// copyOut reads back, through the same tool, the tree it wrote in copyIn,
// so that the runner must run copyIn first.
type copyOut struct {
	in   *copyIn
	work string
}

func (w *copyOut) Name() string { return "cp -r out " + w.in.tree.label() }
func (w *copyOut) Bytes() int64 { return w.in.Bytes() }
func (w *copyOut) Files() int   { return w.in.Files() }
func (w *copyOut) Close()       {}

func (w *copyOut) Prepare(ctx context.Context, t *Target) error { return nil }

func (w *copyOut) Run(ctx context.Context, tool Tool) Outcome {
	tc, ok := tool.(treeCopier)
	if !ok {
		return lacks(tool, "copy folders")
	}
	prefix := w.in.last[tool.Name()]
	if prefix == "" {
		return failed(errors.New("nothing to read: no cp -r in of this tool passed"))
	}
	dst := filepath.Join(w.work, "copy-out-"+randomString(6))
	defer os.RemoveAll(dst)
	sw := watchOf(ctx)
	sw.start(ctx)
	if err := tc.CopyOut(ctx, prefix, dst); err != nil {
		return failed(err)
	}
	dur := sw.stop(ctx)
	if err := w.in.tree.sameAs(dst); err != nil {
		return checked(err)
	}
	return Outcome{Status: OK, Dur: dur}
}

// ---------------------------------------------------------------------------
// rsync -a of the unchanged tree onto its copy in the bucket: a no-op.

// treeSyncer is what the rsync workload needs from a tool.
type treeSyncer interface {
	// Sync makes prefix like the local folder src: rsync -ai src/
	// MOUNT/prefix/ (aws s3 sync). It returns the changes reported, one
	// line each: none when nothing differed.
	Sync(ctx context.Context, src, prefix string) ([]string, error)
}

type rsyncNoop struct {
	tree   *tree
	s3     *objStore
	seeded map[string]string // tool → its copy
}

func (w *rsyncNoop) Name() string { return fmt.Sprintf("rsync -a no-op, %d files", w.tree.count()) }
func (w *rsyncNoop) Bytes() int64 { return w.tree.bytes() }
func (w *rsyncNoop) Files() int   { return w.tree.count() }
func (w *rsyncNoop) Close()       {}

func (w *rsyncNoop) Prepare(ctx context.Context, t *Target) error {
	w.s3, w.seeded = t.S3, map[string]string{}
	return nil
}

// Seed copies the tree with the tool itself (rsync -a; aws s3 sync), so
// that the objects carry the tool's own metadata (modes, mtimes), waits
// until it is durable and checks it. Not timed.
func (w *rsyncNoop) Seed(ctx context.Context, tool Tool) Outcome {
	ts, ok := tool.(treeSyncer)
	if !ok {
		return lacks(tool, "sync folders")
	}
	prefix := "rsync-" + slug(tool.Name())
	if _, err := ts.Sync(ctx, w.tree.dir, prefix); err != nil {
		return failed(err)
	}
	if err := tool.Durable(ctx, w.tree.sizes(prefix)); err != nil {
		return failed(fmt.Errorf("until durable: %w", err))
	}
	if err := w.tree.checkStored(ctx, w.s3, prefix); err != nil {
		return checked(err)
	}
	w.seeded[tool.Name()] = prefix
	return Outcome{Status: OK}
}

// Run times the second rsync, on a fresh mount, which should find nothing
// to do. One that reports changes is NotNoop: the tool did not keep what
// rsync -a compares (size, mtime, mode).
func (w *rsyncNoop) Run(ctx context.Context, tool Tool) Outcome {
	ts, ok := tool.(treeSyncer)
	if !ok {
		return lacks(tool, "sync folders")
	}
	prefix := w.seeded[tool.Name()]
	if prefix == "" {
		return failed(errors.New("the files were not written before the runs"))
	}
	sw := watchOf(ctx)
	sw.start(ctx)
	changes, err := ts.Sync(ctx, w.tree.dir, prefix)
	dur := sw.stop(ctx)
	switch {
	case err != nil:
		return failed(err)
	case len(changes) > 0:
		return Outcome{Status: NotNoop, Dur: dur, Changes: len(changes),
			Err: fmt.Errorf("first changes: %s", strings.Join(changes[:min(3, len(changes))], "; "))}
	}
	return Outcome{Status: OK, Dur: dur}
}
