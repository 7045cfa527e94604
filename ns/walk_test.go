package ns

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// A walk that looks up every folder of a level before entering the first
// (ls -lR, rsync) starts more listings ahead than are kept unclaimed: the
// folders past those are listed ahead as the walk enters the earlier ones,
// so that it waits for few listings.
func TestAWalkThatLooksUpAWholeLevelFirstFindsItsListingsAhead(t *testing.T) {
	m := memstore.New(ourMD5)
	for d := range 600 {
		m.Seed(fmt.Sprintf("top/d%04d/f", d), []byte("x"), nil, ourMD5)
	}
	n := newNS(t, m, nil)
	ctx := context.Background()
	top := n.Folder("top/")
	names := listNames(t, top)
	for i := range names {
		names[i] = strings.TrimSuffix(names[i], "/")
	}
	var held []*Folder // as the kernel's inodes hold them
	for _, name := range names {
		held = append(held, n.Folder("top/"+name+"/"))
		top.ListsAhead(ctx, name) // the lookup
	}
	ahead := 0
	for _, name := range names {
		d := n.Folder("top/" + name + "/")
		n.lists.mu.Lock()
		_, made := n.lists.m["top/"+name+"/"]
		n.lists.mu.Unlock()
		if made {
			ahead++
		}
		listNames(t, d)
	}
	runtime.KeepAlive(top) // as the kernel's inode holds it: the registry's pointers are weak
	runtime.KeepAlive(held)
	if ahead < len(names)*8/10 {
		t.Fatalf("%d of %d folders found their listing made ahead, want 80%%", ahead, len(names))
	}
}

// The kernel forgets the folders of a walk under memory pressure while
// their parent's listing stays fresh: the next walk, finding the listings
// gone with their folders, must list ahead again rather than one folder at
// a time (a second rsync on the same mount took 65 s rather than 12).
func TestAWalkAfterTheFoldersWereDroppedListsAheadAgain(t *testing.T) {
	m := memstore.New(ourMD5)
	for d := range 100 {
		m.Seed(fmt.Sprintf("top/d%04d/f", d), []byte("x"), nil, ourMD5)
	}
	n := newNS(t, m, nil)
	top := n.Folder("top/")
	names := listNames(t, top)
	walk := func() (ahead int) {
		for _, name := range names {
			p := "top/" + name
			if n.aheadHeld(p) {
				ahead++
			}
			listNames(t, n.Folder(p)) // not held: dropped as the kernel forgets it
		}
		return ahead
	}
	if a := walk(); a < 90 {
		t.Fatalf("first walk: %d of %d folders listed ahead", a, len(names))
	}
	runtime.GC() // the folders go, with their listings
	runtime.GC()
	if a := walk(); a < 90 {
		t.Fatalf("second walk: %d of %d folders listed ahead, want 90", a, len(names))
	}
	runtime.KeepAlive(top)
}
