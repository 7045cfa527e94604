package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// More sentinel errors of the write side.
var (
	// ErrNotImplemented: the server does not offer the operation for SSE-C
	// objects (Ceph RGW answers CopyObject with 501 before v20).
	ErrNotImplemented = errors.New("not implemented by the server")
	// ErrSSECBlocked: the bucket refuses SSE-C writes. New AWS buckets do
	// since April 2026, until PutBucketEncryption sets
	// BlockedEncryptionTypes to NONE.
	ErrSSECBlocked = errors.New("the bucket refuses SSE-C writes (on AWS: new buckets block SSE-C since April 2026; allow it with PutBucketEncryption, BlockedEncryptionTypes NONE)")
)

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number int
	ETag   string
}

// metaHeaders turns user metadata into x-amz-meta-* names for minio-go.
func metaHeaders(meta map[string]string) map[string]string {
	out := make(map[string]string, len(meta))
	for k, v := range meta {
		out[k] = v // minio-go adds the x-amz-meta- prefix to UserMetadata
	}
	return out
}

// uploadEcho checks that the answer to an upload proved SSE-C with our
// key. A silent plaintext object is the worst outcome there is: s3fs made
// them without anyone noticing.
func (s *S3) uploadEcho(x *exchange, what string) error {
	algo, md5 := x.echo()
	if algo == "AES256" && md5 == s.keyMD5 {
		return nil
	}
	return fmt.Errorf("%s: %w (algorithm %q, key MD5 %q): the object may be stored without encryption", what, ErrNoEcho, algo, md5)
}

// writeErr classifies a failed write, naming an SSE-C block on a 403.
// AWS answers a blocked SSE-C write with a plain 403 AccessDenied, which
// is also what a missing write right gives: both are named then. Either
// way the error is ErrAccessDenied (EACCES).
func (s *S3) writeErr(err error, what string) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.StatusCode == 403 && er.Code == "AccessDenied" {
		if strings.Contains(strings.ToLower(er.Message), "encryption") {
			return fmt.Errorf("%s: %w: %w", what, ErrAccessDenied, ErrSSECBlocked)
		}
		return fmt.Errorf("%s: %w (403 AccessDenied): the credentials may not allow writing, or %w", what, ErrAccessDenied, ErrSSECBlocked)
	}
	if errors.As(err, &er) && er.StatusCode == 501 {
		return fmt.Errorf("%s: %w (%s)", what, ErrNotImplemented, er.Code)
	}
	return classify(err, what)
}

func (s *S3) Put(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (string, error) {
	ctx, cancel := s.timeout(ctx, s.cfg.Timeout+sizeTime(size))
	defer cancel()
	ctx, x := withOp(ctx, opData)
	what := "upload " + quote(key)
	var info minio.UploadInfo
	err := s.sendBody(ctx, what, body, size, func(core minio.Core, r io.Reader) (err error) {
		info, err = core.PutObject(ctx, s.cfg.Bucket, key, r, size, "", "", minio.PutObjectOptions{
			ServerSideEncryption: s.sse, UserMetadata: metaHeaders(meta), DisableContentSha256: true,
		})
		return err
	})
	if err != nil {
		return "", err
	}
	if err := s.uploadEcho(x, what); err != nil {
		return "", DropPlaintext(ctx, s, key, info.ETag, err)
	}
	return info.ETag, nil
}

// sendBody sends an upload, retrying it with a fresh reader over the same
// bytes at each attempt. minio-go retries a request by seeking its one
// reader back to the start, while net/http may still be reading that
// reader for the attempt that failed: a data race, and a retried body that
// can come out short. A body that is not an io.ReaderAt goes once, through
// the retrying client.
func (s *S3) sendBody(ctx context.Context, what string, body io.Reader, size int64, send func(minio.Core, io.Reader) error) error {
	ra, ok := body.(io.ReaderAt)
	if !ok {
		if err := send(s.core, body); err != nil {
			return s.writeErr(err, what)
		}
		return nil
	}
	var err error
	for attempt := 0; attempt <= s.cfg.MaxRetries; attempt++ {
		if attempt > 0 && !backoff(ctx, attempt) {
			return err
		}
		if err = send(s.single, io.NewSectionReader(ra, 0, size)); err == nil {
			return nil
		}
		// An attempt that timed out (no answer headers) is retried as long
		// as the operation's own deadline holds.
		err = s.writeErr(err, what)
		// Refused while offline: the stage tries it again later.
		retry := errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
		if !retry || errors.Is(err, ErrOffline) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// backoff waits before the attempt-th retry (0.5, 1, 2, 4 s, then 4 s
// each); false if ctx ended first.
func backoff(ctx context.Context, attempt int) bool {
	select {
	case <-time.After(min(500*time.Millisecond<<(attempt-1), 4*time.Second)):
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *S3) CreateMultipart(ctx context.Context, key string, meta map[string]string) (string, error) {
	ctx, cancel := s.timeout(ctx, s.cfg.Timeout)
	defer cancel()
	ctx, x := withOp(ctx, opData)
	what := "start multipart upload of " + quote(key)
	id, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{
		ServerSideEncryption: s.sse, UserMetadata: metaHeaders(meta),
	})
	if err != nil {
		return "", s.writeErr(err, what)
	}
	// MinIO's answer to CreateMultipartUpload carries no echo; each part's
	// answer must, and the keyed HEAD after completion proves the object.
	if err := s.copyEcho(x, what); err != nil {
		_ = s.AbortMultipart(context.WithoutCancel(ctx), key, id)
		return "", err
	}
	return id, nil
}

func (s *S3) UploadPart(ctx context.Context, key, uploadID string, n int, body io.Reader, size int64) (Part, error) {
	ctx, cancel := s.timeout(ctx, s.cfg.Timeout+sizeTime(size))
	defer cancel()
	ctx, x := withOp(ctx, opData)
	what := fmt.Sprintf("upload part %d of %s", n, quote(key))
	var p minio.ObjectPart
	err := s.sendBody(ctx, what, body, size, func(core minio.Core, r io.Reader) (err error) {
		p, err = core.PutObjectPart(ctx, s.cfg.Bucket, key, uploadID, n, r, size, minio.PutObjectPartOptions{
			SSE: s.sse, DisableContentSha256: true,
		})
		return err
	})
	if err != nil {
		return Part{}, err
	}
	if err := s.uploadEcho(x, what); err != nil {
		return Part{}, err
	}
	return Part{Number: n, ETag: p.ETag}, nil
}

func (s *S3) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error {
	ctx, cancel := s.timeout(ctx, 2*s.cfg.Timeout)
	defer cancel()
	ctx, _ = withOp(ctx, opData)
	cp := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cp[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	// The key goes along: some servers need it to finish an SSE-C object.
	// RGW's answer carries an empty ETag and no echo, so the caller proves
	// the result with a keyed HEAD (Upload does).
	_, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, uploadID, cp, minio.PutObjectOptions{ServerSideEncryption: s.sse})
	if err != nil {
		return s.writeErr(err, "complete multipart upload of "+quote(key))
	}
	return nil
}

func (s *S3) AbortMultipart(ctx context.Context, key, uploadID string) error {
	ctx, cancel := s.timeout(ctx, s.cfg.Timeout)
	defer cancel()
	ctx, _ = withOp(ctx, opBucket)
	if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, key, uploadID); err != nil && statusOf(err) != 404 {
		return classify(err, "abort multipart upload of "+quote(key))
	}
	return nil
}

// copyHeaders are the SSE-C headers of a copy: the source's key (unless it
// is plaintext) and ours for the destination.
func (s *S3) copyHeaders(srcPlain bool) map[string]string {
	h := http.Header{}
	s.sse.Marshal(h)
	if !srcPlain {
		encrypt.SSECopy(s.sse).Marshal(h)
	}
	out := make(map[string]string, len(h))
	for k := range h {
		out[k] = h.Get(k)
	}
	return out
}

func (s *S3) Copy(ctx context.Context, src, dst string, srcPlain bool, meta map[string]string) error {
	ctx, cancel := s.timeout(ctx, 3*s.cfg.Timeout)
	defer cancel()
	kind := opCopy
	if srcPlain {
		kind = opData
	}
	ctx, x := withOp(ctx, kind)
	what := fmt.Sprintf("copy %s to %s", quote(src), quote(dst))
	h := s.copyHeaders(srcPlain)
	if meta != nil { // nil keeps the source's metadata (directive COPY)
		h["x-amz-metadata-directive"] = "REPLACE"
		for k, v := range meta {
			h["x-amz-meta-"+k] = v
		}
	}
	_, err := s.core.CopyObject(ctx, s.cfg.Bucket, src, s.cfg.Bucket, dst, h, minio.CopySrcOptions{}, minio.PutObjectOptions{})
	if err != nil {
		return s.writeErr(err, what)
	}
	return s.copyEcho(x, what)
}

// copyEcho accepts an answer without an echo (MinIO sends none to copies
// and to CreateMultipartUpload) but not one echoing another key. Those
// objects are proven afterwards with a keyed HEAD.
func (s *S3) copyEcho(x *exchange, what string) error {
	if algo, md5 := x.echo(); algo == "" && md5 == "" {
		return nil
	}
	return s.uploadEcho(x, what)
}

func (s *S3) CopyPart(ctx context.Context, src, dst, uploadID string, n int, off, length int64, srcPlain bool) (Part, error) {
	ctx, cancel := s.timeout(ctx, 3*s.cfg.Timeout)
	defer cancel()
	kind := opCopy
	if srcPlain {
		kind = opData
	}
	ctx, x := withOp(ctx, kind)
	what := fmt.Sprintf("copy part %d of %s to %s", n, quote(src), quote(dst))
	p, err := s.core.CopyObjectPart(ctx, s.cfg.Bucket, src, s.cfg.Bucket, dst, uploadID, n, off, length, s.copyHeaders(srcPlain))
	if err != nil {
		return Part{}, s.writeErr(err, what)
	}
	if err := s.copyEcho(x, what); err != nil {
		return Part{}, err
	}
	return Part{Number: n, ETag: p.ETag}, nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	ctx, cancel := s.timeout(ctx, s.cfg.Timeout)
	defer cancel()
	ctx, _ = withOp(ctx, opBucket)
	// A DELETE is idempotent (a missing key answers 204), so one whose
	// every answer was lost, though the server deleted the object, is sent
	// again twice more after minio-go's own retries: failing it would tell
	// rm the file is still there when it is gone.
	var err error
	for round := 0; round < 3; round++ {
		if round > 0 && !backoff(ctx, round) {
			break
		}
		err = s.mc.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{})
		if err == nil {
			return nil
		}
		if err = classify(err, "delete "+quote(key)); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOffline) {
			return err
		}
	}
	return err
}

func (s *S3) ListUploads(ctx context.Context, prefix string) ([]PendingUpload, error) {
	ctx, cancel := s.timeout(ctx, 10*s.cfg.Timeout)
	defer cancel()
	ctx, _ = withOp(ctx, opBucket)
	var out []PendingUpload
	keyMarker, idMarker := "", ""
	for {
		r, err := s.core.ListMultipartUploads(ctx, s.cfg.Bucket, prefix, keyMarker, idMarker, "", 1000)
		if err != nil {
			return nil, classify(err, "list multipart uploads")
		}
		for _, u := range r.Uploads {
			out = append(out, PendingUpload{Key: u.Key, ID: u.UploadID, Initiated: u.Initiated})
		}
		if !r.IsTruncated {
			return out, nil
		}
		keyMarker, idMarker = r.NextKeyMarker, r.NextUploadIDMarker
	}
}

// sizeTime is extra time allowed for sending size bytes, at a pessimistic
// 1 MiB/s, so that a large part is not cut by the per-request timeout.
func sizeTime(size int64) time.Duration {
	return time.Duration(size>>20) * time.Second
}
