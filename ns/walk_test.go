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
