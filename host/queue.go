package host

import (
	"container/list"
	"time"
)

// waitQueue is the FIFO of tasks waiting for a place: a pool's, for a
// worker (T is the *lease handed over), and the one-shots', for a place
// to start a process (T is struct{}). It is guarded by its owner's mutex.
type waitQueue[T any] struct {
	l list.List // of *waiter[T], oldest first
}

// waiter is a task waiting in the queue for a place.
type waiter[T any] struct {
	got      chan T // buffered; receives the place handed over; closed (zero T) when none will come
	enqueued time.Time
	tries    int           // times the task was sent before
	elem     *list.Element // nil once handed over or removed
}

func (q *waitQueue[T]) len() int { return q.l.Len() }

// push adds a task at the back; one sent tries > 0 times before (its
// worker went before starting it) at the front: it was accepted before
// every queued one.
func (q *waitQueue[T]) push(tries int) *waiter[T] {
	w := &waiter[T]{got: make(chan T, 1), enqueued: time.Now(), tries: tries}
	if tries > 0 {
		w.elem = q.l.PushFront(w)
	} else {
		w.elem = q.l.PushBack(w)
	}
	return w
}

// pop takes the oldest task off the queue; the caller hands it a place.
func (q *waitQueue[T]) pop() *waiter[T] {
	w := q.l.Remove(q.l.Front()).(*waiter[T])
	w.elem = nil
	return w
}

// remove takes a task that gave up off the queue, and reports whether it
// was still there (false: a place was handed to it already).
func (q *waitQueue[T]) remove(w *waiter[T]) bool {
	if w.elem == nil {
		return false
	}
	q.l.Remove(w.elem)
	w.elem = nil
	return true
}

// oldestWait is how long the oldest task has waited; 0 when none waits.
func (q *waitQueue[T]) oldestWait() time.Duration {
	if f := q.l.Front(); f != nil {
		return time.Since(f.Value.(*waiter[T]).enqueued)
	}
	return 0
}

// closeAll tells every waiting task that no place will come.
func (q *waitQueue[T]) closeAll() {
	for q.l.Len() > 0 {
		close(q.pop().got)
	}
}
