package store

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// A plain listing (no metadata) is a request of our own, signed with
// minio-go's signer and sent through the same guarded transport, so that
// its answer is read by the scanner of listxml.go rather than by
// encoding/xml's reflection. Listings with metadata (MinIO's extension)
// stay with minio-go: they are few (ls -l of unknown files), and their
// user metadata is more than the scanner reads.

// listQuery is one ListObjectsV2 request.
type listQuery struct {
	prefix, delimiter, startAfter, token string
	maxKeys                              int
}

// emptySHA256 is the hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxListAnswer bounds what is read of one page's answer (1,000 keys of
// 1,024 bytes, URL-encoded, are about 10 MB).
const maxListAnswer = 64 << 20

// listOwn is List without metadata, page after page; ok is false if the
// credentials do not sign with V4 (minio-go lists then). The errors of fn
// are returned as they are, the others classified.
func (s *S3) listOwn(ctx context.Context, prefix string, opts ListOptions, page int, fn func(Entry) error) (ok bool, err error) {
	creds, err := s.mc.GetCreds()
	if err != nil || !creds.SignerType.IsV4() || creds.AccessKeyID == "" {
		return false, nil
	}
	q := listQuery{prefix: prefix, delimiter: "/", startAfter: opts.StartAfter, maxKeys: page}
	if opts.Recursive {
		q.delimiter = ""
	}
	n := 0
	for {
		p, err := s.listPageRetried(ctx, q)
		if err != nil {
			return true, classify(err, fmt.Sprintf("list %s/%s", s.cfg.Bucket, prefix))
		}
		keys := make([]string, 0, len(p.Contents)+len(p.Prefixes))
		for _, o := range p.Contents {
			keys = append(keys, o.Key)
		}
		keys = append(keys, p.Prefixes...)
		for i, k := range keys {
			if p.EncodingType == "url" {
				if k, err = url.QueryUnescape(k); err != nil {
					return true, fmt.Errorf("list %s/%s: a listed name: %w", s.cfg.Bucket, prefix, err)
				}
			}
			e := Entry{Key: k}
			if i < len(p.Contents) {
				o := p.Contents[i]
				e.Size, e.ETag, e.LastModified = o.Size, trimETag(o.ETag), o.LastModified
			}
			// As in List: a key ending in "/" below the prefix is a folder.
			e.IsPrefix = !opts.Recursive && k != prefix && strings.HasSuffix(k, "/")
			if err := fn(e); err != nil {
				return true, err
			}
			if n++; opts.Limit > 0 && n >= opts.Limit {
				return true, nil
			}
		}
		if !p.Truncated {
			return true, nil
		}
		if p.NextToken == "" {
			return true, errors.New("the server cut a listing short without a continuation token")
		}
		q.token, q.startAfter = p.NextToken, ""
	}
}

func trimETag(s string) string { return strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`) }

// listPageRetried sends one page's request, again after a network error
// or an answer worth retrying, as minio-go does (MaxRetries attempts in
// all, backoff from 200 ms to 1 s with jitter).
func (s *S3) listPageRetried(ctx context.Context, q listQuery) (listPage, error) {
	for attempt := 1; ; attempt++ {
		p, err, retry := s.listPage(ctx, q)
		if err == nil || !retry || attempt >= s.cfg.MaxRetries || ctx.Err() != nil {
			return p, err
		}
		wait := min(200*time.Millisecond<<attempt, time.Second)
		wait = wait/2 + rand.N(wait/2+1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return p, err
		}
	}
}

func (s *S3) listPage(ctx context.Context, q listQuery) (listPage, error, bool) {
	creds, err := s.mc.GetCreds()
	if err != nil {
		return listPage{}, err, false
	}
	v := url.Values{}
	v.Set("list-type", "2")
	v.Set("encoding-type", "url")
	v.Set("prefix", q.prefix)
	v.Set("delimiter", q.delimiter)
	v.Set("max-keys", strconv.Itoa(q.maxKeys))
	if q.startAfter != "" {
		v.Set("start-after", q.startAfter)
	}
	if q.token != "" {
		v.Set("continuation-token", q.token)
	}
	u := *s.cfg.url
	if s.cfg.pathStyle {
		u.Path = "/" + s.cfg.Bucket + "/"
	} else {
		u.Host = s.cfg.Bucket + "." + u.Host
		u.Path = "/"
	}
	u.RawQuery = s3utils.QueryEncode(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return listPage{}, err, false
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	req = signer.SignV4(*req, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, s.cfg.Region)
	resp, err := s.http.Do(req)
	if err != nil {
		var cve *tls.CertificateVerificationError
		return listPage{}, err, ctx.Err() == nil && !errors.As(err, &cve)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListAnswer))
	if err != nil {
		return listPage{}, err, ctx.Err() == nil
	}
	if resp.StatusCode != http.StatusOK {
		er := errorResponse(resp, body)
		return listPage{}, er, retryable(er)
	}
	p, err := parseListPage(body)
	if err != nil {
		return listPage{}, fmt.Errorf("reading the listing's answer: %w", err), false
	}
	return p, nil, false
}

// errorResponse reads an S3 error answer as minio-go does, so that
// classify knows it.
func errorResponse(resp *http.Response, body []byte) minio.ErrorResponse {
	var er minio.ErrorResponse
	_ = xml.Unmarshal(body, &er)
	er.StatusCode = resp.StatusCode
	if er.Code == "" {
		switch resp.StatusCode {
		case http.StatusNotFound:
			er.Code, er.Message = "NoSuchBucket", "The specified bucket does not exist."
		case http.StatusForbidden:
			er.Code, er.Message = "AccessDenied", "Access Denied."
		default:
			er.Code, er.Message = resp.Status, resp.Status
		}
	}
	return er
}

// retryable are the answers minio-go retries.
func retryable(er minio.ErrorResponse) bool {
	switch er.StatusCode {
	case 408, 429, 499, 500, 502, 503, 504, 520:
		return true
	}
	switch er.Code {
	case "RequestError", "RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded",
		"RequestThrottled", "InternalError", "ExpiredToken", "ExpiredTokenException", "SlowDown":
		return true
	}
	return false
}
