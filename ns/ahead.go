package ns

import (
	"context"
	"sort"
)

// Work ahead of programs that walk a folder in name order: the HEADs of
// the next files (ls -l, rsync), of the next folders' markers (find, du),
// and the data of the next small files (cp -r, backup tools; the front
// end fetches it into its block cache).

// SmallFile is the size up to which a file's data is fetched ahead when an
// earlier file of its folder is opened.
const SmallFile = 1 << 20

// SmallFilesAfter returns the keys of the small files among the count
// names listed after name that were not returned before.
func (d *Folder) SmallFilesAfter(name string, count int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.freshListingLocked()
	if l == nil {
		return nil
	}
	l.sortNames()
	i := sort.SearchStrings(l.names, name) + 1
	if i < l.filesAhead-count/2 {
		return nil
	}
	end := min(i+count, len(l.names))
	var keys []string
	for _, n := range l.names[min(max(i, l.filesAhead), end):end] {
		if c, ok := l.entries[n]; ok && !c.Dir && c.Object.Size > 0 && c.Object.Size <= SmallFile {
			keys = append(keys, d.prefix+n)
		}
	}
	l.filesAhead = max(end, l.filesAhead)
	return keys
}

// HeadsAhead starts the HEADs of the files (or, with dirs, of the folder
// markers) listed after name, so that a program stat'ing every one of a
// folder in order finds them answered. Folders listed ahead are left to
// their listings (markerAhead): call ListsAhead first.
func (d *Folder) HeadsAhead(ctx context.Context, name string, dirs bool) {
	d.ns.meta.prefetch(ctx, d.metaKeysAfter(name, dirs))
}

// metaKeysAfter returns the keys (files, or folder markers) among the
// names listed from name on whose HEADs were not started yet.
func (d *Folder) metaKeysAfter(name string, dirs bool) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.freshListingLocked()
	if l == nil {
		return nil
	}
	l.sortNames()
	i := sort.SearchStrings(l.names, name)
	ahead := d.ns.opts.MetaAhead
	if dirs && d.ns.lists != nil {
		// Folders are listed ahead in a window of their own, and a listing
		// starts its folder's marker HEAD (markerAhead), tied to the
		// version it shows so that it can be kept: a HEAD sent before
		// could not be. HEADs here only for the folders it skipped.
		ahead = listAheadCount
	}
	// Top up only when the reader has used half of the window, so a stat
	// costs no work in the common case. Files and folders have windows of
	// their own: `find` stats folders only, and should not HEAD files.
	done := &l.metaAhead
	if dirs {
		done = &l.dirsAhead
	}
	if i < *done-ahead/2 {
		return nil
	}
	end := min(i+ahead, len(l.names))
	var keys []string
	for _, n := range l.names[min(max(i, *done), end):end] {
		if c, ok := l.entries[n]; ok && c.Dir == dirs {
			if dirs {
				// Its marker, unless its listing made ahead answers
				// for it (markerAhead).
				if p := d.prefix + n + "/"; !d.ns.aheadHeld(p) {
					keys = append(keys, p)
				}
			} else {
				keys = append(keys, d.prefix+n)
			}
		}
	}
	*done = end
	return keys
}
