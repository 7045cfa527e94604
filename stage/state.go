package stage

import "fmt"

// The life of an entry, as the upload queue sees it. A file is open while
// it is written; its last close queues it (schedule); when it is due, the
// queue uploads it. Stored, it is forgotten (uploaded) if no handle holds
// it, else it is open again, or queued again if it changed meanwhile.
// Failed, it is queued again for a retry until its attempts are spent,
// then it is failed until a change, a drain or an fsync. Deleted or
// replaced, it is dropped. steps lists every transition, and why.
//
// The state is what the queue does with the entry; the rest is data next
// to it: the counts of open handles (writers, readers), the generations
// (gen, cleanGen: changes not yet uploaded), the error of the last upload
// (failed, sticky until one succeeds) and the count of tries (attempts).
//
// An fsync (Entry.Sync) uploads outside the queue and leaves the state as
// it is but for ending a failure: a file it stored is failed no more. The
// queue's later turn for such a file finds nothing to upload.
type state uint8

const (
	// stateOpen: not in the queue. A handle may still write the file (the
	// last close queues it), or it has nothing left to upload and handles
	// keep it. A new entry starts here.
	stateOpen state = iota
	// stateQueued: in the queue, due at Entry.due: after the write-back
	// window, after a retry's backoff, or now.
	stateQueued
	// stateUploading: the queue took it and its upload runs (or waits for
	// an fsync's in flight, upMu). A change meanwhile queues it again.
	stateUploading
	// stateFailed: the queue's attempts are spent (Config.Attempts); the
	// file stays in the journal, its error returned by close and fsync,
	// until a change, an fsync, a drain or the next mount.
	stateFailed
	// stateUploaded: in the bucket with no handle left: forgotten, its
	// journal files removed. An end.
	stateUploaded
	// stateDropped: deleted, or replaced by another file under its name
	// (a rename onto it; at recovery, another record of its name): never
	// uploaded as it is.
	// Handles still open may use it until they close. An end.
	stateDropped

	nStates
)

var stateNames = [nStates]string{
	stateOpen:      "open",
	stateQueued:    "queued",
	stateUploading: "uploading",
	stateFailed:    "failed",
	stateUploaded:  "uploaded",
	stateDropped:   "dropped",
}

func (s state) String() string {
	if s < nStates {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// gone says the entry is out of the Manager: no upload, no new handle.
func (s state) gone() bool { return s == stateUploaded || s == stateDropped }

// steps is the table of legal transitions: steps[from] has the bit of
// every state the code moves an entry to from there, each for the reasons
// given. Nothing leaves an end (see Entry.to).
var steps = [nStates]uint8{
	stateOpen: 1<<stateQueued | // the last writer closed (schedule), a drain, a change during an fsync's upload
		1<<stateUploaded | // clean and the last handle closed, or an fsync stored it with none
		1<<stateDropped,
	stateQueued: 1<<stateQueued | // queued again: a new due (a close, a drain, a retry of an earlier try)
		1<<stateUploading | // due: the queue took it (startDue)
		1<<stateOpen | // a drain found nothing left to upload (an fsync stored it)
		1<<stateUploaded | // stored (by an fsync, or an upload it was queued again during) and no handle left
		1<<stateDropped,
	stateUploading: 1<<stateQueued | // a retry, or a change, a close or a drain during the upload
		1<<stateOpen | // stored (or found nothing to store) and handles keep it
		1<<stateFailed | // the last attempt failed
		1<<stateUploaded | // stored with no handle left
		1<<stateDropped,
	stateFailed: 1<<stateQueued | // a change (its close, a rename, a chmod), a drain
		1<<stateOpen | // an fsync stored it and handles keep it
		1<<stateUploaded | // an fsync stored it with no handle left
		1<<stateDropped,
}

// legal says whether the code may move an entry from one state to another.
func legal(from, to state) bool {
	return from < nStates && to < nStates && steps[from]&(1<<to) != 0
}

// onIllegalStep, if set, is told of every illegal transition (the tests
// set it: an illegal transition fails them).
var onIllegalStep func(e *Entry, from, to state)

// state returns e's state. It is one word, read and written atomically,
// so that an entry can be dropped without its lock where lock order
// forbids taking it (Manager.Rename onto its name; recovery, before anyone
// else has the entry); every other transition is made with e.mu held.
func (e *Entry) state() state { return state(e.st.Load()) }

// to moves e to next and reports whether it moved. Nothing leaves an end:
// an upload, a retry or a drain that raced with a drop would queue a file
// no longer in the Manager, which the queue never sees; a second drop of
// a forgotten file changes nothing either. The entry stays as it ended.
func (e *Entry) to(next state) bool {
	for {
		from := e.state()
		if from.gone() {
			return false
		}
		if e.st.CompareAndSwap(uint32(from), uint32(next)) {
			e.stepped(from, next)
			return true
		}
		// Dropped meanwhile without e.mu: look again.
	}
}

// moveIf moves e from one state to next only if it is in that state (not
// an end: nothing leaves one).
func (e *Entry) moveIf(from, next state) bool {
	if from.gone() || !e.st.CompareAndSwap(uint32(from), uint32(next)) {
		return false
	}
	e.stepped(from, next)
	return true
}

// stepped checks a transition made. An illegal one is a bug: it is
// logged (and fails the tests), and stands, as the flags that the state
// replaced would have let it.
func (e *Entry) stepped(from, next state) {
	// The key is not read: a drop without e.mu may race with a rename.
	if !legal(from, next) {
		e.m.log.Error("stage: illegal state transition (a bug)", "id", e.id, "from", from, "to", next)
		if onIllegalStep != nil {
			onIllegalStep(e, from, next)
		}
		return
	}
	e.m.log.Debug("entry state", "id", e.id, "from", from, "to", next)
}
