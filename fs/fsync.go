package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/ssecfs/ssecfs/stage"
)

var _ = (fusefs.NodeFsyncer)((*Dir)(nil))

// Fsync of a folder (borg, restic and most tools that rename a file into
// place call it) returns once what waits directly in the folder is in the
// bucket: files written or changed there, renamed into it, or renamed out
// of it (their old objects are deleted once they are uploaded under their
// new names). The promise of a file's fsync, not recursive. Everything
// else of a folder (mkdir, unlink, rmdir, symlinks, renames of uploaded
// files, its own attributes) reaches the bucket before its call returns.
// A file held open for writing is left to its own fsync or close: a
// folder fsync of a tool writing several files at once would upload each
// of them half-written, then again.
func (d *Dir) Fsync(ctx context.Context, fh fusefs.FileHandle, flags uint32) syscall.Errno {
	if d.fsys.stage == nil {
		return 0
	}
	in := stage.KeysIn(d.Prefix())
	res := d.fsys.stage.Sync(context.WithoutCancel(ctx), stage.Selection{Name: in, OldName: in})
	if res.Err != nil {
		d.fsys.log.Error("folder fsync: files are not in the bucket", "prefix", d.Prefix(), "failed", len(res.Failed), "err", res.Err)
		return toErrno(res.Err)
	}
	return 0
}
