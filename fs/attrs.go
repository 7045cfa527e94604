package fs

import (
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// fileAttrs is what the filesystem shows for a file. It comes from a keyed
// HEAD when one is known, else from the listing.
type fileAttrs struct {
	size    int64
	mtime   time.Time
	mode    uint32 // permission bits only
	uid     uint32
	gid     uint32
	owned   bool // uid/gid came from metadata
	symlink bool // mode says S_IFLNK (s3fs's symlinks)
	plain   bool // stored without SSE-C: metadata not trusted, read-only (plain.go)
}

// parseMtime reads x-amz-meta-mtime as rclone and s3fs write it: decimal
// seconds with an optional fraction ("1700000000", "1700000000.123456789").
// The fraction is parsed as digits, not as a float, so nanoseconds survive.
func parseMtime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	secPart, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secPart, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if nsec, err = strconv.ParseInt(frac, 10, 64); err != nil || nsec < 0 {
			return time.Time{}, false
		}
	}
	return time.Unix(sec, nsec), true
}

// parseMode reads x-amz-meta-mode: s3fs writes the full st_mode in decimal
// ("33188"), rclone writes octal with a leading zero ("0100644").
func parseMode(s string) (uint32, bool) {
	s = strings.TrimSpace(s)
	base := 10
	if len(s) > 1 && s[0] == '0' {
		base = 8
	}
	v, err := strconv.ParseUint(s, base, 32)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

func parseID(s string) (uint32, bool) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	return uint32(v), err == nil
}

// applyMeta overrides a with what the object's metadata says.
func applyMeta(a *fileAttrs, meta map[string]string) {
	if t, ok := parseMtime(meta["mtime"]); ok {
		a.mtime = t
	}
	if m, ok := parseMode(meta["mode"]); ok {
		a.mode = m & 0o7777
		a.symlink = m&syscall.S_IFMT == syscall.S_IFLNK
	}
	uid, uok := parseID(meta["uid"])
	gid, gok := parseID(meta["gid"])
	if uok && gok {
		a.uid, a.gid, a.owned = uid, gid, true
	}
}

func setTimes(out *fuse.Attr, t time.Time) {
	sec, nsec := uint64(t.Unix()), uint32(t.Nanosecond())
	out.Mtime, out.Mtimensec = sec, nsec
	out.Ctime, out.Ctimensec = sec, nsec
	out.Atime, out.Atimensec = sec, nsec
}

func (f *FS) fillFile(out *fuse.Attr, a fileAttrs) {
	out.Mode = syscall.S_IFREG | a.mode
	if a.plain {
		out.Mode = syscall.S_IFREG | 0o444
	}
	out.Size = uint64(a.size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	out.Nlink = 1
	setTimes(out, a.mtime)
	out.Uid, out.Gid = f.opts.UID, f.opts.GID
	if a.owned && f.opts.OwnerFromMeta {
		out.Uid, out.Gid = a.uid, a.gid
	}
}

func (f *FS) fillDir(out *fuse.Attr) {
	out.Mode = syscall.S_IFDIR | 0o755
	out.Nlink = 2
	out.Blksize = 4096
	out.Size = 4096
	setTimes(out, f.started)
	out.Uid, out.Gid = f.opts.UID, f.opts.GID
}
