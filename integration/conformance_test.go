//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssecfs/ssecfs/keys"
	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/storetest"
)

// otherSecret is a second SSE-C key, as another user of the bucket has.
const otherSecret = "eeKae5ooNgah3aisoh2Ohsh4quee7Gie"

// TestStoreConformance runs the store suite that store/memstore's tests run
// against the fake, here against store.S3 on each real server: whatever
// the fake gets wrong shows as a difference between the two runs.
func TestStoreConformance(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		storetest.Run(t, func(t *testing.T) storetest.Fixture {
			b := s.rawBucket(t)
			raw := s.rawClient(t)
			other := s.s3(t, b, otherSecret)
			return storetest.Fixture{
				Store: s.s3(t, b, secret),
				PutPlain: func(t *testing.T, key string, data []byte) {
					// store.S3 refuses to send object data without the
					// key; a plaintext object comes from a plain client.
					_, err := raw.PutObject(t.Context(), b, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
					if err != nil {
						t.Fatalf("plaintext put %q: %v", key, err)
					}
				},
				PutOtherKey: func(t *testing.T, key string, data []byte) {
					if _, err := other.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), nil); err != nil {
						t.Fatalf("put %q under the other key: %v", key, err)
					}
				},
			}
		})
	})
}

// s3 is a store.S3 on bucket b of s, keyed with secret. Credentials
// reach it as they reach the daemon, through the environment.
func (s *server) s3(t *testing.T, b, secret string) *store.S3 {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", s.access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.sec)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	k, err := keys.Parse([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{
		Bucket: b, Endpoint: s.endpoint, Region: "us-east-1", CAFile: s.ca, Key: k,
		// One retry: the suite reads past an object's end on purpose,
		// which S3 retries as a cut body; the default would wait 7.5 s.
		Timeout: 30 * time.Second, MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// rawBucket creates a fresh bucket with the plain client, and removes it
// with its objects and pending uploads after the test: each subtest has
// a bucket of its own, and awscli's start-up (s.bucket) would cost more
// than the subtest.
func (s *server) rawBucket(t *testing.T) string {
	t.Helper()
	c := s.rawClient(t)
	ctx := context.Background()
	r := make([]byte, 6)
	rand.Read(r)
	name := "conf-" + hex.EncodeToString(r)
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		for u := range c.ListIncompleteUploads(ctx, name, "", true) {
			if u.Err == nil {
				_ = c.RemoveIncompleteUpload(ctx, name, u.Key)
			}
		}
		for o := range c.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil {
				_ = c.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{})
			}
		}
		if err := c.RemoveBucket(ctx, name); err != nil {
			t.Logf("removing bucket %s: %v", name, err)
		}
	})
	return name
}
