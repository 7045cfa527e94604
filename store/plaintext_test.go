package store_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// An upload whose answer did not prove our key leaves no plaintext object
// behind: the object with the upload's ETag, shown plaintext by a HEAD, is
// deleted; anything else is left alone.
func TestDropPlaintextRemovesOnlyThePlaintextObjectOfTheUpload(t *testing.T) {
	m := memstore.New("ours")
	m.Seed("plain", []byte("p"), nil, "")
	m.Seed("other", []byte("o"), nil, "")
	m.Seed("sealed", []byte("s"), nil, "ours")
	head := func(k string) store.Attrs {
		a, err := m.Head(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	cause := store.ErrNoEcho
	err := store.DropPlaintext(context.Background(), m, "plain", head("plain").ETag, cause)
	if !errors.Is(err, store.ErrNoEcho) {
		t.Fatalf("the error lost its cause: %v", err)
	}
	_ = store.DropPlaintext(context.Background(), m, "other", "another upload's etag", cause)
	_ = store.DropPlaintext(context.Background(), m, "sealed", head("sealed").ETag, cause)
	if keys := m.Keys(); !slices.Equal(keys, []string{"other", "sealed"}) {
		t.Fatalf("bucket holds %v, want [other sealed]", keys)
	}
}

// A multipart upload stored without the key (a proxy dropped the headers;
// the completion answer never echoes on RGW) fails its check and leaves
// nothing readable without the key.
func TestAMultipartUploadStoredInPlaintextIsRemoved(t *testing.T) {
	m := memstore.New("ours")
	m.SetStorePlain(true)
	data := bytes.Repeat([]byte("secret "), 3*store.MinPartSize/7)
	src := func(ctx context.Context, off int64, buf []byte) error {
		copy(buf, data[off:])
		return nil
	}
	_, err := store.Upload(context.Background(), m, "k", src, int64(len(data)), nil, nil)
	if !errors.Is(err, store.ErrNoEcho) {
		t.Fatalf("upload: %v, want ErrNoEcho", err)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("the plaintext object stays: %v", keys)
	}
}

// A file is one PUT up to 8 MiB, else a multipart upload of 8 MiB parts
// (PartSize doubles them past 10,000 parts); a multipart upload that fails
// is aborted, and nothing stands in for the file.
func TestUploadIsOnePutUpTo8MiBElseMultipartAndAFailedOneIsAborted(t *testing.T) {
	src := func(ctx context.Context, off int64, buf []byte) error { return nil }
	ops := func(m *memstore.Store) map[string]int {
		n := map[string]int{}
		for _, c := range m.Calls() {
			n[c.Op]++
		}
		return n
	}
	m := memstore.New("ours")
	if _, err := store.Upload(context.Background(), m, "a", src, store.MinPartSize, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := ops(m); n["put"] != 1 || n["create"] != 0 {
		t.Fatalf("8 MiB: %v, want one PUT", n)
	}
	m = memstore.New("ours")
	if _, err := store.Upload(context.Background(), m, "b", src, 2*store.MinPartSize+1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := ops(m); n["put"] != 0 || n["create"] != 1 || n["part"] != 3 || n["complete"] != 1 {
		t.Fatalf("16 MiB and a byte: %v, want a multipart upload of 3 parts", n)
	}
	if ps := store.PartSize(10000*store.MinPartSize + 1); ps != 2*store.MinPartSize {
		t.Fatalf("part size past 10,000 parts: %d", ps)
	}
	m = memstore.New("ours")
	m.Fail = func(op, key string) error {
		if op == "part" {
			return store.ErrUnavailable
		}
		return nil
	}
	if _, err := store.Upload(context.Background(), m, "c", src, 2*store.MinPartSize+1, nil, nil); err == nil {
		t.Fatal("a failing part did not fail the upload")
	}
	if m.Uploads() != 0 || len(m.Keys()) != 0 {
		t.Fatalf("after a failed multipart upload: %d uploads, objects %v", m.Uploads(), m.Keys())
	}
}
