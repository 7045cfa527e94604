package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// putLost stores a PUT (or not) and then answers as a cut connection does.
type putLost struct {
	store.Store
	stores bool
}

func (p putLost) Put(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (string, error) {
	if p.stores {
		if _, err := p.Store.Put(ctx, key, body, size, meta); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("upload %q: connection closed: %w", key, store.ErrUnavailable)
}

// A PUT that the server stored but whose answer was lost has replaced the
// file's base: failing it would make every retry read the base and meet
// 412. The HEAD finds the PUT's own ID on the object.
func TestAPutWhoseAnswerWasLostSucceeds(t *testing.T) {
	m := memstore.New("ours")
	m.Seed("k", []byte("old"), nil, "ours")
	data := []byte("new bytes")
	src := func(ctx context.Context, off int64, buf []byte) error {
		copy(buf, data[off:])
		return nil
	}
	a, err := store.Upload(context.Background(), putLost{m, true}, "k", src, int64(len(data)), map[string]string{"mode": "33188"}, nil)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if got, _, _, _ := m.Object("k"); !bytes.Equal(got, data) || a.Size != int64(len(data)) || a.Meta["mode"] != "33188" {
		t.Fatalf("the object is not the upload: %q %+v", got, a)
	}

	// Not stored, or stored by another PUT (another ID): still a failure.
	if _, err := store.Upload(context.Background(), putLost{m, false}, "k", src, int64(len(data)), nil, nil); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a PUT that did not land: err %v, want ErrUnavailable", err)
	}
}
