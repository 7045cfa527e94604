package main

import (
	"context"
	"fmt"
	"path/filepath"
)

// ---------------------------------------------------------------------------
// A first backup: rsync -a of many small files into an empty folder, as a
// backup script's first night, timed until every file is in the bucket.

const (
	firstDirs        = 200
	firstFilesPerDir = 100
	firstFileSize    = 16 << 10
)

func newFirstTree(work string) (*tree, error) {
	return newTreeOf(filepath.Join(work, "first"), firstDirs, firstFilesPerDir, firstFileSize)
}

type firstBackup struct {
	tree *tree
	s3   *objStore
}

func (w *firstBackup) Name() string {
	return fmt.Sprintf("first backup: rsync -a of %s files of %s into an empty folder", thousands(w.tree.count()), formatSize(w.tree.fileSize))
}
func (w *firstBackup) Bytes() int64 { return w.tree.bytes() }
func (w *firstBackup) Files() int   { return w.tree.count() }
func (w *firstBackup) Close()       {}

func (w *firstBackup) Prepare(ctx context.Context, t *Target) error { w.s3 = t.S3; return nil }

// Run syncs the tree into a new folder (rsync -ai; aws s3 sync) and waits
// until it is durable, then checks every object and removes them.
func (w *firstBackup) Run(ctx context.Context, tool Tool) Outcome {
	ts, ok := tool.(treeSyncer)
	if !ok {
		return lacks(tool, "sync folders")
	}
	prefix := "first-" + slug(tool.Name()) + "-" + randomString(6)
	defer w.s3.remove(context.WithoutCancel(ctx), prefix+"/")
	return w.tree.writeDurable(ctx, tool, w.s3, prefix, func() error {
		_, err := ts.Sync(ctx, w.tree.dir, prefix)
		return err
	})
}

// ---------------------------------------------------------------------------
// Copies at scale: cp -r of 10,000 and of 100,000 small files, each timed
// until in the bucket. The mount's cost per waiting file must not grow with
// how many wait: the two rows' files/s are compared.

const (
	scaleSmall    = 10_000
	scaleBig      = 100_000
	scalePerDir   = 100
	scaleFileSize = 4 << 10
)

func newScaleTrees(work string) ([]*tree, error) {
	var out []*tree
	for _, n := range []int{scaleSmall, scaleBig} {
		t, err := newTreeOf(filepath.Join(work, fmt.Sprintf("scale-%d", n)), n/scalePerDir, scalePerDir, scaleFileSize)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
