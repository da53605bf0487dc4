package host

import (
	"math/rand/v2"
	"time"
)

// worker is one generation of a slot: the process in it from its start to
// its end. Its fields are guarded by its slot's mutex; proc is set before
// the worker becomes idle and never changes.
type worker struct {
	slot     int
	proc     proc  // nil while starting
	startErr error // why its start failed, if it did
	state    State
	checking bool // being health-checked: takes no task meanwhile
	held     int  // holds on it (pool.hold): takes no task meanwhile

	maxTasks     int       // the most tasks its plugin runs at once (capped); 0 is no limit of its own
	inflight     int       // tasks running on it now, or waiting at it (pipelining)
	piped        bool      // takes numbered tasks: may get tasks beyond its concurrency
	progress     time.Time // when it last answered a task or took one while idle
	waiting      []*lease  // tasks sent beyond its concurrency, which may be taken back
	taken        int       // tasks handed to it
	tasksDone    int
	recycleAfter int           // tasks before it is recycled; 0 means never
	retiring     bool          // takes no new tasks; stops once idle
	retire       chan struct{} // closed when retiring and idle
	retireWhy    Cause         // why it retires, when not recycled: CauseScaledDown
	idleSince    time.Time     // when it last became idle
}

func newWorker(slot int) *worker {
	return &worker{slot: slot, state: StateStarting, retire: make(chan struct{})}
}

// ready reports whether the worker may take another task, given the pool's
// per-worker concurrency, capped by what its plugin takes.
func (w *worker) ready(concurrency int) bool {
	if w.maxTasks > 0 {
		concurrency = min(concurrency, w.maxTasks)
	}
	return (w.state == StateIdle || w.state == StateBusy) && !w.retiring && !w.checking && w.held == 0 && w.inflight < concurrency
}

// capped is a proc whose plugin says how many tasks it runs at once.
type capped interface {
	// maxConcurrency is that number; 0 is no limit of its own.
	maxConcurrency() int
}

// become moves the worker to state next; an illegal move panics.
func (w *worker) become(next State) {
	w.state = w.state.to(next)
	if next == StateIdle {
		w.idleSince = time.Now()
	}
}

// stopping moves the worker to stopping unless it is already there or past.
func (w *worker) stopping() {
	if w.state != StateStopping && w.state != stateStopped {
		w.become(StateStopping)
	}
}

// stopped moves the worker to stopped, through stopping.
func (w *worker) stopped() {
	w.stopping()
	if w.state != stateStopped {
		w.become(stateStopped)
	}
}

// retireWhenIdle marks the worker to be stopped after its current tasks.
// Called again once idle, it lets the slot stop it.
func (w *worker) retireWhenIdle() {
	w.retiring = true
	if w.inflight == 0 {
		closeOnce(w.retire)
	}
}

// jitter spreads n by up to ±10 % (at least ±1 when n > 1), so workers that
// started together are not all recycled together.
func jitter(n int) int {
	if n <= 1 {
		return n
	}
	spread := max(n/10, 1)
	return n - spread + rand.IntN(2*spread+1)
}

// jitterDuration spreads d by up to ±10 %.
func jitterDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	spread := int64(d / 10)
	if spread == 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread+1))
}

// backoff is a capped exponential delay between failed starts.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return jitterDuration(b.cur)
}

func (b *backoff) reset() { b.cur = 0 }
