package stage

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Room in the journal. The journal is bounded (Config.Cap): a copy bigger
// than it must neither fail nor overfill the disk. A writer that needs
// room while uploads can make some waits for them (waitRoom), and the
// write-back window ends early for every waiting file meanwhile, so that
// the uplink never idles while a writer waits. ENOSPC comes only when it
// is true: nothing in the journal can leave it (every byte belongs to
// files still open that cannot stream), the disk itself is full, or no
// upload has freed room for Config.Stall while writers wait.
//
// The cap counts disk use, not bytes: a sealed chunk covers up to
// chunkBlocks blocks of the filesystem, and each record costs recordCost;
// a headroom under the cap takes the journal folder, its lock, notes of
// multipart uploads and records larger than recordCost.

const (
	diskBlock  = 4096
	recordCost = 2 * diskBlock // a record and its new copy while it is rewritten
	// DefaultStall is how long writers wait for room while no upload
	// frees any, before they get ENOSPC.
	DefaultStall = 10 * time.Minute
)

// cost is the disk a chunk of the spool may take: the blocks its slot
// spans at any offset.
func (e *Entry) cost() int64 {
	return ((e.slot()+diskBlock-1)/diskBlock + 1) * diskBlock
}

// spoolCap is what chunks and records may take of the cap.
func (m *Manager) spoolCap() int64 {
	return m.cfg.Cap - max(64<<10, min(m.cfg.Cap/16, 4<<20))
}

// errStalled is the writers' ENOSPC when uploads stopped freeing room.
var errStalled = fmt.Errorf("journal full and no upload has freed room in a while (server unreachable or refusing uploads?): %w", syscall.ENOSPC)

// errNoRoom is the writer's ENOSPC when nothing in the journal can be
// uploaded to make room.
var errNoRoom = fmt.Errorf("journal full of files still open that cannot be uploaded before they are closed; close some or mount with a larger --journal-size: %w", syscall.ENOSPC)

// waitRoom waits, a second at most, for room for a chunk of e, or says
// why there will be none: errNoRoom, errStalled (no room freed since
// start, when the writer began to wait, for Config.Stall), or the
// context's error. The writer then tries again: its own stream's parts,
// once sent, leave the journal only when it writes (dropStreamedLocked).
func (m *Manager) waitRoom(ctx context.Context, e *Entry, start time.Time) error {
	need := e.cost()
	m.mu.Lock()
	room := m.cfg.Cap <= 0 || m.used+need <= m.spoolCap()
	since := start
	if m.freedAt.After(since) {
		since = m.freedAt
	}
	changes := m.changes
	m.mu.Unlock()
	if room {
		return nil
	}
	if !m.canFree(e) {
		m.noteFull(errNoRoom)
		return errNoRoom
	}
	if time.Since(since) >= m.stall() {
		m.noteFull(errStalled)
		return errStalled
	}
	m.mu.Lock()
	m.waiting++ // the window ends early for waiting files (startDue)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.waiting--
		m.mu.Unlock()
	}()
	m.poke()
	return m.waitChangeFor(ctx, changes, time.Second)
}

func (m *Manager) stall() time.Duration {
	if m.cfg.Stall > 0 {
		return m.cfg.Stall
	}
	return DefaultStall
}

// noteFull logs why a writer got ENOSPC, once per episode, and keeps it
// for Full.
func (m *Manager) noteFull(err error) {
	m.mu.Lock()
	first := m.full == nil
	m.full = err
	m.mu.Unlock()
	if first {
		m.log.Error("writer refused: no room in the journal", "err", err)
	}
}

// Full says why writers last got ENOSPC for want of room in the journal,
// or nil once room was made since.
func (m *Manager) Full() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.full
}

// canFree says whether an upload can make room: a file other than e
// waiting for upload (queued, uploading, or failed, which is queued
// again), or a stream whose parts leave the journal once sent.
func (m *Manager) canFree(e *Entry) bool {
	m.mu.Lock()
	all := make([]*Entry, 0, len(m.byKey))
	for _, o := range m.byKey {
		all = append(all, o)
	}
	m.mu.Unlock()
	can := false
	for _, o := range all {
		if o == e {
			o.mu.Lock()
			can = can || o.stream != nil && !o.stream.isBroken()
			o.mu.Unlock()
			continue
		}
		o.mu.Lock()
		switch {
		case o.state().gone() || o.nPresent == 0:
		case o.stream != nil && !o.stream.isBroken():
			can = true
		case o.writers == 0 && o.gen != o.cleanGen:
			// Failed files are tried again while writers wait: the
			// stall rule decides when to give up.
			if o.moveIf(stateFailed, stateQueued) {
				o.attempts, o.due = 0, time.Now()
				m.enqueue(o)
			}
			can = true
		}
		o.mu.Unlock()
	}
	return can
}

// pressureLocked says the write-back window should end now: a writer
// waits for room, or the journal is nearly full. Called with m.mu held.
func (m *Manager) pressureLocked() bool {
	return m.cfg.Cap > 0 && (m.waiting > 0 || m.used > m.spoolCap()-m.spoolCap()/8)
}

// dischargeLocked gives back the record's cost once its files are gone.
// Called with e.mu held.
func (e *Entry) dischargeLocked() {
	if e.recCharged {
		e.recCharged = false
		e.m.release(recordCost)
	}
}
