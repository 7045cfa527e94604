package stage

import (
	"context"
	"fmt"
	"slices"
)

// Old names and new files. A file renamed while waiting deletes its old
// names once it is uploaded under the new one (deleteAfter), and a stream
// renamed after it began deletes the key it was uploaded under. By then a
// new file may have taken that name and been uploaded: an editor's save
// renames X to X~ and writes a new X, and with uploads in parallel the new
// X can land first. Deleting the name then would delete the new file.
//
// So every upload claims its key: under the key's lock it stores the
// object, then takes the key off the other entries' lists of names to
// delete (and their journal records, for a crash), and marks their streams'
// keys as taken. A deletion takes the same lock and deletes only a name its
// entry still lists (or a stream key not taken), so whichever comes first,
// the new file stays.

// keyLock serialises the calls that store or delete one key.
type keyLock struct {
	ch chan struct{} // holds a token while locked
	n  int           // holders and waiters; guarded by Manager.mu
}

// lockKey locks key against the other uploads and deletions of this mount
// and returns the unlock. Never call it with a key lock (but through
// lockKeys), Entry.mu or Manager.mu held.
func (m *Manager) lockKey(key string) func() {
	m.mu.Lock()
	l := m.keyLocks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		m.keyLocks[key] = l
	}
	l.n++
	m.mu.Unlock()
	l.ch <- struct{}{}
	return func() {
		<-l.ch
		m.mu.Lock()
		if l.n--; l.n == 0 {
			delete(m.keyLocks, key)
		}
		m.mu.Unlock()
	}
}

// lockKeys locks several keys, in one order for every caller (two uploads
// each holding one and waiting for the other's would never end), and
// returns the unlock.
func (m *Manager) lockKeys(keys ...string) func() {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	unlocks := make([]func(), len(keys))
	for i, k := range keys {
		unlocks[i] = m.lockKey(k)
	}
	return func() {
		for _, u := range unlocks {
			u()
		}
	}
}

// claim records that e's upload stored key: no other entry may delete it
// as an old name any more. Called with key locked and no Entry.mu held.
//
// The entries that may have key to delete or a stream under it come from
// the indexes (index.go), not from a scan of every entry waiting: this
// runs after every upload. Each is checked again under its lock.
func (m *Manager) claim(e *Entry, key string) {
	m.mu.Lock()
	var others []*Entry
	for o := range m.ix.leaving[key] {
		if o != e {
			others = append(others, o)
		}
	}
	for o := range m.ix.streams[key] {
		if _, listed := m.ix.leaving[key][o]; o != e && !listed {
			others = append(others, o)
		}
	}
	m.mu.Unlock()
	for _, o := range others {
		o.mu.Lock()
		if s := o.stream; s != nil && s.key == key {
			s.mu.Lock()
			s.keyTaken = true
			s.mu.Unlock()
		}
		if slices.Contains(o.deleteAfter, key) {
			o.deleteAfter = slices.DeleteFunc(o.deleteAfter, func(k string) bool { return k == key })
			m.reindex(o)
			if !o.state().gone() {
				if err := m.writeRecordLocked(o, o.writers > 0); err != nil {
					m.log.Error("journal write failed", "key", o.key, "err", err)
				}
			}
		}
		o.mu.Unlock()
	}
}

// deleteOldName deletes k, an old name of an entry, unless taken, asked
// under the key's lock, says that an upload claimed it.
func (m *Manager) deleteOldName(ctx context.Context, k string, taken func() bool) error {
	unlock := m.lockKey(k)
	defer unlock()
	if taken() {
		m.log.Debug("old name kept: a newer file took it", "key", k)
		return nil
	}
	if err := m.st.Delete(ctx, k); err != nil {
		return fmt.Errorf("deleting the old name %q after a rename: %w", k, err)
	}
	m.removed(k)
	return nil
}

func (m *Manager) removed(k string) {
	if m.cfg.Removed != nil {
		m.cfg.Removed(k)
	}
}

// lists reports whether e still has k to delete (a claim takes it off).
func (e *Entry) lists(k string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.deleteAfter, k)
}
