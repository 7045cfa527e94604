package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

var _ = (fusefs.NodeAllocater)((*File)(nil))

// Allocate is fallocate(2) and posix_fallocate(3), which restic's restore,
// rsync --preallocate and databases call. Mode 0 grows the file to
// off+size if it is shorter (zeros, as a truncate up would);
// FALLOC_FL_KEEP_SIZE changes nothing. Neither reserves room: a bucket has
// no blocks to reserve, and the journal takes the bytes when they are
// written. Hole punching and the other modes answer EOPNOTSUPP, which the
// callers take as "not supported here" (glibc's posix_fallocate does not
// get there: it only uses mode 0).
func (f *File) Allocate(ctx context.Context, fh fusefs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	ctx = detach(ctx)
	h, ok := fh.(*handle)
	if !ok || !h.writer {
		return syscall.EBADF
	}
	switch mode {
	case 0:
		if err := h.entry.Extend(ctx, int64(off+size)); err != nil {
			return toErrno(err)
		}
		return 0
	case unix.FALLOC_FL_KEEP_SIZE:
		return 0
	}
	return syscall.EOPNOTSUPP
}
