package host

import (
	"container/list"
	"time"
)

// waitQueue is a pool's FIFO of tasks waiting for a place on a worker, the
// first implementation behind the dispatch seam. It is guarded by its
// pool's mutex.
type waitQueue struct {
	l list.List // of *waiter, oldest first
}

// waiter is a task waiting in the queue for a worker.
type waiter struct {
	got      chan *lease // buffered; receives the place handed over, or nil when the pool stops
	enqueued time.Time
	tries    int           // times the task was sent before
	elem     *list.Element // nil once handed over or removed
}

func (q *waitQueue) len() int { return q.l.Len() }

// push adds a task at the back; one sent tries > 0 times before (its
// worker went before starting it) at the front: it was accepted before
// every queued one.
func (q *waitQueue) push(tries int) *waiter {
	w := &waiter{got: make(chan *lease, 1), enqueued: time.Now(), tries: tries}
	if tries > 0 {
		w.elem = q.l.PushFront(w)
	} else {
		w.elem = q.l.PushBack(w)
	}
	return w
}

// pop takes the oldest task off the queue; the caller hands it a place.
func (q *waitQueue) pop() *waiter {
	w := q.l.Remove(q.l.Front()).(*waiter)
	w.elem = nil
	return w
}

// remove takes a task that gave up off the queue, and reports whether it
// was still there (false: a place was handed to it already).
func (q *waitQueue) remove(w *waiter) bool {
	if w.elem == nil {
		return false
	}
	q.l.Remove(w.elem)
	w.elem = nil
	return true
}

// oldestWait is how long the oldest task has waited; 0 when none waits.
func (q *waitQueue) oldestWait() time.Duration {
	if f := q.l.Front(); f != nil {
		return time.Since(f.Value.(*waiter).enqueued)
	}
	return 0
}

// closeAll tells every waiting task that no place will come.
func (q *waitQueue) closeAll() {
	for q.l.Len() > 0 {
		close(q.pop().got)
	}
}
