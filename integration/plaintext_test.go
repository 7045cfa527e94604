//go:build integration

package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// keyDropper is a proxy's transport that removes the SSE-C headers from
// uploads and signs them again, as a misconfigured proxy or server that
// stores what it gets in plaintext would: the object lands unencrypted and
// the answer carries no echo.
type keyDropper struct {
	next        http.RoundTripper
	access, sec string
	on          atomic.Bool
	dropped     atomic.Int32
}

func (k *keyDropper) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.on.Load() && r.Method == http.MethodPut && r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key") != "" {
		r = r.Clone(r.Context())
		for h := range r.Header {
			if strings.HasPrefix(strings.ToLower(h), "x-amz-server-side-encryption-customer-") {
				r.Header.Del(h)
			}
		}
		r.Header.Del("Authorization")
		r = signer.SignV4(*r, k.access, k.sec, "", "us-east-1")
		k.dropped.Add(1)
	}
	return k.next.RoundTrip(r)
}

// An upload whose answer lacks our key's echo fails, and the plaintext
// object it left (same ETag, a HEAD shows no encryption) is deleted: the
// bytes never stay readable without the key.
func TestAnUploadStoredInPlaintextIsRemoved(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		kd := &keyDropper{access: s.access, sec: s.sec}
		kd.on.Store(true)
		url, _ := s.tlsProxy(t, func(next http.RoundTripper) http.RoundTripper { kd.next = next; return kd })
		// A long window, so that no retry in the background uploads (and
		// removes) the file again while the bucket is checked: the one
		// upload is fsync's.
		m := s.mount(t, b, "--endpoint", url, "--write-back", "1h")
		f, err := os.Create(filepath.Join(m.dir, "report.txt"))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("confidential")
		if err := f.Sync(); err == nil {
			t.Fatal("fsync succeeded although the upload was stored without the key")
		}
		f.Close()
		if kd.dropped.Load() == 0 {
			t.Fatal("the proxy dropped no key: the test tested nothing")
		}
		if keys := s.keys(t, b); slices.Contains(keys, "report.txt") {
			t.Fatalf("the plaintext object stays in the bucket: %v", keys)
		}
		if log := readLog(m.log); !strings.Contains(log, "the plaintext object it left was removed") {
			t.Errorf("the log does not say the plaintext object was removed")
		}
		// The file waits in the journal; with the headers back it is
		// uploaded encrypted at unmount.
		kd.on.Store(false)
		m.unmount(t)
		if n := s.assertAllEncrypted(t, b); n != 1 {
			t.Fatalf("%d objects in the bucket, want report.txt", n)
		}
	})
}
