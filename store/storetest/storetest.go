// Package storetest is one conformance suite for store.Store: the same test
// bodies run against the in-memory store (store/memstore, in its tests) and
// against the real servers, Ceph RGW and MinIO (integration/), so that the
// fake the filesystem's tests use cannot drift from what the servers do.
//
// Each subtest asserts a behaviour that the code above the store relies on
// and that a fake could get wrong. Where the real servers differ from each
// other (RGW refuses CopyObject of SSE-C objects, only MinIO lists
// metadata), the suite accepts each documented answer and says why.
package storetest

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ssecfs/ssecfs/store"
)

// Fixture is one fresh, empty bucket seen through the store under test.
type Fixture struct {
	// Store is keyed with our SSE-C key.
	Store store.Store
	// PutPlain stores data as key without SSE-C, as another tool (or a
	// folder marker made by the console) would.
	PutPlain func(t *testing.T, key string, data []byte)
	// PutOtherKey stores data as key encrypted with another SSE-C key.
	PutOtherKey func(t *testing.T, key string, data []byte)
}

// Run runs every subtest on a fixture of its own from newFixture.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	tests := []struct {
		name string
		f    func(t *testing.T, fx Fixture)
	}{
		{"PutThenHead", testPutThenHead},
		{"ReadRange", testReadRange},
		{"Missing", testMissing},
		{"OtherKeyAndPlaintext", testOtherKeyAndPlaintext},
		{"List", testList},
		{"ListMetadata", testListMetadata},
		{"Delete", testDelete},
		{"Copy", testCopy},
		{"Copier", testCopier},
		{"CopyPart", testCopyPart},
		{"Multipart", testMultipart},
		{"MultipartAbort", testMultipartAbort},
		{"MultipartPartTooSmall", testMultipartTooSmall},
		{"Upload", testUpload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newFixture(t)) })
	}
}

// data is n reproducible bytes that differ per seed, so that a read of the
// wrong object or offset shows.
func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// meta is user metadata as the filesystem stores it: lower-case names
// without the x-amz-meta- prefix.
func meta(mtime string) map[string]string {
	return map[string]string{"mtime": mtime, "mode": "100644", "uid": "1000", "gid": "1000"}
}

func put(t *testing.T, st store.Store, key string, b []byte, m map[string]string) string {
	t.Helper()
	etag, err := st.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)), m)
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return etag
}

func head(t *testing.T, st store.Store, key string) store.Attrs {
	t.Helper()
	a, err := st.Head(t.Context(), key)
	if err != nil {
		t.Fatalf("head %q: %v", key, err)
	}
	return a
}

// read reads the whole object through ReadRange.
func read(t *testing.T, st store.Store, key string, size int64, plain bool) []byte {
	t.Helper()
	b := make([]byte, size)
	n, err := st.ReadRange(t.Context(), key, store.Range{Plaintext: plain}, b)
	if err != nil || n != len(b) {
		t.Fatalf("read %q: %d bytes, %v", key, n, err)
	}
	return b
}

// checkObject asserts that key holds want, encrypted with our key, with
// exactly the user metadata m, and returns its attributes.
func checkObject(t *testing.T, st store.Store, key string, want []byte, m map[string]string) store.Attrs {
	t.Helper()
	a := head(t, st, key)
	if a.Size != int64(len(want)) || a.Encryption != store.EncOurs || a.ETag == "" || a.Listed {
		t.Fatalf("head %q: size %d encryption %v etag %q listed %v, want size %d sse-c, an ETag, not listed",
			key, a.Size, a.Encryption, a.ETag, a.Listed, len(want))
	}
	if m != nil && !maps.Equal(a.Meta, m) {
		t.Fatalf("head %q: metadata %v, want %v", key, a.Meta, m)
	}
	if got := read(t, st, key, a.Size, false); !bytes.Equal(got, want) {
		t.Fatalf("%q does not hold the bytes written", key)
	}
	return a
}

func testPutThenHead(t *testing.T, fx Fixture) {
	st := fx.Store
	b := data(1, 3000)
	m := meta("1700000000.123456789")
	etag := put(t, st, "f", b, m)
	if etag == "" {
		t.Fatal("put returned no ETag")
	}
	a := checkObject(t, st, "f", b, m)
	if a.ETag != etag {
		t.Fatalf("head ETag %q, put returned %q: a version pinned at write time would read as changed", a.ETag, etag)
	}
	if a.LastModified.IsZero() {
		t.Fatal("head: no LastModified")
	}

	// The interface promises lower-case names: S3 header names are case
	// insensitive, so a name's case cannot round-trip on a real server.
	m2 := map[string]string{"Mixed-Case": "v", "mtime": "2"}
	etag2 := put(t, st, "f", data(2, 2000), m2)
	a = checkObject(t, st, "f", data(2, 2000), map[string]string{"mixed-case": "v", "mtime": "2"})
	if a.ETag != etag2 || etag2 == etag {
		t.Fatalf("overwrite: put ETag %q, head %q, old %q: new bytes need a new ETag", etag2, a.ETag, etag)
	}

	// An empty file is an object of 0 bytes with an ETag like any other.
	if put(t, st, "empty", nil, nil) == "" {
		t.Fatal("put of 0 bytes returned no ETag")
	}
	checkObject(t, st, "empty", nil, map[string]string{})
}

func testReadRange(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	b := data(3, 4096)
	etag := put(t, st, "r", b, nil)
	if got := read(t, st, "r", int64(len(b)), false); !bytes.Equal(got, b) {
		t.Fatal("whole read differs")
	}
	mid := make([]byte, 500)
	n, err := st.ReadRange(ctx, "r", store.Range{Offset: 1000, IfMatch: etag}, mid)
	if err != nil || n != 500 || !bytes.Equal(mid, b[1000:1500]) {
		t.Fatalf("middle read pinned to the current ETag: %d bytes, %v", n, err)
	}
	// At or past the end, the servers answer 416 and the store io.EOF.
	_, err = st.ReadRange(ctx, "r", store.Range{Offset: int64(len(b))}, make([]byte, 10))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("read at the end: %v, want io.EOF", err)
	}
	// A range that runs past the end is a short answer: an error (the
	// caller asks only for bytes that exist). S3 sees a cut body there and
	// retries it before giving up with ErrUnavailable; the fake says so at
	// once. Only "an error, no success" is common to both.
	if _, err := st.ReadRange(ctx, "r", store.Range{Offset: int64(len(b)) - 10}, make([]byte, 20)); err == nil {
		t.Fatal("a read running past the end succeeded")
	}
	// A stale version: the servers answer 412 to If-Match, the store ErrChanged.
	put(t, st, "r", data(4, 4096), nil)
	_, err = st.ReadRange(ctx, "r", store.Range{Offset: 0, IfMatch: etag}, make([]byte, 100))
	if !errors.Is(err, store.ErrChanged) {
		t.Fatalf("read pinned to a replaced version: %v, want ErrChanged", err)
	}
}

func testMissing(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	if _, err := st.Head(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("head of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := st.ReadRange(ctx, "nope", store.Range{}, make([]byte, 10)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := st.ReadRange(ctx, "nope", store.Range{Plaintext: true}, make([]byte, 10)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unkeyed read of a missing key: %v, want ErrNotFound", err)
	}
}

func testOtherKeyAndPlaintext(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	other, plain := data(5, 1000), data(6, 1500)
	fx.PutOtherKey(t, "other", other)
	fx.PutPlain(t, "plain", plain)

	if _, err := st.Head(ctx, "other"); !errors.Is(err, store.ErrOtherKey) {
		t.Fatalf("head of an object under another key: %v, want ErrOtherKey", err)
	}
	// A keyed read of it fails; how it is classified differs (MinIO 403
	// AccessDenied, RGW 400 InvalidArgument): the filesystem HEADs first.
	buf := make([]byte, len(other))
	if _, err := st.ReadRange(ctx, "other", store.Range{}, buf); err == nil {
		t.Fatal("a read with our key of an object under another key succeeded")
	}

	a := head(t, st, "plain")
	if a.Encryption != store.EncPlain || a.Size != int64(len(plain)) || a.ETag == "" {
		t.Fatalf("head of a plaintext object: %v, size %d, ETag %q", a.Encryption, a.Size, a.ETag)
	}
	// The filesystem reads plaintext objects unkeyed, pinned to the ETag.
	got := make([]byte, len(plain))
	if _, err := st.ReadRange(ctx, "plain", store.Range{Plaintext: true, IfMatch: a.ETag}, got); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("unkeyed read of a plaintext object: %v", err)
	}
}

// list returns the entries of one listing.
func list(t *testing.T, st store.Store, prefix string, opts store.ListOptions) []store.Entry {
	t.Helper()
	var out []store.Entry
	if err := st.List(t.Context(), prefix, opts, func(e store.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("list %q %+v: %v", prefix, opts, err)
	}
	return out
}

// names shows a listing as keys, common prefixes marked with a "+".
func names(es []store.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Key
		if e.IsPrefix {
			out[i] = "+" + e.Key
		}
	}
	return out
}

func testList(t *testing.T, fx Fixture) {
	st := fx.Store
	// Byte order puts "c-d" (0x2d) and "c.d" (0x2e) before "c/" (0x2f)
	// and "B" before "a": a fake sorting otherwise would show. No object
	// has the name of a prefix ("c" and "c/1"): MinIO stores objects as
	// folders and hides whatever is under such an object, even from a
	// recursive listing (RGW and AWS list both).
	// "z &+%<>" takes the URL encoding of listings and XML's escapes.
	keys := []string{"B", "a", "c-d", "c.d", "c/1", "d/", "d/x", "e/1", "e/2", "e/f/3", "z", "z &+%<>", "\u00e9"}
	sizes := map[string]int{}
	for i, k := range keys {
		n := 100 + i
		if strings.HasSuffix(k, "/") {
			n = 0 // a folder marker
		}
		sizes[k] = n
		put(t, st, k, data(uint64(10+i), n), nil)
	}
	check := func(prefix string, opts store.ListOptions, want ...string) []store.Entry {
		t.Helper()
		es := list(t, st, prefix, opts)
		got := names(es)
		if !inOrder(es) {
			t.Fatalf("list %q %+v: %q, objects or common prefixes out of key order", prefix, opts, got)
		}
		// Objects and common prefixes each come in key order, but not
		// merged: S3 answers them in two lists per page, and minio-go
		// passes on a page's objects before its common prefixes. So the
		// set is compared, in key order.
		sorted := func(n []string) []string {
			n = slices.Clone(n)
			slices.SortFunc(n, func(a, b string) int { return strings.Compare(strings.TrimPrefix(a, "+"), strings.TrimPrefix(b, "+")) })
			return n
		}
		if !slices.Equal(sorted(got), want) {
			t.Fatalf("list %q %+v:\n got %q\nwant %q (in any merge of objects and prefixes)", prefix, opts, got, want)
		}
		return es
	}
	check("", store.ListOptions{}, "B", "a", "c-d", "c.d", "+c/", "+d/", "+e/", "z", "z &+%<>", "\u00e9")
	check("e/", store.ListOptions{}, "e/1", "e/2", "+e/f/")
	// The prefix's own marker is an object, not a common prefix.
	check("d/", store.ListOptions{}, "d/", "d/x")
	all := check("", store.ListOptions{Recursive: true}, keys...)
	if got := names(all); !slices.Equal(got, keys) {
		t.Fatalf("recursive listing %q, want key order %q", got, keys)
	}
	check("", store.ListOptions{Recursive: true, Limit: 3}, "B", "a", "c-d")
	// A limit counts objects and common prefixes together, in key order.
	check("", store.ListOptions{Limit: 5}, "B", "a", "c-d", "c.d", "+c/")
	check("", store.ListOptions{Recursive: true, StartAfter: "c/1"}, "d/", "d/x", "e/1", "e/2", "e/f/3", "z", "z &+%<>", "\u00e9")
	check("", store.ListOptions{StartAfter: "c/1"}, "+d/", "+e/", "z", "z &+%<>", "\u00e9")
	check("nothing/", store.ListOptions{})

	// A listing tells size, ETag and time without the key: the
	// filesystem shows them before any HEAD, and pins reads to the ETag.
	for _, e := range all {
		a := head(t, st, e.Key)
		etagOK := e.ETag == a.ETag
		if !etagOK && strings.HasSuffix(e.Key, "/") && e.ETag != "" && strings.HasSuffix(a.ETag, e.ETag) {
			// MinIO: a keyed HEAD of an SSE-C key ending in "/" shows the
			// sealed ETag (96 hex digits), whose last 32 are the ETag its
			// PUT answered and listings show. Only folder markers.
			t.Logf("folder marker %q: head ETag %q, listed %q (MinIO)", e.Key, a.ETag, e.ETag)
			etagOK = true
		}
		if e.Size != int64(sizes[e.Key]) || !etagOK || e.LastModified.IsZero() {
			t.Errorf("listed %q: size %d ETag %q time %v; head says size %d ETag %q",
				e.Key, e.Size, e.ETag, e.LastModified, sizes[e.Key], a.ETag)
		}
		if e.Attrs != nil {
			t.Errorf("listed %q carries attributes though none were asked for", e.Key)
		}
	}
	for _, e := range list(t, st, "", store.ListOptions{}) {
		if e.IsPrefix && (e.Size != 0 || e.ETag != "" || e.Attrs != nil) {
			t.Errorf("common prefix %q carries object fields: %+v", e.Key, e)
		}
	}
}

// inOrder reports whether a listing's objects, and its common prefixes,
// each come in strictly increasing key order.
func inOrder(es []store.Entry) bool {
	var lastObj, lastPrefix string
	for _, e := range es {
		last := &lastObj
		if e.IsPrefix {
			last = &lastPrefix
		}
		if *last != "" && e.Key <= *last {
			return false
		}
		*last = e.Key
	}
	return true
}

func testListMetadata(t *testing.T, fx Fixture) {
	st := fx.Store
	m := meta("1700000001")
	put(t, st, "m/ours", data(20, 700), m)
	put(t, st, "m/sub/", nil, nil)
	fx.PutOtherKey(t, "m/other", data(21, 800))
	fx.PutPlain(t, "m/plain", data(22, 900))
	es := list(t, st, "m/", store.ListOptions{Recursive: true, Metadata: true})
	if got := names(es); !slices.Equal(got, []string{"m/other", "m/ours", "m/plain", "m/sub/"}) {
		t.Fatalf("list with metadata: %q", got)
	}
	// Asked after the listing: the S3 store learns from the first listing
	// whether the server lists metadata (MinIO does, RGW ignores it).
	lists := st.ListsMetadata()
	t.Logf("ListsMetadata: %v", lists)
	for _, e := range es {
		if e.Attrs != nil && !lists {
			t.Errorf("%q: the listing carried attributes, but ListsMetadata is false", e.Key)
		}
		if !lists {
			continue // no attributes promised
		}
		if strings.HasSuffix(e.Key, "/") {
			if e.Attrs != nil {
				t.Errorf("folder marker %q listed with attributes", e.Key)
			}
			continue
		}
		a := e.Attrs
		if a == nil {
			t.Errorf("%q: listed without attributes though ListsMetadata is true", e.Key)
			continue
		}
		// A listing cannot tell whose key: "SSE-C" is all it says.
		want := store.EncOurs
		if e.Key == "m/plain" {
			want = store.EncPlain
		}
		if !a.Listed || a.Size != e.Size || a.ETag != e.ETag || a.Encryption != want || a.LastModified.IsZero() {
			t.Errorf("%q: listed attrs %+v, entry size %d ETag %q, want encryption %v", e.Key, *a, e.Size, e.ETag, want)
		}
		if e.Key == "m/ours" {
			h := head(t, st, e.Key)
			if !maps.Equal(a.Meta, m) || !a.LastModified.Equal(h.LastModified) {
				t.Errorf("listed metadata %v time %v; head says %v %v", a.Meta, a.LastModified, h.Meta, h.LastModified)
			}
		}
	}
}

func testDelete(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	put(t, st, "k", data(30, 10), nil)
	if err := st.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Head(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("head after delete: %v", err)
	}
	if es := list(t, st, "", store.ListOptions{Recursive: true}); len(es) != 0 {
		t.Fatalf("listed after delete: %q", names(es))
	}
	// S3 answers 204 to a DELETE of a missing key; rm relies on a retried
	// DELETE not failing.
	if err := st.Delete(ctx, "k"); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	if err := st.Delete(ctx, "never"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
}
