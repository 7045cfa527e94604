// Package store is the port to the bucket: a narrow, context-first interface
// and its S3 implementation, the only code that imports minio-go. SSE-C is
// applied in one place (S3.sse, s3.go), and S3 errors become the sentinel errors
// below in one place (errors.go), so the layers above never see HTTP.
package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Callers test them with errors.Is; the wrapped text says
// which object and what the server answered.
var (
	ErrNotFound       = errors.New("no such object")
	ErrOtherKey       = errors.New("object is encrypted with another key")
	ErrAccessDenied   = errors.New("access denied")
	ErrChanged        = errors.New("object changed since it was opened")
	ErrNoBucket       = errors.New("no such bucket")
	ErrBadCredentials = errors.New("credentials refused")
	ErrUnavailable    = errors.New("server unavailable")
	ErrInsecure       = errors.New("TLS verification failed")
	// ErrNoEcho means an answer to a keyed request did not prove that the
	// server used our key. It is raised where plaintext would be a silent
	// loss of confidentiality, never swallowed.
	ErrNoEcho = errors.New("server answer lacks the SSE-C echo")
	// ErrUnkeyed is raised before sending a request that touches object data
	// without the SSE-C key: a bug, caught at the wire, never a fallback.
	ErrUnkeyed = errors.New("request without SSE-C key refused")
)

// Encryption says how an object is stored.
type Encryption int

const (
	// EncUnknown: not checked yet (a listing does not tell).
	EncUnknown Encryption = iota
	// EncOurs: SSE-C with our key (the server echoed our key's MD5).
	EncOurs
	// EncPlain: stored without SSE-C; readable without a key.
	EncPlain
)

func (e Encryption) String() string {
	switch e {
	case EncOurs:
		return "sse-c"
	case EncPlain:
		return "plaintext"
	}
	return "unknown"
}

// Entry is one item of a listing: an object, or a common prefix (IsPrefix)
// that stands for a directory.
type Entry struct {
	Key          string
	IsPrefix     bool
	Size         int64
	ETag         string
	LastModified time.Time
	// Attrs is set when the listing carried the object's metadata too
	// (MinIO does when asked), which saves a HEAD per object. Its
	// Encryption says only whether the object is SSE-C: Listed is true.
	Attrs *Attrs
}

// Attrs is what a keyed HEAD tells about an object.
type Attrs struct {
	Size         int64
	ETag         string
	LastModified time.Time
	// Meta holds the user metadata (x-amz-meta-*) with lower-case names
	// and the prefix removed: "mtime", "mode", "uid", "gid".
	Meta       map[string]string
	Encryption Encryption
	// Listed: these came from a listing, not a keyed HEAD, so nothing
	// proved that the object is encrypted with our key (EncOurs means
	// "SSE-C" here). Opening the file proves it first.
	Listed bool
}

// ListOptions shape a listing.
type ListOptions struct {
	// Recursive lists every object under the prefix; otherwise the listing
	// stops at "/" and reports common prefixes.
	Recursive bool
	// Limit stops after that many entries; 0 is no limit.
	Limit int
	// StartAfter lists only the keys after it.
	StartAfter string
	// Metadata asks for each object's attributes (Entry.Attrs), which
	// MinIO lists when asked and other servers do not. It costs MinIO
	// about twice a plain listing's time.
	Metadata bool
}

// Range is a ranged read pinned to one version of an object.
type Range struct {
	Offset int64
	// IfMatch pins the read to the ETag seen at open; a mismatch is ErrChanged.
	IfMatch string
	// Plaintext sends no key: only for objects known to be stored plaintext.
	Plaintext bool
}

// Store is the bucket as the filesystem sees it. Every method that touches
// object data sends the SSE-C key unless told the object is plaintext.
type Store interface {
	// List calls fn for each entry under prefix: objects in key order and
	// common prefixes in key order, but a page's objects may all come
	// before its prefixes (S3 on RGW and MinIO), so callers must not rely
	// on the two being merged in order (store/storetest).
	List(ctx context.Context, prefix string, opts ListOptions, fn func(Entry) error) error
	// ListsMetadata reports whether a listing asked for metadata may carry
	// objects' attributes: false once the server showed that it does not.
	ListsMetadata() bool
	// Head returns an object's attributes; see Encryption for the outcomes.
	Head(ctx context.Context, key string) (Attrs, error)
	// ReadRange fills dst with bytes [r.Offset, r.Offset+len(dst)), all of
	// which must exist; a short answer is an error.
	ReadRange(ctx context.Context, key string, r Range, dst []byte) (int, error)
	// CheckBucket verifies that the bucket exists and the credentials work.
	CheckBucket(ctx context.Context) error

	// Put stores body (size bytes) as key, encrypted with our key, with the
	// user metadata meta (names without x-amz-meta-). The answer must echo
	// our key, else ErrNoEcho. It returns the new ETag.
	Put(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (etag string, err error)
	// CreateMultipart, UploadPart, CompleteMultipart and AbortMultipart are
	// a multipart upload; Upload (upload.go) drives them.
	CreateMultipart(ctx context.Context, key string, meta map[string]string) (uploadID string, err error)
	UploadPart(ctx context.Context, key, uploadID string, n int, body io.Reader, size int64) (Part, error)
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// Copy copies src to dst on the server in one request, replacing the
	// metadata with meta (nil keeps the source's); ErrNotImplemented where
	// the server cannot (RGW before v20).
	Copy(ctx context.Context, src, dst string, srcPlain bool, meta map[string]string) error
	// CopyPart copies a range of src into part n of a multipart upload.
	CopyPart(ctx context.Context, src, dst, uploadID string, n int, off, length int64, srcPlain bool) (Part, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// ListUploads lists the multipart uploads under prefix that were
	// neither completed nor aborted.
	ListUploads(ctx context.Context, prefix string) ([]PendingUpload, error)
}

// PendingUpload is an incomplete multipart upload.
type PendingUpload struct {
	Key, ID   string
	Initiated time.Time
}
