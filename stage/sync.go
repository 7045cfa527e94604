package stage

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Selection picks the waiting files a Sync uploads.
type Selection struct {
	// Name matches a file by its current name (nil: none).
	Name func(key string) bool
	// OldName matches a file by a name it was renamed from: that object
	// stays in the bucket until the file is uploaded under its new name,
	// and is deleted then (nil: none).
	OldName func(key string) bool
	// Open includes files that a program holds open for writing: they are
	// uploaded as written so far, as fsync(2) of each would, and again
	// after their close.
	Open bool
}

// SyncResult is what a Sync did.
type SyncResult struct {
	Synced int      // files now in the bucket
	Bytes  int64    // their size
	Failed []Status // files that could not be uploaded, by key
	Err    error    // the first failure's error, for an errno
}

// KeysUnder matches keys under prefix ("" matches every key).
func KeysUnder(prefix string) func(string) bool {
	return func(k string) bool { return strings.HasPrefix(k, prefix) }
}

// KeysIn matches the keys of the entries of one folder, not deeper.
func KeysIn(prefix string) func(string) bool {
	return func(k string) bool {
		rest, ok := strings.CutPrefix(k, prefix)
		return ok && rest != "" && !strings.Contains(rest, "/")
	}
}

// Sync uploads now the waiting files that sel picks, ignoring their
// write-back window, and returns once each is in the bucket or has failed
// (each failure given the same extra tries as fsync(2)). It is the folder
// fsync and `ssecfs sync`. Files changed after the call are not waited
// for.
func (m *Manager) Sync(ctx context.Context, sel Selection) SyncResult {
	var picked []*Entry
	for _, e := range m.Under("") {
		e.mu.Lock()
		match := sel.Name != nil && sel.Name(e.key)
		for _, k := range e.deleteAfter {
			match = match || k != e.key && sel.OldName != nil && sel.OldName(k)
		}
		if match && e.gen != e.cleanGen && !e.state().gone() && (sel.Open || e.writers == 0) {
			picked = append(picked, e)
		}
		e.mu.Unlock()
	}
	var (
		res  SyncResult
		mu   sync.Mutex
		wg   sync.WaitGroup
		slot = make(chan struct{}, m.cfg.Parallel)
	)
	for _, e := range picked {
		wg.Add(1)
		slot <- struct{}{}
		go func() {
			defer func() { <-slot; wg.Done() }()
			err := e.Sync(ctx)
			info := e.Info()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed = append(res.Failed, Status{Key: info.Key, Size: info.Size, Failed: err.Error()})
				if res.Err == nil {
					res.Err = err
				}
				return
			}
			res.Synced++
			res.Bytes += info.Size
		}()
	}
	wg.Wait()
	sort.Slice(res.Failed, func(i, j int) bool { return res.Failed[i].Key < res.Failed[j].Key })
	return res
}
