package fs

import (
	"syscall"

	"github.com/ssecfs/ssecfs/store"
)

// Objects stored without SSE-C. Anyone who can write to the bucket can
// store one without the key, so nothing in it is the user's word: it stays
// readable (buckets are migrated from plaintext), but shows as a regular,
// read-only file whose x-amz-meta mode, owner and symlink flag are ignored
// (only its mtime is shown). The same holds for a plaintext folder marker.
// With Options.RefusePlaintext, such objects are hidden once a HEAD (or a
// listing with metadata) has shown them plaintext, and open and readlink
// answer EACCES: listings on RGW and AWS do not say how an object is
// stored, and a HEAD per listed object only for this would cost every
// `ls` a round trip per file.

// applyAttrs overrides a with what the object's answer says, trusting its
// metadata only if the object is SSE-C.
func (f *FS) applyAttrs(a *fileAttrs, key string, h store.Attrs) {
	if h.Encryption != store.EncPlain {
		applyMeta(a, h.Meta)
		return
	}
	f.noticePlain(key)
	a.plain = true
	if t, ok := parseMtime(h.Meta["mtime"]); ok {
		a.mtime = t
	}
}

// noticePlain logs a plaintext object once and counts it for `ssecfs
// status`.
func (f *FS) noticePlain(key string) {
	f.warnMu.Lock()
	seen := f.warned[key+"\x00plain"]
	f.warned[key+"\x00plain"] = true
	f.warnMu.Unlock()
	if seen {
		return
	}
	f.plainSeen.Add(1)
	if f.opts.RefusePlaintext {
		f.log.Warn("object stored without SSE-C: hidden and refused (--refuse-plaintext)", "key", key)
	} else {
		f.log.Warn("object stored without SSE-C: shown as a read-only file; its mode, owner and symlink metadata are not trusted", "key", key)
	}
}

// PlaintextSeen is how many objects stored without SSE-C the mount has met.
func (f *FS) PlaintextSeen() int64 { return f.plainSeen.Load() }

// refused says whether a plaintext object is refused (RefusePlaintext).
func (f *FS) refused(h store.Attrs) bool {
	return f.opts.RefusePlaintext && h.Encryption == store.EncPlain
}

// hiddenPlain says whether key is a plaintext object already known as one
// and refused: listings leave it out.
func (f *FS) hiddenPlain(key string) bool {
	if !f.opts.RefusePlaintext {
		return false
	}
	h, ok := f.meta.peek(key)
	return ok && h.Encryption == store.EncPlain
}

// plainErrno is what open and readlink of a refused object answer.
const plainErrno = syscall.EACCES
