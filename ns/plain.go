package ns

import (
	"github.com/ssecfs/ssecfs/store"
)

// Objects stored without SSE-C. Anyone who can write to the bucket can
// store one without the key, so nothing in it is the user's word: it stays
// readable (buckets are migrated from plaintext), but shows as a regular,
// read-only file whose x-amz-meta mode, owner and symlink flag are ignored
// (only its mtime is shown). The same holds for a plaintext folder marker.
// With Options.RefusePlaintext, such objects are hidden once a HEAD (or a
// listing with metadata) has shown them plaintext, and open and readlink
// are refused: listings on RGW and AWS do not say how an object is
// stored, and a HEAD per listed object only for this would cost every
// `ls` a round trip per file.

// ApplyAttrs overrides a with what the object's answer says, trusting its
// metadata only if the object is SSE-C.
func (n *Namespace) ApplyAttrs(a *Attrs, key string, h store.Attrs) {
	if h.Encryption != store.EncPlain {
		applyMeta(a, h.Meta)
		return
	}
	n.NoticePlain(key)
	a.Plain = true
	if t, ok := parseMtime(h.Meta["mtime"]); ok {
		a.Mtime = t
	}
}

// NoticePlain logs a plaintext object once and counts it for `ssecfs
// status`.
func (n *Namespace) NoticePlain(key string) {
	n.warnMu.Lock()
	seen := n.warned[key+"\x00plain"]
	n.warned[key+"\x00plain"] = true
	n.warnMu.Unlock()
	if seen {
		return
	}
	n.plainSeen.Add(1)
	if n.opts.RefusePlaintext {
		n.log.Warn("object stored without SSE-C: hidden and refused (--refuse-plaintext)", "key", key)
	} else {
		n.log.Warn("object stored without SSE-C: shown as a read-only file; its mode, owner and symlink metadata are not trusted", "key", key)
	}
}

// PlaintextSeen is how many objects stored without SSE-C the mount has met.
func (n *Namespace) PlaintextSeen() int64 { return n.plainSeen.Load() }

// Refused says whether a plaintext object is refused (RefusePlaintext).
func (n *Namespace) Refused(h store.Attrs) bool {
	return n.opts.RefusePlaintext && h.Encryption == store.EncPlain
}

// hiddenPlain says whether key is a plaintext object already known as one
// and refused: listings leave it out.
func (n *Namespace) hiddenPlain(key string) bool {
	if !n.opts.RefusePlaintext {
		return false
	}
	h, ok := n.meta.peek(key)
	return ok && h.Encryption == store.EncPlain
}
