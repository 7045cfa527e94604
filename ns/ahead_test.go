package ns

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// A folder that shrank (files deleted, listed again) must not leave the
// read-ahead windows pointing past its end: that once panicked with the
// folder's lock held, and every later lookup in it hung.
func TestReadAheadWindowsSurviveAFolderThatShrank(t *testing.T) {
	d := &Folder{ns: &Namespace{opts: Options{MetaAhead: 32, MetaTTL: time.Minute}}, prefix: "d/"}
	l := newListing(time.Now())
	for i := 0; i < 30; i++ {
		n := fmt.Sprintf("f%02d", i)
		l.entries[n] = Entry{Object: store.Entry{Key: "d/" + n, Size: 10}}
		l.names = append(l.names, n)
	}
	// Windows as a stat of all 40 files of the folder's earlier listing left them.
	l.metaAhead, l.dirsAhead, l.filesAhead = 40, 40, 40
	d.list = l
	if k := d.metaKeysAfter("f25", false); len(k) != 0 {
		t.Errorf("HEADs started again for %v", k)
	}
	if k := d.SmallFilesAfter("f25", 32); len(k) != 0 {
		t.Errorf("fetches started again for %v", k)
	}
	if !d.mu.TryLock() {
		t.Fatal("the folder's lock is still held")
	}
	d.mu.Unlock()
}

// rsync's receiver stats the files of a folder it never lists: the HEADs
// ahead must start all the same, and follow this mount's own changes.
func TestHeadsAheadStartWithoutAReaddir(t *testing.T) {
	d := &Folder{ns: &Namespace{opts: Options{MetaAhead: 8, MetaTTL: time.Minute}}, prefix: "d/"}
	l := newListing(time.Now())
	for i := 0; i < 20; i++ {
		n := fmt.Sprintf("f%02d", i)
		l.entries[n] = Entry{Object: store.Entry{Key: "d/" + n, Size: 10}}
	}
	d.list = l
	got := d.metaKeysAfter("f00", false)
	if len(got) != 8 || got[0] != "d/f00" || got[7] != "d/f07" {
		t.Fatalf("HEADs ahead of f00: %v", got)
	}
	d.patch("f055", &Entry{Object: store.Entry{Key: "d/f055"}})
	d.patch("f03", nil)
	if !slices.IsSorted(l.names) || slices.Contains(l.names, "f03") || !slices.Contains(l.names, "f055") || len(l.names) != 20 {
		t.Fatalf("names after changes: %v", l.names)
	}
}

// A change this mount makes while the folder's listing is on its way (an
// upload that ends) must survive the listing, which the server may have
// answered before the change.
func TestAChangeDuringAListingIsNotLost(t *testing.T) {
	m := memstore.New("ours")
	m.Seed("d/a", []byte("a"), nil, "ours")
	d := newNS(t, m, nil).Folder("d/")
	m.Fail = func(op, key string) error {
		if op == "list" {
			d.patch("new", &Entry{Object: store.Entry{Key: "d/new", Size: 1}})
			d.patch("a", nil)
		}
		return nil
	}
	l, err := d.listing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.entries["new"]; !ok {
		t.Error("a file uploaded during the listing is missing from it")
	}
	if _, ok := l.entries["a"]; ok {
		t.Error("a file deleted during the listing is back")
	}
}

// A folder's listing made ahead is not used once this mount changed the
// bucket after it was sent: it may miss the change (here a file stored in
// that folder while its node was not loaded, as the stage's uploads do).
func TestAListingMadeAheadIsNotUsedAfterAChange(t *testing.T) {
	m := memstore.New("ours")
	m.Seed("t/d2/old", []byte("x"), nil, "ours")
	f := newNS(t, m, nil)
	ctx := context.Background()
	listed := func() (n int) {
		for _, c := range m.Calls() {
			if c.Op == "list" && c.Key == "t/d2/" {
				n++
			}
		}
		return n
	}

	f.listAhead(ctx, []string{"t/d2/"})
	f.lists.mu.Lock()
	a := f.lists.m["t/d2/"]
	f.lists.mu.Unlock()
	<-a.done
	if _, err := f.Store().Put(ctx, "t/d2/new", nil, 0, nil); err != nil {
		t.Fatal(err)
	}
	l, err := f.Folder("t/d2/").listing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.entries["new"]; !ok || listed() != 2 {
		t.Fatalf("entries %v after %d listings: the one made ahead was used", l.entries, listed())
	}

	// Without a change since, the listing made ahead is the folder's.
	f.listAhead(ctx, []string{"t/d3/"})
	if _, err := f.Folder("t/d3/").listing(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(slices.DeleteFunc(m.Calls(), func(c memstore.Call) bool { return c.Op != "list" || c.Key != "t/d3/" })); n != 1 {
		t.Fatalf("t/d3/ listed %d times, want once", n)
	}
}
