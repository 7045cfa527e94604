package ns

import "errors"

// What the namespace refuses, besides the store's errors. The filesystem
// turns each into its errno (fs/errno.go), in one place.
var (
	ErrReadOnly = errors.New("read-only mount")                          // EROFS
	ErrBadName  = errors.New("not a file name")                          // EINVAL
	ErrNotUTF8  = errors.New("name is not UTF-8")                        // EILSEQ
	ErrNotEmpty = errors.New("folder not empty")                         // ENOTEMPTY
	ErrIntoSelf = errors.New("folder renamed into itself")               // EINVAL
	ErrTooBig   = errors.New("folder too large to rename on the server") // EXDEV: mv copies instead
	errTooMany  = errors.New("too many objects")
)
