package fs

import "strings"

// nameProblem says why a key component cannot be a file name, or "".
// Such objects stay in the bucket; the filesystem leaves them out.
func nameProblem(name string) string {
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
