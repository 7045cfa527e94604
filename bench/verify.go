package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// objStore is the benchmark's own view of a bucket, independent of the
// tools: it waits for uploads a daemon does in the background and checks
// what the tools wrote.
type objStore struct {
	c      *minio.Client
	bucket string
	sse    encrypt.ServerSide
}

func newObjStore(s *Server, bucket, secret string) (*objStore, error) {
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(s.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", s.CA)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 16}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s.Access, s.Secret, ""),
		Secure: u.Scheme == "https", Transport: tr, Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return nil, err
	}
	sse, err := encrypt.NewSSEC([]byte(secret))
	if err != nil {
		return nil, err
	}
	return &objStore{c: c, bucket: bucket, sse: sse}, nil
}

// waitListed returns once every key in want answers a HEAD with the key
// with its full size, or ctx ends. It is how the bench learns that uploads
// a daemon does after close (rclone's VFS cache) are done. It polls the
// listing, which costs the server one request, and sends a HEAD only for
// keys that have appeared there.
func (o *objStore) waitListed(ctx context.Context, want map[string]int64) error {
	prefix := commonPrefix(want)
	pending := maps.Clone(want)
	for {
		for obj := range o.c.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if obj.Err != nil {
				break // a failed poll is retried
			}
			size, ok := pending[obj.Key]
			if !ok {
				continue
			}
			info, err := o.c.StatObject(ctx, o.bucket, obj.Key, minio.StatObjectOptions{ServerSideEncryption: o.sse})
			if err == nil && info.Size == size {
				delete(pending, obj.Key)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d objects not in the bucket with their full size: %w", len(pending), len(want), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func commonPrefix(want map[string]int64) string {
	var p string
	first := true
	for k := range want {
		if first {
			p, first = k, false
			continue
		}
		for !strings.HasPrefix(k, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}

// errPlaintext marks an object that the server hands out without the key:
// the tool did not store it with SSE-C.
var errPlaintext = errors.New("stored without SSE-C")

// checkEncrypted checks each object in want as the tools should have left
// it: a HEAD without the key answers 400 (else the object is plaintext),
// and a HEAD with the key answers with the full size and echoes the SSE-C
// algorithm. The first problem is returned; errPlaintext wraps plaintext.
func (o *objStore) checkEncrypted(ctx context.Context, want map[string]int64) error {
	return forEach(ctx, sortedKeys(want), func(key string) error {
		_, err := o.c.StatObject(ctx, o.bucket, key, minio.StatObjectOptions{})
		switch code := minio.ToErrorResponse(err).StatusCode; {
		case err == nil:
			return fmt.Errorf("%s: HEAD without the key answers 200: %w", key, errPlaintext)
		case code != http.StatusBadRequest:
			return fmt.Errorf("%s: HEAD without the key: %v (want 400)", key, err)
		}
		info, err := o.c.StatObject(ctx, o.bucket, key, minio.StatObjectOptions{ServerSideEncryption: o.sse})
		switch {
		case err != nil:
			return fmt.Errorf("%s: HEAD with the key: %w", key, err)
		case info.Size != want[key]:
			return fmt.Errorf("%s: %d bytes in the bucket, %d written", key, info.Size, want[key])
		case info.Metadata.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != "AES256":
			return fmt.Errorf("%s: HEAD with the key does not echo the SSE-C algorithm", key)
		}
		return nil
	})
}

// sha256Of downloads an object with the key and hashes it.
func (o *objStore) sha256Of(ctx context.Context, key string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	obj, err := o.c.GetObject(ctx, o.bucket, key, minio.GetObjectOptions{ServerSideEncryption: o.sse})
	if err != nil {
		return sum, err
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		return sum, fmt.Errorf("%s: %w", key, err)
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}

// sameObjects downloads each object of want (key → content) with the key
// and compares its bytes.
func (o *objStore) sameObjects(ctx context.Context, want map[string][]byte) error {
	return forEach(ctx, sortedKeys(want), func(key string) error {
		obj, err := o.c.GetObject(ctx, o.bucket, key, minio.GetObjectOptions{ServerSideEncryption: o.sse})
		if err != nil {
			return err
		}
		defer obj.Close()
		got, err := io.ReadAll(obj)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if !bytes.Equal(got, want[key]) {
			return fmt.Errorf("%s: %w", key, errBytes)
		}
		return nil
	})
}

// errBytes marks content that differs from what was written.
var errBytes = errors.New("other bytes than were written")

// remove deletes what a write workload left in the bucket, so that the
// servers' disks do not fill up over many runs.
func (o *objStore) remove(ctx context.Context, prefix string) {
	objs := o.c.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
	for r := range o.c.RemoveObjects(ctx, o.bucket, objs, minio.RemoveObjectsOptions{}) {
		logf("removing %s: %v", r.ObjectName, r.Err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// forEach runs fn on 8 keys at a time and returns the first error in key
// order.
func forEach(ctx context.Context, keys []string, fn func(string) error) error {
	errs := make([]error, len(keys))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, k := range keys {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(k)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
