package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// lostAnswer completes multipart uploads, then answers as a retry of a
// request whose answer was lost does: 404 NoSuchUpload.
type lostAnswer struct{ store.Store }

func (l lostAnswer) CompleteMultipart(ctx context.Context, key, id string, parts []store.Part) error {
	if err := l.Store.CompleteMultipart(ctx, key, id, parts); err != nil {
		return err
	}
	return l.Store.CompleteMultipart(ctx, key, id, parts)
}

func TestAnUploadWhoseCompletionAnswerWasLostSucceeds(t *testing.T) {
	m := memstore.New("ours")
	data := bytes.Repeat([]byte("x"), 2*store.MinPartSize+5)
	src := func(ctx context.Context, off int64, buf []byte) error {
		copy(buf, data[off:])
		return nil
	}
	a, err := store.Upload(context.Background(), lostAnswer{m}, "k", src, int64(len(data)), nil, nil)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if got, _, _, _ := m.Object("k"); !bytes.Equal(got, data) || a.Size != int64(len(data)) {
		t.Fatal("the object is not the upload")
	}
}

func TestACompletionThatReallyFailedStillFails(t *testing.T) {
	m := memstore.New("ours")
	err := store.Complete(context.Background(), m, "k", "no-such-upload", []store.Part{{Number: 1, ETag: "00"}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
}
