package stage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// The indexes (index.go, heap.go) must answer as a scan of every entry
// would. Random creates, renames (onto waiting files too), drops, uploads
// of files kept open (so that renames leave old names to delete) and
// uploads of files under other files' old names (claims), each followed by
// every question asked both ways.
func TestTheIndexesAnswerAsAScanWould(t *testing.T) {
	names := []string{"a/b/c", "a/b/d", "a/e", "f", "g", "g/h/i/j", "a/b/", "k//l", "/m", "a/bc"}
	probes := []string{"", "a", "a/", "a/b", "a/b/", "a/b/c", "a/bc/", "g/", "g/h/", "g/h/i/", "k/", "k//", "/", "x/", "f/"}
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			m := memstore.New(ours)
			mgr := open(t, t.TempDir(), m, time.Hour)
			defer mgr.Close()
			var read []*Entry // entries kept open by a reader
			pick := func() *Entry {
				all := mgr.Under("")
				if len(all) == 0 {
					return nil
				}
				sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
				return all[rng.IntN(len(all))]
			}
			for step := range 300 {
				name := names[rng.IntN(len(names))]
				var did string
				switch op := rng.IntN(10); {
				case op < 3:
					did = "create " + name
					if e := mgr.Lookup(name); e == nil {
						writeFile(t, mgr, name, []byte(name))
					}
				case op < 5:
					if e := pick(); e != nil {
						did = "rename " + e.Info().Key + " to " + name
						mgr.Rename(e, name)
					}
				case op < 6:
					if e := pick(); e != nil {
						did = "drop " + e.Info().Key
						mgr.Drop(e)
					}
				case op < 8:
					// Uploaded and kept open: a rename then leaves its old
					// name to delete, and the upload may claim another
					// entry's old name.
					if e := pick(); e != nil {
						did = "upload " + e.Info().Key
						if h := mgr.Hold(e.Info().Key, false); h != nil {
							read = append(read, h)
						}
						if err := e.Sync(ctx); err != nil {
							t.Fatal(err)
						}
					}
				default:
					if len(read) > 0 {
						i := rng.IntN(len(read))
						did = "release " + read[i].Info().Key
						read[i].Release(false)
						read = slices.Delete(read, i, i+1)
					}
				}
				checkIndexes(t, mgr, names, probes, fmt.Sprintf("step %d (%s)", step, did))
			}
			for _, e := range read {
				e.Release(false)
			}
			if err := mgr.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			checkIndexes(t, mgr, names, probes, "after the drain")
			mgr.mu.Lock()
			defer mgr.mu.Unlock()
			if len(mgr.byKey) != 0 || len(mgr.ix.dirs) != 0 || len(mgr.ix.leaving) != 0 || len(mgr.ix.streams) != 0 {
				t.Fatalf("left after the drain: %d entries, %d folders, %d old names, %d streams",
					len(mgr.byKey), len(mgr.ix.dirs), len(mgr.ix.leaving), len(mgr.ix.streams))
			}
		})
	}
}

// checkIndexes compares every answer of the indexes with a scan of all
// entries, and checks that every entry the queue should take has an item
// that stands for it.
func checkIndexes(t *testing.T, mgr *Manager, names, probes []string, when string) {
	t.Helper()
	keys := map[string]*Entry{}
	leaving := map[string]bool{}
	for _, e := range mgr.Under("") {
		e.mu.Lock()
		keys[e.key] = e
		for _, k := range e.deleteAfter {
			if k != e.key {
				leaving[k] = true
			}
		}
		e.mu.Unlock()
	}
	for _, p := range probes {
		var under, files []string
		folders := map[string]bool{}
		for k := range keys {
			rest, ok := strings.CutPrefix(k, p)
			if !ok {
				continue
			}
			under = append(under, k)
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				folders[rest[:i]] = true
			} else if rest != "" {
				files = append(files, k)
			}
		}
		if got := entryKeys(mgr.Under(p)); !slices.Equal(got, sorted(under)) {
			t.Fatalf("%s: Under(%q) = %q, want %q", when, p, got, sorted(under))
		}
		if got := mgr.HasUnder(p); got != (len(under) > 0) {
			t.Fatalf("%s: HasUnder(%q) = %v", when, p, got)
		}
		gotFiles, gotFolders := mgr.Children(p)
		if got := entryKeys(gotFiles); !slices.Equal(got, sorted(files)) {
			t.Fatalf("%s: Children(%q) files %q, want %q", when, p, got, sorted(files))
		}
		var wantFolders []string
		for f := range folders {
			wantFolders = append(wantFolders, f)
		}
		if got := sorted(gotFolders); !slices.Equal(got, sorted(wantFolders)) {
			t.Fatalf("%s: Children(%q) folders %q, want %q", when, p, got, sorted(wantFolders))
		}
		want := map[string]bool{}
		for k := range leaving {
			if strings.HasPrefix(k, p) {
				want[k] = true
			}
		}
		if got := mgr.Leaving(p); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: Leaving(%q) = %v, want %v", when, p, got, want)
		}
	}
	for _, k := range names {
		if got := mgr.IsLeaving(k); got != leaving[k] {
			t.Fatalf("%s: IsLeaving(%q) = %v", when, k, got)
		}
	}
	mgr.mu.Lock()
	for dir, d := range mgr.ix.dirs {
		if len(d.files) == 0 && len(d.sub) == 0 {
			t.Errorf("%s: empty folder %q kept in the index", when, dir)
		}
	}
	items := map[queueItem]bool{}
	for _, it := range mgr.queue.first {
		items[it] = false
	}
	for _, it := range mgr.queue.retry {
		items[it] = true
	}
	mgr.mu.Unlock()
	for _, e := range keys {
		e.mu.Lock()
		if e.state() == stateQueued && e.writers == 0 {
			it := queueItem{e, e.due}
			if retry, ok := items[it]; !ok || !it.current(retry) {
				t.Errorf("%s: %q is queued with no item in the queue", when, e.key)
			}
		}
		e.mu.Unlock()
	}
	if t.Failed() {
		t.FailNow()
	}
}

func entryKeys(es []*Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Info().Key)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
