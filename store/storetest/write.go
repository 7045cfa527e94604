package storetest

// The write side: server-side copies, multipart uploads, store.Upload.

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/ssecfs/ssecfs/store"
)

// minPart is the smallest non-last part the real servers accept (S3's
// rule; RGW's rgw_multipart_min_part_size and MinIO's default).
const minPart = 5 << 20

// refused reports whether err is the documented refusal of a server-side
// copy of an SSE-C object (Ceph RGW before v20: 501), failing on any other.
func refused(t *testing.T, err error, what string) bool {
	t.Helper()
	if errors.Is(err, store.ErrNotImplemented) {
		t.Logf("%s: refused as by Ceph RGW before v20: %v", what, err)
		return true
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return false
}

func testCopy(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	b, m1, m2 := data(40, 2500), meta("1"), meta("2")
	put(t, st, "src", b, m1)
	refusing := refused(t, st.Copy(ctx, "src", "dst", false, m2), "copy with new metadata")
	if !refusing {
		checkObject(t, st, "dst", b, m2)
	}
	if !refused(t, st.Copy(ctx, "src", "kept", false, nil), "copy keeping the metadata") {
		checkObject(t, st, "kept", b, m1)
	}
	// Onto itself: how a chmod or utime changes an uploaded file.
	if !refused(t, st.Copy(ctx, "src", "src", false, m2), "copy onto itself") {
		checkObject(t, st, "src", b, m2)
	}
	// A plaintext source: MinIO encrypts the copy; Ceph RGW 16 answers
	// 200 but stores it in plaintext, ignoring our key (the answer has no
	// echo, as MinIO's to copies has none either). Copier copes (below).
	fx.PutPlain(t, "plain", b)
	if !refused(t, st.Copy(ctx, "plain", "sealed", true, m1), "copy of a plaintext source") {
		if a := head(t, st, "sealed"); a.Encryption == store.EncPlain {
			if !refusing {
				t.Fatal("the copy of a plaintext source is stored in plaintext by a server that copies SSE-C objects")
			}
			t.Logf("the copy of a plaintext source is stored in plaintext, as by Ceph RGW 16")
			if got := read(t, st, "sealed", a.Size, true); !bytes.Equal(got, b) || !maps.Equal(a.Meta, m1) {
				t.Fatalf("the plaintext copy differs: metadata %v", a.Meta)
			}
		} else {
			checkObject(t, st, "sealed", b, m1)
		}
	}
	err := st.Copy(ctx, "missing", "x", false, nil)
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrNotImplemented) {
		t.Fatalf("copy of a missing source: %v, want ErrNotFound (or the refusal)", err)
	}
	if a := head(t, st, "plain"); a.Encryption != store.EncPlain || a.Size != int64(len(b)) {
		t.Fatalf("the plaintext source after copies: %v, %d bytes", a.Encryption, a.Size)
	}
}

// testCopier checks what renames and metadata changes rely on: whatever
// the server refuses, Copier's fallbacks end with the copy in place.
func testCopier(t *testing.T, fx Fixture) {
	st := fx.Store
	c := store.NewCopier(st, nil)
	b, m1, m2, m3 := data(50, 3000), meta("1"), meta("2"), meta("3")
	put(t, st, "src", b, m1)
	copyTo := func(src, dst string, plain bool, m, want map[string]string) {
		t.Helper()
		a, err := c.Copy(t.Context(), src, dst, int64(len(b)), plain, m)
		if err != nil {
			t.Fatalf("copier %s to %s: %v", src, dst, err)
		}
		h := checkObject(t, st, dst, b, want)
		if a.ETag != h.ETag || a.Encryption != store.EncOurs {
			t.Fatalf("copier returned ETag %q %v, head says %q", a.ETag, a.Encryption, h.ETag)
		}
	}
	// A plaintext source first, while the Copier has not yet met a
	// refusal: on RGW 16 it is the copy stored in plaintext that sends it
	// to the fallback.
	fx.PutPlain(t, "plain", b)
	copyTo("plain", "sealed", true, m1, m1)
	copyTo("src", "dst", false, m2, m2)
	copyTo("src", "kept", false, nil, m1)
	copyTo("src", "src", false, m3, m3)
	// A chmod of a plaintext file: it becomes ours.
	copyTo("plain", "plain", true, m2, m2)
}

func testCopyPart(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	b, m := data(60, 5000), meta("4")
	put(t, st, "src", b, m)
	id, err := st.CreateMultipart(ctx, "dst", m)
	if err != nil {
		t.Fatal(err)
	}
	defer st.AbortMultipart(context.WithoutCancel(ctx), "dst", id)
	// One part, which may be small since it is the last: a range of src.
	p, err := st.CopyPart(ctx, "src", "dst", id, 1, 100, 4000, false)
	if refused(t, err, "copy part") {
		return
	}
	if p.Number != 1 || p.ETag == "" {
		t.Fatalf("copied part %+v", p)
	}
	parts := []store.Part{p}
	if err := st.CompleteMultipart(ctx, "dst", id, parts); err != nil {
		t.Fatal(err)
	}
	a := checkObject(t, st, "dst", b[100:4100], m)
	// store.Complete recognises a completed upload by this ETag.
	if want := store.MultipartETag(parts); a.ETag != want {
		t.Fatalf("ETag %q after a part copy, want %q (MD5 of the parts' ETags)", a.ETag, want)
	}
}

// pending reports whether ListUploads shows upload id of key, failing on
// an upload listed without its start time.
func pending(t *testing.T, st store.Store, key, id string) bool {
	t.Helper()
	ups, err := st.ListUploads(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		if u.Key == key && u.ID == id {
			if u.Initiated.IsZero() {
				t.Fatalf("upload %s listed without its start time", id)
			}
			return true
		}
	}
	return false
}

func testMultipart(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	b, m := data(70, minPart+3000), meta("5")
	id, err := st.CreateMultipart(ctx, "mp", m)
	if err != nil {
		t.Fatal(err)
	}
	defer st.AbortMultipart(context.WithoutCancel(ctx), "mp", id)
	var parts []store.Part
	for i, chunk := range [][]byte{b[:minPart], b[minPart:]} {
		p, err := st.UploadPart(ctx, "mp", id, i+1, bytes.NewReader(chunk), int64(len(chunk)))
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		if p.Number != i+1 || p.ETag == "" {
			t.Fatalf("part %d answered %+v", i+1, p)
		}
		parts = append(parts, p)
	}
	if !pending(t, st, "mp", id) {
		t.Fatal("the upload in progress is not listed")
	}
	// Not listed as an object before it completes.
	if es := list(t, st, "", store.ListOptions{Recursive: true}); len(es) != 0 {
		t.Fatalf("an incomplete upload is listed: %q", names(es))
	}
	if err := st.CompleteMultipart(ctx, "mp", id, parts); err != nil {
		t.Fatal(err)
	}
	a := checkObject(t, st, "mp", b, m)
	if want := store.MultipartETag(parts); a.ETag != want {
		t.Fatalf("ETag %q, want %q: store.Complete could not tell a lost answer from a failure", a.ETag, want)
	}
	if pending(t, st, "mp", id) {
		t.Fatal("a completed upload is still listed")
	}
	// A retried completion (its answer lost) hears 404 NoSuchUpload from
	// MinIO (and AWS), and 200 again from RGW 16: store.Complete takes
	// either as the success it was.
	err = st.CompleteMultipart(ctx, "mp", id, parts)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("completing a completed upload: %v, want ErrNotFound or success", err)
	}
	if err := store.Complete(ctx, st, "mp", id, parts); err != nil {
		t.Fatalf("store.Complete of a completed upload: %v", err)
	}
	if h := checkObject(t, st, "mp", b, m); h.ETag != a.ETag {
		t.Fatalf("a repeated completion changed the object: ETag %q, was %q", h.ETag, a.ETag)
	}
}

func testMultipartAbort(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	id, err := st.CreateMultipart(ctx, "ab", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := data(80, 1000)
	p, err := st.UploadPart(ctx, "ab", id, 1, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AbortMultipart(ctx, "ab", id); err != nil {
		t.Fatal(err)
	}
	if pending(t, st, "ab", id) {
		t.Fatal("an aborted upload is still listed")
	}
	if es := list(t, st, "", store.ListOptions{Recursive: true}); len(es) != 0 {
		t.Fatalf("an aborted upload left %q", names(es))
	}
	// MinIO (and AWS) answer 404 NoSuchUpload; Ceph RGW 16 answers 500
	// InternalError "This multipart completion is already in progress",
	// to an unknown upload ID too: an error either way, and nothing stored.
	err = st.CompleteMultipart(ctx, "ab", id, []store.Part{p})
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("completing an aborted upload: %v, want ErrNotFound (or RGW's 500)", err)
	}
	if _, err := st.Head(ctx, "ab"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("head after completing an aborted upload: %v, want ErrNotFound", err)
	}
	// Aborting again (a crash cleanup after an abort) is not an error.
	if err := st.AbortMultipart(ctx, "ab", id); err != nil {
		t.Fatalf("second abort: %v", err)
	}
}

// A part smaller than 5 MiB that is not the last one: the real servers
// refuse the completion (EntityTooSmall), and leave no object.
func testMultipartTooSmall(t *testing.T, fx Fixture) {
	st, ctx := fx.Store, t.Context()
	id, err := st.CreateMultipart(ctx, "small", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.AbortMultipart(context.WithoutCancel(ctx), "small", id)
	var parts []store.Part
	for i := 1; i <= 2; i++ {
		b := data(uint64(90+i), 1000)
		p, err := st.UploadPart(ctx, "small", id, i, bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if err := st.CompleteMultipart(ctx, "small", id, parts); err == nil {
		t.Fatal("a completion with a 1,000-byte first part succeeded")
	} else {
		t.Logf("refused: %v", err)
	}
	if _, err := st.Head(ctx, "small"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("head after a refused completion: %v, want ErrNotFound", err)
	}
}

// testUpload checks store.Upload on both sides of its size rule: up to
// MinPartSize one PUT (which carries its ID in the metadata), past it a
// multipart upload (whose ETag ends in the part count).
func testUpload(t *testing.T, fx Fixture) {
	st := fx.Store
	for _, size := range []int{store.MinPartSize, store.MinPartSize + 1} {
		b, m := data(uint64(size), size), meta("6")
		src := func(ctx context.Context, off int64, buf []byte) error {
			copy(buf, b[off:])
			return nil
		}
		a, err := store.Upload(t.Context(), st, "up", src, int64(size), m, nil)
		if err != nil {
			t.Fatalf("upload of %d bytes: %v", size, err)
		}
		h := checkObject(t, st, "up", b, nil)
		if a.ETag != h.ETag || a.Size != h.Size || a.Encryption != store.EncOurs {
			t.Fatalf("upload of %d bytes returned %+v, head says %+v", size, a, h)
		}
		_, onePut := h.Meta[store.PutIDMeta]
		multipart := size > store.MinPartSize
		if onePut == multipart || (multipart && !strings.HasSuffix(h.ETag, "-2")) {
			t.Fatalf("upload of %d bytes: put ID %v, ETag %q: wrong side of the size rule", size, onePut, h.ETag)
		}
		if h.Meta["mtime"] != "6" {
			t.Fatalf("upload of %d bytes lost its metadata: %v", size, h.Meta)
		}
	}
}
