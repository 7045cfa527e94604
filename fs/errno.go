package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/ssecfs/ssecfs/ns"
	"github.com/ssecfs/ssecfs/store"
)

// plainErrno is what open and readlink of a refused plaintext object
// answer (ns/plain.go).
const plainErrno = syscall.EACCES

// toErrno is the one place where errors become errno values.
func toErrno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrNoBucket):
		return syscall.ENOENT
	case errors.Is(err, store.ErrOtherKey), errors.Is(err, store.ErrAccessDenied),
		errors.Is(err, store.ErrBadCredentials):
		return syscall.EACCES
	case errors.Is(err, store.ErrChanged):
		return syscall.ESTALE
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	case errors.Is(err, ns.ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, ns.ErrBadName), errors.Is(err, ns.ErrIntoSelf):
		return syscall.EINVAL
	case errors.Is(err, ns.ErrNotUTF8):
		return syscall.EILSEQ
	case errors.Is(err, ns.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, ns.ErrTooBig):
		return syscall.EXDEV
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

// detach keeps an operation that changes the bucket or the journal from
// being cut half-way when the caller is interrupted. Any signal to the
// calling thread interrupts its FUSE request (Go programs get such signals
// all the time), and a close or rename that gives up half-done is worse
// than one that finishes: the store's own deadlines still bound it.
// Lookups, stats, opens and reads are detached too: programs do not retry
// a stat, nor the lookup inside an rmdir, that fails with EINTR (the
// soak's rmdir did), and few C programs retry an open or a read; a fatal
// signal still ends the caller at once (the kernel's wait for the answer
// is killable). Every call of the filesystem runs detached.
func detach(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// changeErrno is toErrno for a change that goes to the bucket before it
// returns (mkdir, symlink, unlink, rmdir, rename): when the server cannot
// be reached the program sees only EIO, so the log says why.
func (f *FS) changeErrno(op, name string, err error) syscall.Errno {
	if errors.Is(err, store.ErrUnavailable) {
		why := "the server is unavailable" // 5xx, resets: its retries spent
		if errors.Is(err, store.ErrOffline) {
			why = "the server cannot be reached"
		}
		f.log.Warn(op+" failed: "+why+", and this change goes to the bucket before it returns; try again once it is back",
			"name", name, "err", err)
	}
	return toErrno(err)
}
