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

// Statements of SEMANTICS' Attributes and Freshness sections that need no
// kernel: what a stat shows and what it costs.

func ops(m *memstore.Store, op string) (n int) {
	for _, c := range m.Calls() {
		if c.Op == op {
			n++
		}
	}
	return n
}

// Size shows from the listing before any HEAD, and from the keyed HEAD
// after it; metadata only a HEAD brings overrides the listing's defaults.
func TestSizeFromTheListingThenTheHead(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("f", []byte("12345"), map[string]string{"mode": "33152", "mtime": "1600000000"}, ourMD5) // 0600
	n := newNS(t, m, nil)
	ctx := context.Background()
	e, err := n.Root().Find(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if a := Listed(e.Object); a.Size != 5 || a.Mode != 0o644 {
		t.Fatalf("from the listing: %+v", a)
	}
	h, err := n.Root().ObjectAttrs(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	a := n.Object("f", h, Listed(e.Object))
	if a.Size != 5 || a.Mode != 0o600 || a.Mtime.Unix() != 1600000000 || ops(m, "head") != 1 {
		t.Fatalf("from the HEAD: %+v after %d HEADs", a, ops(m, "head"))
	}
}

// A folder shows the mode, owner and mtime of its marker object, else 0755
// and the time of the mount.
func TestAFolderShowsItsMarkersAttributesElseDefaults(t *testing.T) {
	m := memstore.New(ourMD5)
	m.Seed("marked/", nil, map[string]string{"mode": "16832", "uid": "5", "gid": "6", "mtime": "1500000000"}, ourMD5) // 040700
	m.Seed("implicit/x", []byte("x"), nil, ourMD5)
	n := newNS(t, m, nil)
	ctx := context.Background()
	a, err := n.Folder("marked/").Attrs(ctx)
	if err != nil || a.Mode != 0o700 || !a.Owned || a.UID != 5 || a.GID != 6 || a.Mtime.Unix() != 1500000000 {
		t.Fatalf("marked: %+v %v", a, err)
	}
	a, err = n.Folder("implicit/").Attrs(ctx)
	if err != nil || a.Mode != 0o755 || a.Owned || !a.Mtime.Equal(n.Started()) {
		t.Fatalf("implicit: %+v %v, want 0755 and the mount's start", a, err)
	}
}

func seedFolder(m *memstore.Store, prefix string, files int) {
	for i := range files {
		m.Seed(fmt.Sprintf("%sf%03d", prefix, i), []byte("x"), nil, ourMD5)
	}
}

// On a server whose listings carry no metadata (RGW, AWS), the first stat
// of a file starts the HEADs of the files listed after it, so that `ls -l`
// finds them answered.
func TestAStatStartsTheHeadsOfTheNextFiles(t *testing.T) {
	m := memstore.New(ourMD5)
	seedFolder(m, "d/", 40)
	n := newNS(t, m, func(o *Options) { o.MetaAhead = 32 })
	ctx := context.Background()
	d := n.Folder("d/")
	if _, err := d.Find(ctx, "f000"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ObjectAttrs(ctx, "d/f000"); err != nil {
		t.Fatal(err)
	}
	if k := d.metaKeysAfter("f001", false); len(k) != 0 {
		t.Fatalf("HEADs of %v were not started by the first stat", k)
	}
	// Past half the window, the next ones start.
	if k := d.metaKeysAfter("f016", false); len(k) != 8 || k[0] != "d/f032" {
		t.Fatalf("window topped up with %v", k)
	}
}

// On a server that lists metadata (MinIO), while programs stat what they
// list, folders are listed with it and the stats cost no HEAD; once a
// folder was read and none of its files stat'ed (find), folders are listed
// plainly, and the second stat in such a folder lists it once more with
// metadata, which answers the rest.
func TestStatsOfAListedFolderCostNoHeadOnAServerListingMetadata(t *testing.T) {
	m := memstore.New(ourMD5)
	m.SetListMeta(true)
	seedFolder(m, "a/", 5)
	seedFolder(m, "b/", 5)
	seedFolder(m, "c/", 5)
	n := newNS(t, m, nil)
	ctx := context.Background()
	a := n.Folder("a/")
	if _, err := a.List(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := a.ObjectAttrs(ctx, fmt.Sprintf("a/f%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if ops(m, "list+meta") != 1 || ops(m, "head") != 0 {
		t.Fatalf("ls -l of a/: %v", m.Calls())
	}
	// find reads b/ and stats nothing: c/ is listed plainly.
	if _, err := n.Folder("b/").List(ctx); err != nil {
		t.Fatal(err)
	}
	m.ResetCalls()
	c := n.Folder("c/")
	if _, err := c.List(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := c.ObjectAttrs(ctx, fmt.Sprintf("c/f%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if ops(m, "list") != 1 || ops(m, "head") != 1 || ops(m, "list+meta") != 1 {
		t.Fatalf("stats of c/ after a walk that stat'ed nothing: %v", m.Calls())
	}
}

// A lookup lists its folder once (cached for the TTL) rather than probing
// the one name: its neighbours' lookups cost nothing.
func TestLookupsListTheirFolderOnce(t *testing.T) {
	m := memstore.New(ourMD5)
	seedFolder(m, "d/", 10)
	n := newNS(t, m, nil)
	d := n.Folder("d/")
	for i := range 10 {
		if _, err := d.Find(context.Background(), fmt.Sprintf("f%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Find(context.Background(), "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if got := m.Calls(); len(got) != 1 || got[0].Op != "list" {
		t.Fatalf("calls: %v", got)
	}
}

// A folder's listing finishes when the caller that asked for it gives up
// (a signal interrupts its request): others wait for the same listing, and
// rmdir or unlink must not fail with EINTR on the lookup on their way.
func TestAListingIsNotCutByTheCallerGivingUp(t *testing.T) {
	m := memstore.New(ourMD5)
	seedFolder(m, "d/", 3)
	n := newNS(t, cutStore{m}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Folder("d/").Find(ctx, "f001"); err != nil {
		t.Fatalf("lookup by a caller already interrupted: %v", err)
	}
}

// Listings are trusted for the TTL: a change by another client shows once
// the TTL has passed, here at once with a TTL of zero, and not before with
// a TTL of an hour.
func TestAnotherClientsChangeShowsAfterTheTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl   time.Duration
		shows bool
	}{{time.Hour, false}, {0, true}} {
		m := memstore.New(ourMD5)
		m.Seed("a", []byte("a"), nil, ourMD5)
		n := newNS(t, m, func(o *Options) { o.MetaTTL = tc.ttl; o.Journal = nil })
		listNames(t, n.Root())
		m.Seed("b", []byte("b"), nil, ourMD5)
		if got := slices.Contains(listNames(t, n.Root()), "b"); got != tc.shows {
			t.Errorf("TTL %v: another client's file shows: %v, want %v", tc.ttl, got, tc.shows)
		}
	}
}

// cutStore's listings fail once their context is done, as the real store's
// requests do.
type cutStore struct{ *memstore.Store }

func (c cutStore) List(ctx context.Context, prefix string, opts store.ListOptions, fn func(store.Entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.Store.List(ctx, prefix, opts, fn)
}
