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
