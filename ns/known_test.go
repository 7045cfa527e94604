package ns

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// sameETags gives every object one ETag, as RGW's MD5 ETags stay for a
// copy onto itself with new metadata: only LastModified tells the versions
// apart.
type sameETags struct{ *memstore.Store }

func (s sameETags) List(ctx context.Context, prefix string, opts store.ListOptions, fn func(store.Entry) error) error {
	return s.Store.List(ctx, prefix, opts, func(e store.Entry) error {
		if !e.IsPrefix {
			e.ETag = `"same"`
		}
		return fn(e)
	})
}

func (s sameETags) Head(ctx context.Context, key string) (store.Attrs, error) {
	a, err := s.Store.Head(ctx, key)
	a.ETag = `"same"`
	return a, err
}

func knownDisk(t *testing.T, dir string) *metadisk.Disk {
	t.Helper()
	d, err := metadisk.Open(metadisk.Options{Dir: dir, Key: bytes.Repeat([]byte{7}, 32), Scope: "test\nbucket\n"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// statAll stats every file of the root as a program walking it would.
func statAll(t *testing.T, n *Namespace) map[string]Attrs {
	t.Helper()
	ctx := context.Background()
	out := map[string]Attrs{}
	for _, name := range listNames(t, n.Root()) {
		e, err := n.Root().Find(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		h, err := n.Root().ObjectAttrs(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = n.Object(name, h, Listed(e.Object))
	}
	return out
}

func seedFiles(m *memstore.Store, count int) {
	for i := range count {
		m.Seed(fmt.Sprintf("f%d", i), []byte("data"), map[string]string{"mode": "33152", "mtime": fmt.Sprint(1600000000 + i)}, ourMD5)
	}
}

// A fresh mount stats an unchanged object from what an earlier mount
// learnt, without a HEAD; an object changed since (here only its mode: the
// same size and ETag, a new LastModified) is asked again and shows the
// change; a deleted one loses its record.
func TestAFreshMountStatsFromWhatTheLastOneLearnt(t *testing.T) {
	m := memstore.New(ourMD5)
	seedFiles(m, 10)
	st, dir := sameETags{m}, t.TempDir()
	n1, err := New(Options{Store: st, MetaTTL: time.Minute, Known: knownDisk(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	first := statAll(t, n1)
	if ops(m, "head") != 10 {
		t.Fatalf("first mount: %d HEADs, want 10", ops(m, "head"))
	}
	n1.Close()

	m.Seed("f3", []byte("data"), map[string]string{"mode": "33188", "mtime": "1600000003"}, ourMD5) // chmod 644
	m.Delete(context.Background(), "f5")
	m.ResetCalls()
	disk := knownDisk(t, dir)
	n2, err := New(Options{Store: st, MetaTTL: time.Minute, Known: disk})
	if err != nil {
		t.Fatal(err)
	}
	second := statAll(t, n2)
	if heads := m.Calls(); ops(m, "head") != 1 || !slices.ContainsFunc(heads, func(c memstore.Call) bool { return c.Op == "head" && c.Key == "f3" }) {
		t.Fatalf("second mount: %v, want one HEAD, of f3", heads)
	}
	for name, a := range first {
		b, ok := second[name]
		switch {
		case name == "f5":
			if ok {
				t.Error("deleted f5 shows")
			}
		case name == "f3":
			if b.Mode != 0o644 {
				t.Errorf("f3 changed by another client shows mode %o", b.Mode)
			}
		case a != b:
			t.Errorf("%s: %+v, first mount %+v", name, b, a)
		}
	}
	n2.Close()
	recs := disk.Load("")
	if _, ok := recs["f5"]; ok || len(recs) != 9 || recs["f3"].Attrs.Meta["mode"] != "33188" {
		t.Fatalf("kept after the second mount: %d records, f5 %v, f3 %v", len(recs), ok, recs["f3"].Attrs.Meta)
	}
}

// Past the TTL, a listing that shows an object's version unchanged makes
// what this mount knows of it fresh again: no HEAD. Another version is
// asked again.
func TestAListingPastTheTTLRenewsWhatItShowsUnchanged(t *testing.T) {
	m := memstore.New(ourMD5)
	seedFiles(m, 5)
	n := newNS(t, sameETags{m}, nil)
	statAll(t, n)
	n.meta.prefetching.Wait() // HEADs ahead sent after the ageing would count
	// The TTL passes: the listing and every answer are an hour old.
	n.Root().mu.Lock()
	n.Root().list.at = n.Root().list.at.Add(-time.Hour)
	n.Root().mu.Unlock()
	n.meta.mu.Lock()
	for _, k := range n.meta.entries.Keys() {
		e, _ := n.meta.entries.Peek(k)
		e.at = e.at.Add(-time.Hour)
	}
	n.meta.mu.Unlock()
	m.Seed("f2", []byte("data"), map[string]string{"mode": "33188"}, ourMD5)
	m.ResetCalls()
	got := statAll(t, n)
	if ops(m, "list") != 1 || ops(m, "head") != 1 || got["f2"].Mode != 0o644 || got["f1"].Mode != 0o600 {
		t.Fatalf("%v %d listings and %d HEADs (want 1, 1 of f2); f2 %o, f1 %o", m.Calls(), ops(m, "list"), ops(m, "head"), got["f2"].Mode, got["f1"].Mode)
	}
}

// A listing with metadata (MinIO) is itself the version's answer: what it
// said is kept, and the next mount's plain listing uses it.
func TestWhatAListingWithMetadataSaidIsKept(t *testing.T) {
	m := memstore.New(ourMD5)
	m.SetListMeta(true)
	seedFiles(m, 3)
	dir := t.TempDir()
	n1, err := New(Options{Store: m, MetaTTL: time.Minute, Known: knownDisk(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	statAll(t, n1)
	n1.Close()
	if recs := knownDisk(t, dir).Load(""); len(recs) != 3 || !recs["f1"].Attrs.Listed || recs["f1"].Attrs.Meta["mode"] != "33152" {
		t.Fatalf("kept: %+v", recs)
	}
}
