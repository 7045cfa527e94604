package stage

import (
	"strings"
	"time"
)

// The Manager's indexes of its entries. A copy of 100,000 small files that
// outruns its uploads leaves 100,000 entries waiting, and every lookup,
// listing and upload end of that copy asked about a few of them: a scan of
// all of them each time made the copy quadratic. The indexes answer in
// proportion to the answer (a folder's children, the old names) instead.
//
// They are guarded by Manager.mu and hold only the entries in byKey, under
// the key byKey holds them by: bindLocked and unbindLocked change both
// together, and reindexLocked follows an entry's old names (deleteAfter)
// and stream, which change under Entry.mu (then Manager.mu, in lock order).

type index struct {
	// dirs: per folder prefix ("" or ending in "/") with entries at any
	// depth under it, its files and its subfolders. A folder with none is
	// not there, so that a folder's presence says something waits in it.
	dirs map[string]*dirNode
	// leaving: per old name, the entries whose deleteAfter lists it.
	leaving map[string]map[*Entry]struct{}
	// streams: per key a stream was begun under, the entries holding it.
	streams map[string]map[*Entry]struct{}
}

type dirNode struct {
	files map[string]*Entry // by name in the folder
	sub   map[string]int    // by subfolder name: its entries at any depth
}

// indexed is what the indexes and the queue hold of one entry. Guarded
// by Manager.mu.
type indexed struct {
	in   bool // in byKey, under key
	key  string
	olds []string // its deleteAfter as last indexed, without repeats
	// stream is its stream's key, if hasStream.
	stream    string
	hasStream bool
	// pushed and pushedRetry are the due time and kind of its latest item
	// in the queue (heap.go): an older item popped is dropped.
	pushed      time.Time
	pushedRetry bool
}

func newIndex() index {
	return index{dirs: map[string]*dirNode{}, leaving: map[string]map[*Entry]struct{}{}, streams: map[string]map[*Entry]struct{}{}}
}

// splitKey cuts a key into its folder prefix and its name in it.
func splitKey(key string) (dir, name string) {
	i := strings.LastIndexByte(key, '/')
	return key[:i+1], key[i+1:]
}

// ancestors calls f for each folder on the way to dir, from the top, with
// the folder's prefix and the name of the next one down: "a/b/" gives
// ("", "a") then ("a/", "b").
func ancestors(dir string, f func(parent, child string)) {
	for i := 0; i < len(dir); {
		j := i + strings.IndexByte(dir[i:], '/')
		f(dir[:i], dir[i:j])
		i = j + 1
	}
}

func (ix *index) node(dir string) *dirNode {
	d := ix.dirs[dir]
	if d == nil {
		d = &dirNode{files: map[string]*Entry{}, sub: map[string]int{}}
		ix.dirs[dir] = d
	}
	return d
}

// prune forgets a folder left with nothing under it.
func (ix *index) prune(dir string) {
	if d := ix.dirs[dir]; d != nil && len(d.files) == 0 && len(d.sub) == 0 {
		delete(ix.dirs, dir)
	}
}

func (ix *index) addFile(key string, e *Entry) {
	dir, name := splitKey(key)
	ix.node(dir).files[name] = e
	ancestors(dir, func(parent, child string) { ix.node(parent).sub[child]++ })
}

func (ix *index) removeFile(key string) {
	dir, name := splitKey(key)
	if d := ix.dirs[dir]; d != nil {
		delete(d.files, name)
		ix.prune(dir)
	}
	ancestors(dir, func(parent, child string) {
		if d := ix.dirs[parent]; d != nil {
			if d.sub[child]--; d.sub[child] <= 0 {
				delete(d.sub, child)
			}
		}
	})
	// Bottom up: a folder is pruned once its subfolders are.
	for p := dir; p != ""; {
		p, _ = splitKey(p[:len(p)-1])
		ix.prune(p)
	}
}

// walk calls f for every entry under the folder prefix dir.
func (ix *index) walk(dir string, f func(*Entry)) {
	d := ix.dirs[dir]
	if d == nil {
		return
	}
	for _, e := range d.files {
		f(e)
	}
	for child := range d.sub {
		ix.walk(dir+child+"/", f)
	}
}

func addTo(set map[string]map[*Entry]struct{}, k string, e *Entry) {
	s := set[k]
	if s == nil {
		s = map[*Entry]struct{}{}
		set[k] = s
	}
	s[e] = struct{}{}
}

func removeFrom(set map[string]map[*Entry]struct{}, k string, e *Entry) {
	if s := set[k]; s != nil {
		delete(s, e)
		if len(s) == 0 {
			delete(set, k)
		}
	}
}

// bindLocked puts e in byKey under key, taking it off the key it had and
// taking off any other entry key had (the caller drops that one). Called
// with Manager.mu held, and e.mu held or e not yet shared.
func (m *Manager) bindLocked(key string, e *Entry) {
	if o := m.byKey[key]; o != nil && o != e {
		m.unbindLocked(o)
	}
	if e.ix.in && e.ix.key != key {
		m.unbindLocked(e)
	}
	if !e.ix.in {
		m.byKey[key] = e
		m.ix.addFile(key, e)
		e.ix.in, e.ix.key = true, key
	}
	m.reindexLocked(e)
}

// unbindLocked takes e out of byKey and the indexes, if it is there.
// Called with Manager.mu held; e.mu need not be.
func (m *Manager) unbindLocked(e *Entry) {
	if !e.ix.in {
		return
	}
	delete(m.byKey, e.ix.key)
	m.ix.removeFile(e.ix.key)
	for _, k := range e.ix.olds {
		removeFrom(m.ix.leaving, k, e)
	}
	if e.ix.hasStream {
		removeFrom(m.ix.streams, e.ix.stream, e)
	}
	e.ix.in, e.ix.key, e.ix.olds, e.ix.stream, e.ix.hasStream = false, "", nil, "", false
}

// reindexLocked brings the indexes in step with e's old names and stream.
// Called with e.mu (or e not yet shared) and Manager.mu held, after every
// change of e.deleteAfter or e.stream.
func (m *Manager) reindexLocked(e *Entry) {
	if !e.ix.in {
		return // not in byKey: a scan of all entries would not find it either
	}
	if len(e.ix.olds) > 0 || len(e.deleteAfter) > 0 {
		for _, k := range e.ix.olds {
			removeFrom(m.ix.leaving, k, e)
		}
		e.ix.olds = e.ix.olds[:0]
		for _, k := range e.deleteAfter {
			if _, dup := m.ix.leaving[k][e]; !dup {
				addTo(m.ix.leaving, k, e)
				e.ix.olds = append(e.ix.olds, k)
			}
		}
	}
	if e.ix.hasStream {
		removeFrom(m.ix.streams, e.ix.stream, e)
		e.ix.hasStream = false
	}
	if e.stream != nil {
		addTo(m.ix.streams, e.stream.key, e)
		e.ix.stream, e.ix.hasStream = e.stream.key, true
	}
}

// reindex is reindexLocked for a caller holding e.mu only.
func (m *Manager) reindex(e *Entry) {
	m.mu.Lock()
	m.reindexLocked(e)
	m.mu.Unlock()
}

// folderPrefix says whether prefix names a folder (or the top): the
// indexes answer for those; any other prefix costs a scan.
func folderPrefix(prefix string) bool {
	return prefix == "" || strings.HasSuffix(prefix, "/")
}

// Under lists the entries whose keys start with prefix. For a folder's
// prefix it costs the entries under that folder, not all of them.
func (m *Manager) Under(prefix string) []*Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Entry
	switch {
	case prefix == "":
		out = make([]*Entry, 0, len(m.byKey))
		for _, e := range m.byKey {
			out = append(out, e)
		}
	case folderPrefix(prefix):
		m.ix.walk(prefix, func(e *Entry) { out = append(out, e) })
	default:
		for k, e := range m.byKey {
			if strings.HasPrefix(k, prefix) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Children returns what waits directly in the folder prefix ("" or ending
// in "/"): its files, and the names of its subfolders with files waiting
// at any depth, both in no order. It costs the folder's children only.
// Any other prefix is answered by a scan, as if it were a folder.
func (m *Manager) Children(prefix string) (files []*Entry, folders []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !folderPrefix(prefix) {
		seen := map[string]bool{}
		for k, e := range m.byKey {
			rest, ok := strings.CutPrefix(k, prefix)
			if i := strings.IndexByte(rest, '/'); ok && i >= 0 && !seen[rest[:i]] {
				seen[rest[:i]] = true
				folders = append(folders, rest[:i])
			} else if ok && i < 0 && rest != "" {
				files = append(files, e)
			}
		}
		return files, folders
	}
	d := m.ix.dirs[prefix]
	if d == nil {
		return nil, nil
	}
	for name, e := range d.files {
		if name != "" { // a key ending in "/" is the folder itself, not a child
			files = append(files, e)
		}
	}
	for child := range d.sub {
		folders = append(folders, child)
	}
	return files, folders
}

// HasUnder says whether any entry's key starts with prefix: at once for a
// folder's prefix.
func (m *Manager) HasUnder(prefix string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if folderPrefix(prefix) {
		return m.ix.dirs[prefix] != nil
	}
	for k := range m.byKey {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// Leaving returns the keys under prefix that waiting files were renamed
// from: they stay in the bucket until the file is uploaded under its new
// name, and the mount must not show them meanwhile. It costs the number of
// such names, not of the files waiting.
func (m *Manager) Leaving(prefix string) map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for k := range m.ix.leaving {
		if strings.HasPrefix(k, prefix) && m.leavingLocked(k) {
			out[k] = true
		}
	}
	return out
}

// IsLeaving says whether a waiting file was renamed from key: Leaving for
// one key, at once.
func (m *Manager) IsLeaving(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leavingLocked(key)
}

// leavingLocked says whether an entry lists k as an old name other than
// its own current name (renamed away and back: its upload replaces k, and
// no deletion follows). Called with Manager.mu held.
func (m *Manager) leavingLocked(k string) bool {
	for e := range m.ix.leaving[k] {
		if e.ix.key != k {
			return true
		}
	}
	return false
}
