package store

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A plain listing is our own request: signed, retried on the answers
// minio-go retries, and its errors known by classify like minio-go's.
func TestAPlainListingIsRetriedAndItsErrorsKnown(t *testing.T) {
	var calls atomic.Int32
	status := atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") || r.URL.Query().Get("list-type") != "2" {
			t.Errorf("request %d: %s %s, authorization %q", n, r.Method, r.URL, r.Header.Get("Authorization"))
		}
		if st := int(status.Load()); st != 0 && n < 3 {
			w.WriteHeader(st)
			if st == http.StatusForbidden {
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>`))
			}
			return
		}
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>` +
			`<Contents><Key>a%20b</Key><LastModified>2026-12-05T05:40:31.957Z</LastModified><ETag>&quot;e&quot;</ETag><Size>3</Size></Contents>` +
			`<CommonPrefixes><Prefix>d%2F</Prefix></CommonPrefixes></ListBucketResult>`))
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	s, err := New(Config{Bucket: "bucket", Endpoint: srv.URL, AllowHTTP: true, Region: "r", Timeout: 5 * time.Second, MaxRetries: 4})
	if err != nil {
		t.Fatal(err)
	}
	list := func() ([]Entry, error) {
		var out []Entry
		err := s.List(context.Background(), "", ListOptions{}, func(e Entry) error { out = append(out, e); return nil })
		return out, err
	}
	status.Store(http.StatusServiceUnavailable)
	got, err := list()
	if err != nil || calls.Load() != 3 || len(got) != 2 || got[0].Key != "a b" || got[0].ETag != "e" || got[0].Size != 3 ||
		got[0].IsPrefix || got[1].Key != "d/" || !got[1].IsPrefix {
		t.Fatalf("after two 503s: %+v, %v, %d requests", got, err, calls.Load())
	}
	calls.Store(0)
	status.Store(http.StatusForbidden)
	if _, err := list(); !errors.Is(err, ErrAccessDenied) || calls.Load() != 1 {
		t.Fatalf("a 403: %v after %d requests, want ErrAccessDenied after one", err, calls.Load())
	}
}
