package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// S3 is the Store on a real S3 server through minio-go.
type S3 struct {
	cfg  *resolved
	mc   *minio.Client
	core minio.Core
	// single sends each request once: uploads retry themselves, with a
	// fresh reader per attempt (sendBody).
	single minio.Core
	sse    encrypt.ServerSide // the one place that holds the SSE-C headers
	keyMD5 string
	// noListMeta is set once the server refused a listing that asked for
	// metadata, or listed an object without any; later listings do not ask.
	noListMeta atomic.Bool
	link       *Link
	guard      *guard
	transport  *http.Transport
	http       *http.Client // plain listings (listv2.go), through guard
}

var _ Store = (*S3)(nil)

// New connects nothing yet: it validates the configuration and builds the
// client. CheckBucket is the first request.
func New(c Config) (*S3, error) {
	r, err := resolve(c)
	if err != nil {
		return nil, err
	}
	t, err := r.transport()
	if err != nil {
		return nil, err
	}
	g := &guard{next: t, log: r.Log, trace: r.Trace, observe: r.Observe, bucket: r.Bucket}
	var tr http.RoundTripper = g
	lookup := minio.BucketLookupDNS
	if r.pathStyle {
		lookup = minio.BucketLookupPath
	}
	mc, err := minio.New(r.url.Host, &minio.Options{
		Creds:        r.creds,
		Secure:       r.url.Scheme == "https",
		Transport:    tr,
		Region:       r.Region, // set, so minio-go never asks for the bucket location
		BucketLookup: lookup,
		MaxRetries:   r.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", r.Endpoint, err)
	}
	single, err := minio.New(r.url.Host, &minio.Options{
		Creds: r.creds, Secure: r.url.Scheme == "https", Transport: tr,
		Region: r.Region, BucketLookup: lookup, MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", r.Endpoint, err)
	}
	s := &S3{cfg: r, mc: mc, core: minio.Core{Client: mc}, single: minio.Core{Client: single}}
	// The link's probe: a HEAD of the bucket, sent once. Any answer,
	// whatever its status, shows the server can be reached. Nothing here
	// refers to s, so that s can be collected and the clock's watch end.
	bucket := r.Bucket
	probe := func(ctx context.Context) error {
		ctx, _ = withOp(ctx, opProbe)
		_, err := single.BucketExists(ctx, bucket)
		return err
	}
	s.link = newLink(r.Log, min(r.Timeout, probeTimeout), probe)
	g.link, s.guard, s.transport = s.link, g, t
	s.http = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // as minio-go: a redirect is an answer
	}}
	// The clock is watched for as long as the S3 is in use (wake.go).
	stop := make(chan struct{})
	go watchClock(stop, func(gap time.Duration) { g.wake(gap, t) })
	runtime.AddCleanup(s, func(stop chan struct{}) { close(stop) }, stop)
	// Without a key (listing incomplete uploads) every data request is
	// refused by the guard before it is sent.
	if r.Key != nil {
		if s.sse, err = encrypt.NewSSEC(r.Key.Bytes()); err != nil {
			return nil, err
		}
		s.keyMD5 = r.Key.MD5()
	}
	return s, nil
}

// Endpoint is the URL in use, for messages.
func (s *S3) Endpoint() string { return s.cfg.Endpoint }

// timeout bounds one operation that takes d when all goes well. The bound
// leaves room for every retry: each attempt is cut at Timeout by the
// transport (no answer) or here, so a stalled connection costs an attempt,
// not the operation.
func (s *S3) timeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d*time.Duration(s.cfg.MaxRetries+1))
}

func (s *S3) CheckBucket(ctx context.Context) error {
	// A one-key listing rather than HeadBucket: its XML error tells a bad
	// key id or signature apart from a bucket that exists but is not ours.
	// One attempt's time: a mount that cannot reach its server says so
	// after --timeout, not after every retry.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	err := s.List(ctx, "", ListOptions{Limit: 1}, func(Entry) error { return nil })
	if err != nil {
		return err
	}
	return nil
}

// probeTimeout bounds the probe of an offline link: a server that does not
// answer a HEAD of the bucket within it is taken as still gone.
const probeTimeout = 5 * time.Second

// Link is the state of the connection to the server (link.go).
func (s *S3) Link() *Link { return s.link }

func (s *S3) ListsMetadata() bool { return !s.noListMeta.Load() }

func (s *S3) List(ctx context.Context, prefix string, opts ListOptions, fn func(Entry) error) error {
	// A listing can take many pages; it gets a budget of many requests.
	ctx, cancel := s.timeout(ctx, 10*s.cfg.Timeout)
	defer cancel()
	ctx, _ = withOp(ctx, opBucket)
	page := 1000
	if opts.Limit > 0 && opts.Limit < page {
		page = opts.Limit
	}
	n := 0
	// MinIO lists each object's metadata when asked (metadata=true), which
	// makes `ls -l` one request per 1,000 files instead of one HEAD per
	// file. A server that refuses the parameter, or ignores it (RGW), is
	// not asked again.
	withMeta := opts.Metadata && !s.noListMeta.Load()
	if !withMeta {
		if ok, err := s.listOwn(ctx, prefix, opts, page, fn); ok {
			return err
		}
	}
	// No owners: nothing uses them, and they are a quarter of a listing's
	// XML (RGW, 100 objects: 33.5 KB with, 25.4 KB without), which the
	// server writes and the daemon decodes (by reflection: a quarter of
	// the daemon's CPU in a nightly walk of 100,000 files).
	noOwner := false
	for obj := range s.mc.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{
		Prefix: prefix, Recursive: opts.Recursive, MaxKeys: page, WithMetadata: withMeta, StartAfter: opts.StartAfter,
		FetchOwner: &noOwner,
	}) {
		if obj.Err != nil {
			if st := statusOf(obj.Err); withMeta && n == 0 && (st == 400 || st == 501) {
				s.noListMeta.Store(true)
				return s.List(ctx, prefix, opts, fn)
			}
			return classify(obj.Err, fmt.Sprintf("list %s/%s", s.cfg.Bucket, prefix))
		}
		e := Entry{Key: obj.Key, Size: obj.Size, ETag: obj.ETag, LastModified: obj.LastModified}
		if withMeta && !strings.HasSuffix(obj.Key, "/") {
			if obj.UserMetadata != nil {
				e.Attrs = listedAttrs(obj)
			} else {
				// MinIO lists at least the content type of every object.
				s.noListMeta.Store(true)
			}
		}
		// Without recursion a key ending in "/" below the prefix is a common
		// prefix; the prefix's own marker object is reported as an object.
		e.IsPrefix = !opts.Recursive && obj.Key != prefix && strings.HasSuffix(obj.Key, "/")
		if err := fn(e); err != nil {
			return err
		}
		n++
		if opts.Limit > 0 && n >= opts.Limit {
			return nil // the deferred cancel stops minio-go's lister
		}
	}
	return nil
}

// echoOf decides what a keyed answer proves: our key's MD5 echoed is SSE-C
// with our key; no echo at all is a plaintext object (Ceph RGW serves those
// to keyed requests); an echo of another MD5 is another key.
func (s *S3) echoOf(x *exchange, key string) (Encryption, error) {
	algo, md5 := x.echo()
	switch {
	case algo == "" && md5 == "":
		return EncPlain, nil
	case md5 == s.keyMD5:
		return EncOurs, nil
	}
	return EncUnknown, fmt.Errorf("%q: %w (the server echoed key MD5 %s)", key, ErrOtherKey, md5)
}

func (s *S3) Head(ctx context.Context, key string) (Attrs, error) {
	ctx, cancel := s.timeout(ctx, s.cfg.Timeout)
	defer cancel()
	kctx, x := withOp(ctx, opData)
	info, err := s.mc.StatObject(kctx, s.cfg.Bucket, key, minio.StatObjectOptions{ServerSideEncryption: s.sse})
	if err == nil {
		enc, err := s.echoOf(x, key)
		if err != nil {
			return Attrs{}, err
		}
		return attrsOf(info, enc), nil
	}
	st := statusOf(err)
	if st != 400 && st != 403 {
		return Attrs{}, classify(err, "head "+quote(key))
	}
	// 400 is what AWS and MinIO answer to a key sent for a plaintext object,
	// and RGW to a wrong key; 403 is a wrong key on AWS and MinIO. Asking
	// once without the key tells them apart: a plaintext object answers.
	pctx, _ := withOp(ctx, opDataPlain)
	info, perr := s.mc.StatObject(pctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if perr == nil {
		return attrsOf(info, EncPlain), nil
	}
	switch statusOf(perr) {
	case 403:
		return Attrs{}, classify(perr, "head "+quote(key))
	case 400:
		return Attrs{}, fmt.Errorf("head %s: %w", quote(key), ErrOtherKey)
	case 404:
		return Attrs{}, fmt.Errorf("head %s: %w", quote(key), ErrNotFound)
	}
	return Attrs{}, classify(err, "head "+quote(key))
}

// listedAttrs are the attributes a listing with metadata gave: MinIO's
// UserMetadata there holds the x-amz-meta-* headers, the content type and,
// for SSE-C objects, the algorithm (not the key's MD5).
func listedAttrs(obj minio.ObjectInfo) *Attrs {
	meta := map[string]string{}
	enc := EncPlain
	for k, v := range obj.UserMetadata {
		k = strings.ToLower(k)
		switch {
		case strings.HasPrefix(k, "x-amz-meta-"):
			meta[strings.TrimPrefix(k, "x-amz-meta-")] = v
		case k == "x-amz-server-side-encryption-customer-algorithm":
			enc = EncOurs
		}
	}
	// Whole seconds, as a HEAD's Last-Modified has them: a file's time
	// must not change when a HEAD replaces the listing's answer.
	return &Attrs{Size: obj.Size, ETag: obj.ETag, LastModified: obj.LastModified.Truncate(time.Second),
		Meta: meta, Encryption: enc, Listed: true}
}

func attrsOf(info minio.ObjectInfo, enc Encryption) Attrs {
	meta := make(map[string]string, len(info.UserMetadata))
	for k, v := range info.UserMetadata {
		meta[strings.ToLower(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"))] = v
	}
	return Attrs{Size: info.Size, ETag: info.ETag, LastModified: info.LastModified, Meta: meta, Encryption: enc}
}

func (s *S3) ReadRange(ctx context.Context, key string, r Range, dst []byte) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	var err error
	// minio-go retries failed requests, but not a body cut off half-way;
	// that is retried here, as often as a request (--retries), with the
	// same backoff: a write into a file's middle waits on such a read of
	// the bytes around it, and fails with EIO if it gives up.
	for attempt := 0; attempt <= s.cfg.MaxRetries; attempt++ {
		if attempt > 0 && !backoff(ctx, attempt) {
			return 0, err
		}
		var n int
		n, err = s.readOnce(ctx, key, r, dst)
		if err == nil || !errors.Is(err, errBodyCut) || ctx.Err() != nil {
			return n, err
		}
	}
	return 0, err
}

// errBodyCut is a body that ended before its length: the one network
// error minio-go does not retry.
var errBodyCut = errors.New("body cut")

func (s *S3) readOnce(ctx context.Context, key string, r Range, dst []byte) (int, error) {
	ctx, cancel := s.timeout(ctx, s.cfg.Timeout)
	defer cancel()
	var opts minio.GetObjectOptions
	kind := opDataPlain
	if !r.Plaintext {
		opts.ServerSideEncryption = s.sse
		kind = opData
	}
	if err := opts.SetRange(r.Offset, r.Offset+int64(len(dst))-1); err != nil {
		return 0, err
	}
	if r.IfMatch != "" {
		if err := opts.SetMatchETag(r.IfMatch); err != nil {
			return 0, err
		}
	}
	ctx, x := withOp(ctx, kind)
	what := fmt.Sprintf("read %s at %d", quote(key), r.Offset)
	body, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key, opts)
	if err != nil {
		if statusOf(err) == 416 { // at or past the end
			return 0, io.EOF
		}
		return 0, classify(err, what)
	}
	defer body.Close()
	if !r.Plaintext {
		if _, err := s.echoOf(x, key); err != nil {
			return 0, err
		}
	}
	// The caller asks for exactly the bytes that exist, so a short body is
	// a connection cut half-way, retried like any network error.
	n, err := io.ReadFull(body, dst)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%s: %w: %w after %d of %d bytes", what, ErrUnavailable, errBodyCut, n, len(dst))
	}
	if err != nil {
		return n, classify(err, what)
	}
	return n, nil
}

// quote shows an object key safely in messages: odd bytes escaped.
func quote(key string) string { return fmt.Sprintf("%q", key) }
