package ns

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// Attrs is what a stat shows of a file, symlink or folder. It comes from a
// keyed HEAD when one is known, else from the listing.
type Attrs struct {
	Size    int64
	Mtime   time.Time
	Mode    uint32 // permission bits only
	UID     uint32
	GID     uint32
	Owned   bool // UID/GID came from metadata
	Symlink bool // mode says S_IFLNK (s3fs's symlinks)
	Plain   bool // stored without SSE-C: metadata not trusted, read-only (plain.go)
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
func applyMeta(a *Attrs, meta map[string]string) {
	if t, ok := parseMtime(meta["mtime"]); ok {
		a.Mtime = t
	}
	if m, ok := parseMode(meta["mode"]); ok {
		a.Mode = m & 0o7777
		a.Symlink = m&syscall.S_IFMT == syscall.S_IFLNK
	}
	uid, uok := parseID(meta["uid"])
	gid, gok := parseID(meta["gid"])
	if uok && gok {
		a.UID, a.GID, a.Owned = uid, gid, true
	}
}

// Listed is what a file shows from its listing entry alone.
func Listed(obj store.Entry) Attrs {
	return Attrs{Size: obj.Size, Mtime: obj.LastModified, Mode: 0o644}
}

// Waiting is what a file waiting in the stage shows.
func Waiting(i stage.Info) Attrs {
	return Attrs{Size: i.Size, Mtime: i.Attrs.Mtime, Mode: i.Attrs.Mode & 0o7777,
		UID: i.Attrs.UID, GID: i.Attrs.GID, Owned: true}
}

// Object is what an object shows from a HEAD's answer: a on top of its
// size and mtime, overridden by its metadata if that can be trusted.
func (n *Namespace) Object(key string, h store.Attrs, a Attrs) Attrs {
	a.Size, a.Mtime = h.Size, h.LastModified
	n.ApplyAttrs(&a, key, h)
	return a
}

// FolderAttrs are the mode, owner and mtime kept in the folder's marker
// object (as s3fs keeps them), or defaults for a folder without one. A
// stat of a folder starts the listings (or the marker HEADs) of the
// folders listed after it in its parent: a program that stats one stats
// its neighbours next.
func (d *Folder) Attrs(ctx context.Context) (Attrs, error) {
	n := d.ns
	prefix := d.Prefix()
	a := Attrs{Mode: 0o755, Mtime: n.started}
	if prefix == n.opts.Prefix {
		d.mu.Lock()
		if d.rootAttrs != nil {
			a = *d.rootAttrs
		}
		d.mu.Unlock()
	}
	if prefix == "" {
		return a, nil
	}
	if parent, name := n.parentOf(strings.TrimSuffix(prefix, "/")); parent != nil && prefix != n.opts.Prefix && !IsUnasked(ctx) {
		// Many folders: their listings (which show each marker's version)
		// or their markers' HEADs, in parallel.
		parent.ListsAhead(ctx, name)
		parent.HeadsAhead(ctx, name, true)
	}
	// The listing made ahead shows the marker's version: it confirmed the
	// record kept by an earlier mount, or the marker's HEAD is on its way.
	// Claimed even if that HEAD is in: what it taught is kept with the
	// folder's listing.
	d.claimAhead(ctx)
	h, err := n.meta.get(ctx, prefix)
	switch {
	case err == nil:
		a.Mtime = h.LastModified
		n.ApplyAttrs(&a, prefix, h)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrOtherKey), errors.Is(err, store.ErrAccessDenied):
	case n.opts.MetaTTL > 0 && n.offline(err):
		// Offline, a folder whose marker was never asked about shows the
		// defaults: its listing proved it exists.
	default:
		return a, err
	}
	return a, nil
}

// SetAttrs stores a folder's mode, owner and mtime in its marker object,
// writing one if the folder had none. The bucket root has no marker: its
// attributes last as long as the mount.
func (d *Folder) SetAttrs(ctx context.Context, a Attrs) error {
	n := d.ns
	if n.stage == nil {
		return ErrReadOnly
	}
	prefix := d.Prefix()
	if prefix == n.opts.Prefix && prefix == "" {
		d.mu.Lock()
		d.rootAttrs = &a
		d.mu.Unlock()
		return nil
	}
	meta := stage.MetaOf(stage.Attrs{Mtime: a.Mtime, Mode: syscall.S_IFDIR | a.Mode, UID: a.UID, GID: a.GID})
	if _, err := n.opts.Store.Put(ctx, prefix, bytes.NewReader(nil), 0, meta); err != nil {
		n.log.Error("setting folder attributes failed", "key", prefix, "err", err)
		return err
	}
	n.meta.forget(prefix)
	return nil
}
