package ns

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// Offline (every call refused with ErrOffline), a folder listed before
// lists from its snapshot with this mount's own new files on top, a file
// stated before stats and opens with its last attributes, while a folder
// never listed, and mkdir, fail; once the server is back the next look
// asks it and sees another client's change.
func TestOfflineAListedFolderAnswersFromWhatTheMountKnew(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("docs/a", []byte("aaa"), nil, ourMD5)
	m.Seed("docs/b", []byte("b"), nil, ourMD5)
	m.Seed("other/x", []byte("x"), nil, ourMD5)
	// Every answer is out of date at once: only the offline rule can
	// explain an answer without a call.
	n := newNS(t, m, func(o *Options) { o.MetaTTL = time.Nanosecond })
	ctx := context.Background()
	docs := n.Folder("docs/")
	if got := listNames(t, docs); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("online listing: %v", got)
	}
	if _, err := n.Proven(ctx, "docs/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Head(ctx, "docs/b"); err != nil {
		t.Fatal(err)
	}

	// A failure that is not the server out of reach (a 503) is an error,
	// and the last answer is kept for when it is.
	m.Fail = func(op, key string) error {
		return fmt.Errorf("%s %q: %w (503 SlowDown)", op, key, store.ErrUnavailable)
	}
	if _, err := n.Head(ctx, "docs/b"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("stat while the server answers 503: %v", err)
	}
	m.Fail = func(op, key string) error { return fmt.Errorf("%s %q: %w", op, key, store.ErrOffline) }
	waitingFile(t, n, "docs/new", "written offline")
	if got := listNames(t, docs); !slices.Equal(got, []string{"a", "b", "new"}) {
		t.Fatalf("offline listing: %v, want the snapshot and the new file", got)
	}
	if e, err := docs.Find(ctx, "a"); err != nil || e.Dir {
		t.Fatalf("offline lookup: %+v %v", e, err)
	}
	if a, err := n.Proven(ctx, "docs/a"); err != nil || a.Size != 3 {
		t.Fatalf("offline open of a file stated before: %+v %v", a, err)
	}
	if a, err := n.Head(ctx, "docs/b"); err != nil || a.Size != 1 {
		t.Fatalf("offline stat: %+v %v", a, err)
	}
	if a, err := n.Folder("other/").Attrs(ctx); err != nil || a.Mode != 0o755 {
		t.Fatalf("offline stat of a listed folder never stated: %+v %v", a, err)
	}
	if _, err := n.Folder("other/").List(ctx); !errors.Is(err, store.ErrOffline) {
		t.Fatalf("offline listing of a folder never listed: %v", err)
	}
	if _, err := n.Root().Mkdir(ctx, "made-offline", 0o755, Owner{}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("offline mkdir: %v", err)
	}

	m.Fail = nil
	m.Seed("docs/c", []byte("c"), nil, ourMD5) // another client, meanwhile
	if got := listNames(t, docs); !slices.Equal(got, []string{"a", "b", "c", "new"}) {
		t.Fatalf("listing once the server is back: %v", got)
	}
}

// With --meta-ttl 0 nothing is answered from memory: offline, a listing
// fails even for a folder listed before.
func TestOfflineAMountWithoutTTLFails(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("docs/a", []byte("a"), nil, ourMD5)
	n := newNS(t, m, func(o *Options) { o.MetaTTL = 0 })
	ctx := context.Background()
	docs := n.Folder("docs/")
	listNames(t, docs)
	if _, err := n.Head(ctx, "docs/a"); err != nil {
		t.Fatal(err)
	}
	m.Fail = func(op, key string) error { return store.ErrOffline }
	if _, err := docs.List(ctx); !errors.Is(err, store.ErrOffline) {
		t.Fatalf("offline listing with --meta-ttl 0: %v", err)
	}
	if _, err := n.Head(ctx, "docs/a"); !errors.Is(err, store.ErrOffline) {
		t.Fatalf("offline stat with --meta-ttl 0: %v", err)
	}
}
