package ns

import (
	"strings"
	"unicode/utf8"
)

// NameProblem says why a key component cannot be a file name, or "".
// Such objects stay in the bucket; the namespace leaves them out.
func NameProblem(name string) string {
	switch {
	case name == "":
		return "empty path component (\"//\" in the key)"
	case name == "." || name == "..":
		return "path component \"" + name + "\""
	case len(name) > 255:
		return "path component longer than 255 bytes"
	case strings.ContainsRune(name, 0):
		return "NUL byte in the key"
	}
	return ""
}

// CheckNewName says whether a name may be given to a new file, folder or
// symlink, or be the target of a rename. S3 object keys are UTF-8 (AWS,
// MinIO and Ceph RGW refuse others): a name that is not would be accepted
// here and never uploaded, so it is refused at once (ErrNotUTF8), as ZFS's
// utf8only does.
func CheckNewName(name string) error {
	if NameProblem(name) != "" {
		return ErrBadName
	}
	if !utf8.ValidString(name) {
		return ErrNotUTF8
	}
	return nil
}
