package stage

import (
	"container/heap"
	"time"
)

// The queue's order: the queued entries by due time, so that the queue
// finds the next due one without looking at every entry waiting (a copy
// of 100,000 small files leaves that many waiting out the window, and
// every upload's end and every close wakes the queue).
//
// An entry is pushed whenever it is queued or its due time or attempts
// change while queued (enqueue), and never taken out otherwise: an item
// popped is checked against its entry (startDue), and one that no longer
// matches is stale, left over from before a later push. First attempts and
// retries are apart because a drain, or a writer waiting for room, ends
// the write-back window at once but not a retry's backoff.

type queueItem struct {
	e   *Entry
	due time.Time
}

// dueHeap is a min-heap of items by due time (container/heap).
type dueHeap []queueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(queueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = queueItem{} // no entry kept alive by the spare capacity
	*h = old[:len(old)-1]
	return it
}

// queue holds the items of the queued entries. Guarded by Manager.mu.
type queue struct {
	first dueHeap // entries not yet tried (attempts == 0)
	retry dueHeap // entries waiting out a retry's backoff (attempts > 0)
}

// push adds an item for e, due then, and notes it as e's latest. Called
// with Manager.mu held.
func (q *queue) push(e *Entry, due time.Time, retry bool) {
	e.ix.pushed, e.ix.pushedRetry = due, retry
	if retry {
		heap.Push(&q.retry, queueItem{e, due})
	} else {
		heap.Push(&q.first, queueItem{e, due})
	}
}

// next returns the item the queue should look at next and how long until
// it is due (0 or less: due now), or false if the queue is empty. With
// windowEnds (a drain, or room wanted), first attempts are due at once.
func (q *queue) next(windowEnds bool, now time.Time) (it queueItem, retry bool, wait time.Duration, ok bool) {
	if len(q.first) > 0 {
		it, wait, ok = q.first[0], q.first[0].due.Sub(now), true
		if windowEnds {
			wait = min(wait, 0)
		}
	}
	if len(q.retry) > 0 {
		if w := q.retry[0].due.Sub(now); !ok || w < wait {
			it, retry, wait, ok = q.retry[0], true, w, true
		}
	}
	return it, retry, wait, ok
}

// pop takes off the item next returned.
func (q *queue) pop(retry bool) {
	if retry {
		heap.Pop(&q.retry)
	} else {
		heap.Pop(&q.first)
	}
}

// retrying returns the entries with items in the retry heap, each once:
// every entry waiting out a backoff is among them.
func (q *queue) retrying() []*Entry {
	seen := make(map[*Entry]bool, len(q.retry))
	var out []*Entry
	for _, it := range q.retry {
		if !seen[it.e] {
			seen[it.e] = true
			out = append(out, it.e)
		}
	}
	return out
}

// enqueue pushes e as it is now, if it is queued, and wakes the queue.
// Called with e.mu held, after e was queued or its due time or attempts
// changed; not with Manager.mu.
func (m *Manager) enqueue(e *Entry) {
	if e.state() != stateQueued {
		return
	}
	m.mu.Lock()
	m.queue.push(e, e.due, e.attempts > 0)
	m.mu.Unlock()
	m.poke() // after the push: a wake before it could miss the item
}

// current says whether an item popped from the queue still stands for its
// entry: queued, no writer, with the same due time and kind of attempt.
// Called with e.mu held.
func (it queueItem) current(retry bool) bool {
	e := it.e
	return e.state() == stateQueued && e.writers == 0 && e.due.Equal(it.due) && (e.attempts > 0) == retry
}

// repushStale drops a stale item of e, pushing e again only if its due
// time or kind changed since its latest push (a change made without
// enqueue): else that push stands for it. An entry with a writer is
// pushed again by its last close (schedule). Called with e.mu held.
func (m *Manager) repushStale(e *Entry) {
	if e.state() != stateQueued || e.writers > 0 {
		return
	}
	m.mu.Lock()
	if retry := e.attempts > 0; !e.ix.pushed.Equal(e.due) || e.ix.pushedRetry != retry {
		m.queue.push(e, e.due, retry)
	}
	m.mu.Unlock()
}
