package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/store/memstore"
)

// onPurpose is the id of the entries that make illegal transitions on
// purpose (TestIllegalTransitionsAreLoggedAndReported).
const onPurpose = "illegal-on-purpose"

// illegal holds the illegal transitions reported: those made on purpose,
// and the others, which are bugs.
var illegal struct {
	sync.Mutex
	onPurpose []state // from, to, from, to...
	bugs      []string
}

// TestMain fails the run if any test made an illegal state transition:
// every test of the package checks the transition table.
func TestMain(m *testing.M) {
	onIllegalStep = func(e *Entry, from, to state) {
		illegal.Lock()
		defer illegal.Unlock()
		if e.id == onPurpose {
			illegal.onPurpose = append(illegal.onPurpose, from, to)
			return
		}
		illegal.bugs = append(illegal.bugs, fmt.Sprintf("%v→%v", from, to))
	}
	code := m.Run()
	illegal.Lock()
	if len(illegal.bugs) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: illegal state transitions: %s\n", strings.Join(illegal.bugs, ", "))
		code = 1
	}
	illegal.Unlock()
	os.Exit(code)
}

// wantSteps is the transition table, spelled out once more.
var wantSteps = map[[2]state]bool{
	{stateOpen, stateQueued}:   true,
	{stateOpen, stateUploaded}: true,
	{stateOpen, stateDropped}:  true,

	{stateQueued, stateQueued}:    true,
	{stateQueued, stateUploading}: true,
	{stateQueued, stateOpen}:      true,
	{stateQueued, stateUploaded}:  true,
	{stateQueued, stateDropped}:   true,

	{stateUploading, stateQueued}:   true,
	{stateUploading, stateOpen}:     true,
	{stateUploading, stateFailed}:   true,
	{stateUploading, stateUploaded}: true,
	{stateUploading, stateDropped}:  true,

	{stateFailed, stateQueued}:   true,
	{stateFailed, stateOpen}:     true,
	{stateFailed, stateUploaded}: true,
	{stateFailed, stateDropped}:  true,
}

func TestStateTransitionTable(t *testing.T) {
	for from := range nStates {
		for to := range nStates {
			if got, want := legal(from, to), wantSteps[[2]state{from, to}]; got != want {
				t.Errorf("legal(%v, %v) = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range []state{stateUploaded, stateDropped} {
		if !s.gone() {
			t.Errorf("%v is not an end", s)
		}
	}
	for _, s := range []state{stateOpen, stateQueued, stateUploading, stateFailed} {
		if s.gone() {
			t.Errorf("%v is an end", s)
		}
	}
	if legal(nStates, stateOpen) || legal(stateOpen, nStates) {
		t.Error("a state out of range is legal")
	}
	names := map[string]bool{}
	for s := range nStates {
		names[s.String()] = true
	}
	if len(names) != int(nStates) || names[""] || nStates.String() != "state(6)" {
		t.Errorf("names %v, %q", names, nStates.String())
	}
}

// logCapture is a slog handler that keeps the messages at Error.
type logCapture struct {
	mu     sync.Mutex
	errors []string
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCapture) WithGroup(string) slog.Handler            { return h }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.errors = append(h.errors, r.Message)
		h.mu.Unlock()
	}
	return nil
}

func (h *logCapture) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.errors
	h.errors = nil
	return out
}

func bareEntry(id string) (*Entry, *logCapture) {
	h := &logCapture{}
	return &Entry{m: &Manager{log: slog.New(h)}, id: id}, h
}

func TestLegalTransitionsMoveAndLogNothing(t *testing.T) {
	e, h := bareEntry("legal")
	if e.state() != stateOpen {
		t.Fatalf("a new entry is %v, want open", e.state())
	}
	// A life with a retry, a failure and a drain.
	for _, s := range []state{stateQueued, stateUploading, stateQueued, stateUploading, stateFailed,
		stateQueued, stateUploading, stateOpen, stateQueued, stateQueued, stateUploaded} {
		from := e.state()
		if !e.to(s) || e.state() != s {
			t.Fatalf("%v→%v: now %v", from, s, e.state())
		}
	}
	if errs := h.take(); len(errs) != 0 {
		t.Fatalf("logged %v", errs)
	}
	// Nothing leaves an end, and trying is no bug (a drop racing with a
	// requeue): nothing logged.
	for _, s := range []state{stateOpen, stateQueued, stateUploading, stateFailed, stateDropped, stateUploaded} {
		if e.to(s) || e.state() != stateUploaded {
			t.Fatalf("left the end uploaded for %v: now %v", s, e.state())
		}
	}
	if e.moveIf(stateUploaded, stateOpen) || e.state() != stateUploaded {
		t.Fatalf("moveIf left an end: now %v", e.state())
	}
	if errs := h.take(); len(errs) != 0 {
		t.Fatalf("logged %v", errs)
	}
	// moveIf moves only from the state named.
	e, _ = bareEntry("legal")
	e.to(stateQueued)
	if e.moveIf(stateUploading, stateFailed) || e.state() != stateQueued {
		t.Fatalf("moveIf from another state moved: now %v", e.state())
	}
	if !e.moveIf(stateQueued, stateUploading) || e.state() != stateUploading {
		t.Fatalf("moveIf did not move: now %v", e.state())
	}
}

func TestIllegalTransitionsAreLoggedAndReported(t *testing.T) {
	for from := range nStates {
		for to := range nStates {
			if from.gone() || legal(from, to) {
				continue
			}
			e, h := bareEntry(onPurpose)
			e.st.Store(uint32(from))
			moved := e.to(to)
			illegal.Lock()
			reported := illegal.onPurpose
			illegal.onPurpose = nil
			illegal.Unlock()
			// It stands, as the flags the state replaced would have.
			if !moved || e.state() != to {
				t.Errorf("%v→%v: moved %v, now %v", from, to, moved, e.state())
			}
			if errs := h.take(); len(errs) != 1 || !strings.Contains(errs[0], "illegal state transition") {
				t.Errorf("%v→%v: logged %v", from, to, errs)
			}
			if len(reported) != 2 || reported[0] != from || reported[1] != to {
				t.Errorf("%v→%v: reported %v", from, to, reported)
			}
		}
	}
}

// TestAnEntrysLifeThroughTheManager follows the state through the public
// calls: a write-back window, a failure, an fsync, a rename and a delete.
func TestAnEntrysLifeThroughTheManager(t *testing.T) {
	m := memstore.New(ours)
	mgr := open(t, t.TempDir(), m, time.Hour)
	defer mgr.Close()
	is := func(e *Entry, want state) {
		t.Helper()
		if got := e.state(); got != want {
			t.Fatalf("%s is %v, want %v", e.id, got, want)
		}
	}

	// In the window (before any drain, which ends it for good): a rename
	// onto a waiting file drops it; a delete drops the other.
	b := writeFile(t, mgr, "b", []byte("b"))
	c := writeFile(t, mgr, "c", []byte("c"))
	mgr.Rename(c, "b")
	is(b, stateDropped)
	is(c, stateQueued)
	mgr.Drop(c)
	is(c, stateDropped)

	e, err := mgr.OpenFile("a", nil, Attrs{Mtime: mtime}, true)
	if err != nil {
		t.Fatal(err)
	}
	is(e, stateOpen)
	e.WriteAt(ctx, []byte("a"), 0)
	e.Flush(ctx)
	is(e, stateOpen) // still held by its writer
	e.Release(true)
	is(e, stateQueued) // in the write-back window
	if mgr.Hold("a", false) != e {
		t.Fatal("not held")
	}
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	is(e, stateQueued) // an fsync leaves the queue alone
	if err := mgr.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	// Nothing left to upload, and its reader keeps it. (The queue may
	// have taken it first, if woken; it finds nothing to do.)
	for deadline := time.Now().Add(5 * time.Second); e.state() == stateUploading && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	is(e, stateOpen)
	e.Release(false)
	is(e, stateUploaded)

	mgr.Drop(e) // forgotten already: it stays as it ended
	is(e, stateUploaded)
}

func TestAFailedEntryIsFailedUntilAnFsyncStoresIt(t *testing.T) {
	m := memstore.New(ours)
	boom := errors.New("server on fire")
	m.Fail = func(op, key string) error {
		if op == "put" {
			return boom
		}
		return nil
	}
	mgr, err := Open(Config{Dir: t.TempDir(), Key: sseKey, Store: m, Window: time.Hour, Parallel: 4, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	e := writeFile(t, mgr, "f", []byte("data"))
	if err := mgr.Drain(ctx); !errors.Is(err, ErrNotDrained) {
		t.Fatalf("drain: %v", err)
	}
	if s := e.state(); s != stateFailed {
		t.Fatalf("after its last attempt failed: %v", s)
	}
	m.Fail = nil
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if s := e.state(); s != stateUploaded {
		t.Fatalf("after an fsync stored it: %v", s)
	}
}
