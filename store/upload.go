package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

const (
	// MinPartSize is the smallest part (and the largest single PUT).
	MinPartSize = 8 << 20
	// MaxParts is S3's limit on parts per upload.
	MaxParts = 10000
	// maxCopyObject is the largest object one CopyObject may copy.
	maxCopyObject = 5 << 30
	// uploadMemory bounds the part buffers of one upload.
	uploadMemory = 64 << 20
)

// PartSize is the part size for an object of size bytes: MinPartSize,
// doubled until the object fits in MaxParts parts (16 MiB parts past
// 78 GiB, 32 MiB past 156 GiB, ... up to 5 TiB objects).
func PartSize(size int64) int64 {
	ps := int64(MinPartSize)
	for size > ps*MaxParts {
		ps *= 2
	}
	return ps
}

// Source fills buf with an object's bytes from off. Upload reads each part
// whole before sending it, so a part can be sent again after a failure.
type Source func(ctx context.Context, off int64, buf []byte) error

// Upload stores size bytes from src as key: one PUT for small objects, a
// multipart upload with parts in parallel (memory bounded by uploadMemory)
// otherwise. A multipart upload that fails is aborted, so no partial
// object or orphan upload is left; one that completes is proven with a
// keyed HEAD (its answer must show our key and the full size). It returns
// the stored object's attributes. started, if not nil, learns the ID of a
// multipart upload before its parts are sent, so that a crash can be
// cleaned up after.
func Upload(ctx context.Context, st Store, key string, src Source, size int64, meta map[string]string, started func(uploadID string)) (Attrs, error) {
	ps := PartSize(size)
	if size <= ps {
		buf := PartBuffer(size)
		if err := src(ctx, 0, buf); err != nil {
			return Attrs{}, err
		}
		meta, id := withPutID(meta)
		etag, err := st.Put(ctx, key, bytes.NewReader(buf), size, meta)
		if err != nil {
			if a, ok := landed(ctx, st, key, size, id, err); ok {
				return a, nil
			}
			return Attrs{}, err
		}
		ReleasePart(buf)
		// The PUT's answer echoed our key (Put checks): no HEAD needed.
		return Attrs{Size: size, ETag: etag, LastModified: time.Now(), Meta: meta, Encryption: EncOurs}, nil
	}
	id, err := st.CreateMultipart(ctx, key, meta)
	if err != nil {
		return Attrs{}, err
	}
	if started != nil {
		started(id)
	}
	n := int((size + ps - 1) / ps)
	parts := make([]Part, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(int(max(1, uploadMemory/ps)))
	for i := 0; i < n; i++ {
		g.Go(func() error {
			off := int64(i) * ps
			buf := PartBuffer(min(ps, size-off))
			if err := src(gctx, off, buf); err != nil {
				return err
			}
			p, err := st.UploadPart(gctx, key, id, i+1, bytes.NewReader(buf), int64(len(buf)))
			if err != nil {
				return err
			}
			ReleasePart(buf)
			parts[i] = p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		_ = st.AbortMultipart(context.WithoutCancel(ctx), key, id)
		return Attrs{}, err
	}
	if err := Complete(ctx, st, key, id, parts); err != nil {
		_ = st.AbortMultipart(context.WithoutCancel(ctx), key, id)
		return Attrs{}, err
	}
	a, err := Verify(ctx, st, key, size)
	if errors.Is(err, ErrNoEcho) {
		err = DropPlaintext(ctx, st, key, MultipartETag(parts), err)
	}
	return a, err
}

// Complete completes a multipart upload. A lost answer is not a failure:
// the server completed the upload, the answer never came, and the retry
// heard 404 NoSuchUpload. Failing then would leave the new object in place
// of the file's base, and every later upload of the file reading its base
// would meet 412. The object's ETag tells: for a multipart upload it is
// the MD5 of its parts' ETags and their count (MinIO and RGW, SSE-C too).
func Complete(ctx context.Context, st Store, key, id string, parts []Part) error {
	err := st.CompleteMultipart(ctx, key, id, parts)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return err
	}
	if a, herr := st.Head(ctx, key); herr == nil && a.ETag == MultipartETag(parts) {
		return nil
	}
	return err
}

// PutIDMeta is the metadata entry (x-amz-meta-ssecfs-put) naming one PUT.
const PutIDMeta = "ssecfs-put"

// withPutID returns meta with a random ID for one PUT added, and the ID.
func withPutID(meta map[string]string) (map[string]string, string) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	out := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		out[k] = v
	}
	out[PutIDMeta] = id
	return out, id
}

// landed reports whether a PUT that failed on the network (its answer lost,
// or cut after the server stored it) is in the bucket after all: the
// object carries the PUT's ID. Failing then would leave the new object in
// place of the file's base, and every later upload of the file reading
// its base would meet 412, as for a lost completion answer (Complete).
func landed(ctx context.Context, st Store, key string, size int64, id string, err error) (Attrs, bool) {
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		return Attrs{}, false // the server's own answer: nothing stored
	}
	a, herr := st.Head(context.WithoutCancel(ctx), key)
	if herr != nil || a.Meta[PutIDMeta] != id || a.Encryption != EncOurs || a.Size != size {
		return Attrs{}, false
	}
	return a, true
}

// MultipartETag is the ETag S3 gives the object of a completed multipart
// upload of parts.
func MultipartETag(parts []Part) string {
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil {
			return "" // not an MD5: matches no ETag
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))
}

// DropPlaintext is called when an upload's answer did not prove our key:
// a server or proxy that dropped the key headers may have stored the bytes
// in plaintext, readable by anyone with access to the bucket. If key holds
// a plaintext object with the upload's ETag, it is deleted, and err says
// so. There is a window: RGW 16 has no conditional DELETE, so an upload by
// another client landing between the HEAD and the DELETE (a round trip)
// would be deleted instead.
func DropPlaintext(ctx context.Context, st Store, key, etag string, err error) error {
	ctx = context.WithoutCancel(ctx)
	a, herr := st.Head(ctx, key)
	if herr != nil || a.Encryption != EncPlain || etag == "" || strings.Trim(a.ETag, `"`) != strings.Trim(etag, `"`) {
		return err
	}
	if derr := st.Delete(ctx, key); derr != nil {
		return fmt.Errorf("%w; the plaintext object it left could not be removed: %v", err, derr)
	}
	return fmt.Errorf("%w; the plaintext object it left was removed", err)
}

// Verify proves that key is stored with our key and has size bytes, and
// returns its attributes.
func Verify(ctx context.Context, st Store, key string, size int64) (Attrs, error) {
	a, err := st.Head(ctx, key)
	if err != nil {
		return Attrs{}, fmt.Errorf("checking %s after upload: %w", quote(key), err)
	}
	if a.Encryption != EncOurs {
		return Attrs{}, fmt.Errorf("checking %s after upload: %w: stored as %s", quote(key), ErrNoEcho, a.Encryption)
	}
	if a.Size != size {
		return Attrs{}, fmt.Errorf("checking %s after upload: %d bytes stored, %d sent", quote(key), a.Size, size)
	}
	return a, nil
}

// Copier copies objects on the server, falling back from CopyObject to a
// multipart copy (UploadPartCopy) to a download and upload, and remembers
// per mount what the server cannot do, so the fallback costs one refusal.
type Copier struct {
	st          Store
	log         *slog.Logger
	noCopy      atomic.Bool // CopyObject answered 501
	noPlainCopy atomic.Bool // CopyObject stored a plaintext source's copy in plaintext
	noPartCopy  atomic.Bool // UploadPartCopy answered 501
	logNoCopy   sync.Once
	logNoPlain  sync.Once
	logNoPartCp sync.Once
}

// NewCopier returns a Copier on st.
func NewCopier(st Store, log *slog.Logger) *Copier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Copier{st: st, log: log}
}

// Copy makes dst a copy of src (size bytes; srcPlain if src is stored
// without SSE-C) with the metadata meta, encrypted with our key. src and
// dst may be the same key: that changes the metadata. nil meta keeps the
// source's. It returns the copy's attributes.
func (c *Copier) Copy(ctx context.Context, src, dst string, size int64, srcPlain bool, meta map[string]string) (Attrs, error) {
	if size <= maxCopyObject && !c.noCopy.Load() && !(srcPlain && c.noPlainCopy.Load()) {
		err := c.st.Copy(ctx, src, dst, srcPlain, meta)
		switch {
		case err == nil:
			a, err := Verify(ctx, c.st, dst, size)
			if !srcPlain || !errors.Is(err, ErrNoEcho) {
				return a, err
			}
			// Ceph RGW 16 answers CopyObject of a plaintext source with
			// 200 and stores the copy in plaintext, ignoring the
			// destination's key (store/storetest, Copy). Its multipart
			// copy does encrypt: it overwrites dst below.
			c.noPlainCopy.Store(true)
			c.logNoPlain.Do(func() {
				c.log.Info("the server copies plaintext objects without encrypting them; such copies use UploadPartCopy", "err", err)
			})
		case errors.Is(err, ErrNotImplemented):
			c.noCopy.Store(true)
			c.logNoCopy.Do(func() {
				c.log.Info("the server cannot CopyObject SSE-C objects; copies use UploadPartCopy", "err", err)
			})
		default:
			return Attrs{}, err
		}
	}
	if meta == nil { // the fallbacks write the metadata themselves
		a, err := c.st.Head(ctx, src)
		if err != nil {
			return Attrs{}, err
		}
		meta = a.Meta
	}
	if !c.noPartCopy.Load() && size > 0 {
		err := c.partCopy(ctx, src, dst, size, srcPlain, meta)
		if err == nil {
			return Verify(ctx, c.st, dst, size)
		}
		if !errors.Is(err, ErrNotImplemented) {
			return Attrs{}, err
		}
		c.noPartCopy.Store(true)
		c.logNoPartCp.Do(func() {
			c.log.Info("the server cannot UploadPartCopy SSE-C objects; copies download and upload", "err", err)
		})
	}
	// Download and upload, pinned to nothing: the source is not expected to
	// change during a copy made for a rename or a metadata change.
	read := func(ctx context.Context, off int64, buf []byte) error {
		_, err := c.st.ReadRange(ctx, src, Range{Offset: off, Plaintext: srcPlain}, buf)
		return err
	}
	return Upload(ctx, c.st, dst, read, size, meta, nil)
}

// partCopy copies with UploadPartCopy, parts of up to 1 GiB in parallel.
func (c *Copier) partCopy(ctx context.Context, src, dst string, size int64, srcPlain bool, meta map[string]string) error {
	ps := max(PartSize(size), 1<<30)
	id, err := c.st.CreateMultipart(ctx, dst, meta)
	if err != nil {
		return err
	}
	n := int((size + ps - 1) / ps)
	parts := make([]Part, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			off := int64(i) * ps
			p, err := c.st.CopyPart(gctx, src, dst, id, i+1, off, min(ps, size-off), srcPlain)
			parts[i] = p
			return err
		})
	}
	if err := g.Wait(); err != nil {
		_ = c.st.AbortMultipart(context.WithoutCancel(ctx), dst, id)
		return err
	}
	if err := Complete(ctx, c.st, dst, id, parts); err != nil {
		_ = c.st.AbortMultipart(context.WithoutCancel(ctx), dst, id)
		return err
	}
	return nil
}
