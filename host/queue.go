package host

import (
	"container/list"
	"time"
)

// Ranks of the priorities (TaskPriority.Rank).
const (
	highRank   = 0
	normalRank = 1
	lowRank    = 2
	numRanks   = 3
)

// waitQueue holds the tasks waiting for a place: a pool's, for a worker
// (T is the *lease handed over), and the one-shots', for a place to start
// a process (T is struct{}). Tasks leave it high priority first, FIFO
// within a priority, except that a lower priority's oldest task leaves
// once MaxOvertakes tasks of higher ones left while it waited (so none
// starves). It is guarded by its owner's mutex.
type waitQueue[T any] struct {
	l [numRanks]list.List // of *waiter[T], oldest first, by rank
	// passed counts, per rank, the tasks of higher ranks that left while
	// tasks of this rank waited, since one of this rank last left.
	passed [numRanks]int
}

// waiter is a task waiting in the queue for a place.
type waiter[T any] struct {
	got      chan T // buffered; receives the place handed over; closed (zero T) when none will come
	enqueued time.Time
	tries    int           // times the task was sent before
	rank     int           // its priority's rank
	elem     *list.Element // nil once handed over or removed
}

func (q *waitQueue[T]) len() int { return q.l[0].Len() + q.l[1].Len() + q.l[2].Len() }

// push adds a task of priority rank at the back of its priority; one sent
// tries > 0 times before (its worker went before starting it) at the
// front: it was accepted before every queued one.
func (q *waitQueue[T]) push(tries, rank int) *waiter[T] {
	rank = min(max(rank, 0), numRanks-1)
	w := &waiter[T]{got: make(chan T, 1), enqueued: time.Now(), tries: tries, rank: rank}
	if tries > 0 {
		w.elem = q.l[rank].PushFront(w)
	} else {
		w.elem = q.l[rank].PushBack(w)
	}
	return w
}

// next is the rank whose oldest task leaves next: the lowest waiting rank
// passed MaxOvertakes times, else the highest waiting; -1 when none waits.
func (q *waitQueue[T]) next() int {
	for r := numRanks - 1; r > highRank; r-- {
		if q.l[r].Len() > 0 && q.passed[r] >= MaxOvertakes {
			return r
		}
	}
	for r := range numRanks {
		if q.l[r].Len() > 0 {
			return r
		}
	}
	return -1
}

// pop takes the next task off the queue (see next); the caller hands it
// a place. The queue must not be empty.
func (q *waitQueue[T]) pop() *waiter[T] {
	r := q.next()
	w := q.l[r].Remove(q.l[r].Front()).(*waiter[T])
	w.elem = nil
	q.passed[r] = 0
	for lower := r + 1; lower < numRanks; lower++ {
		if q.l[lower].Len() > 0 {
			q.passed[lower]++
		}
	}
	return w
}

// remove takes a task that gave up off the queue, and reports whether it
// was still there (false: a place was handed to it already).
func (q *waitQueue[T]) remove(w *waiter[T]) bool {
	if w.elem == nil {
		return false
	}
	q.l[w.rank].Remove(w.elem)
	w.elem = nil
	if q.l[w.rank].Len() == 0 {
		q.passed[w.rank] = 0
	}
	return true
}

// oldestWait is how long the oldest task has waited; 0 when none waits.
func (q *waitQueue[T]) oldestWait() time.Duration {
	var oldest time.Time
	for r := range numRanks {
		if f := q.l[r].Front(); f != nil {
			if e := f.Value.(*waiter[T]).enqueued; oldest.IsZero() || e.Before(oldest) {
				oldest = e
			}
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest)
}

// closeAll tells every waiting task that no place will come.
func (q *waitQueue[T]) closeAll() {
	for q.len() > 0 {
		close(q.pop().got)
	}
}
