package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/ssecfs/ssecfs/store"
)

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
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}
