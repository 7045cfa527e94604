package fs

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/ssecfs/ssecfs/ns"
	"github.com/ssecfs/ssecfs/store"
)

// Each condition of SEMANTICS' Errors table has its errno, wrapped or
// not, and anything else is EIO.
func TestErrorsBecomeTheirErrno(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{store.ErrNotFound, syscall.ENOENT},
		{store.ErrNoBucket, syscall.ENOENT},
		{store.ErrOtherKey, syscall.EACCES},
		{store.ErrAccessDenied, syscall.EACCES},
		{store.ErrBadCredentials, syscall.EACCES},
		{store.ErrChanged, syscall.ESTALE},
		{store.ErrUnavailable, syscall.EIO},
		{context.DeadlineExceeded, syscall.ETIMEDOUT},
		{syscall.ENOSPC, syscall.ENOSPC},
		{ns.ErrReadOnly, syscall.EROFS},
		{ns.ErrBadName, syscall.EINVAL},
		{ns.ErrIntoSelf, syscall.EINVAL},
		{ns.ErrNotUTF8, syscall.EILSEQ},
		{ns.ErrNotEmpty, syscall.ENOTEMPTY},
		{ns.ErrTooBig, syscall.EXDEV},
		{fmt.Errorf("something else"), syscall.EIO},
	} {
		if got := toErrno(fmt.Errorf("head \"k\": %w", tc.err)); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
		if got := toErrno(tc.err); got != tc.want {
			t.Errorf("%v unwrapped: %v, want %v", tc.err, got, tc.want)
		}
	}
	if toErrno(nil) != 0 {
		t.Error("nil is not 0")
	}
}
