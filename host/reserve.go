package host

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Reservation is a place reserved for one task on a worker of a pool,
// made by [Manager.Reserve]. A queue consumer reserves first and takes a
// task off its queue only once it holds a place, so that it never takes
// more tasks than the pool can run. Either Run or Release must be called,
// exactly once; both are safe to call from another goroutine than Reserve.
type Reservation struct {
	m     *Manager
	pool  *pool
	lease *lease
	start time.Time
	once  sync.Once
}

// Reserve waits for a free place on a ready worker of the named pool, as a
// synchronous task would (it queues behind the pool's waiting tasks and
// counts against its queue limit), and holds it. ctx bounds the wait only.
// It fails at once with ErrUnknownPool, ErrQueueFull when the pool's queue
// is full, or ErrShuttingDown.
//
// A reservation that has to wait is demand, like a task: a pool below its
// MaxWorkers starts a worker for it. So a consumer of a shared queue
// scales the pool on that queue's depth by reserving while it has tasks to
// take; one that only looks for tasks should not hold a reservation at a
// pool with no free place, or it keeps a worker running. A reservation
// given back unused with Release does not count as the worker's activity:
// an idle worker is still stopped after ScaleDownAfter. Of opts only
// [Priority] counts: the place in the queue of the task it is for.
func (m *Manager) Reserve(ctx context.Context, poolName string, opts ...TaskOption) (*Reservation, error) {
	p, err := m.reservable(poolName)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	l, err := p.acquire(ctx, reserveRank(opts))
	if err != nil {
		return nil, err
	}
	return &Reservation{m: m, pool: p, lease: l, start: start}, nil
}

// TryReserve is Reserve without the wait: it holds a free place on a ready
// worker of the named pool if there is one now and no task waits for one.
// Otherwise it holds nothing and reports false, as it does for an unknown
// pool or one that takes no new tasks.
func (m *Manager) TryReserve(poolName string) (*Reservation, bool) {
	p, err := m.reservable(poolName)
	if err != nil {
		return nil, false
	}
	l := p.tryAcquire()
	if l == nil {
		return nil, false
	}
	return &Reservation{m: m, pool: p, lease: l, start: time.Now()}, true
}

// HasFreePlace reports whether TryReserve on the named pool would find a
// place now (another task may still take it first). It reserves nothing,
// so no worker changes state: a queue consumer asks it before looking for
// a task, and reserves once it has one.
func (m *Manager) HasFreePlace(poolName string) bool {
	p, err := m.reservable(poolName)
	return err == nil && p.free()
}

// reservable returns the named pool if the manager takes tasks.
func (m *Manager) reservable(poolName string) (*pool, error) {
	p, ok := m.pool(poolName)
	if !ok {
		return nil, m.unknownPool(poolName)
	}
	if m.closed.Load() {
		return nil, fmt.Errorf("%w: wpm takes no new tasks", ErrShuttingDown)
	}
	return p, nil
}

// Run runs input on the reserved worker, bounded by ctx and the pool's
// task timeout (counted from now), and gives the place back. If ctx ends
// while the task runs, its worker is killed and replaced. Errors are
// [*TaskError]s, as Submit's; opts name and report the task as
// Submit's do. Run after Run or Release fails with
// ErrShuttingDown and runs nothing.
func (r *Reservation) Run(ctx context.Context, input []byte, opts ...TaskOption) (Result, error) {
	ran := false
	var (
		res Result
		err error
	)
	r.once.Do(func() {
		ran = true
		res, err = r.run(ctx, input, newTaskOptions(opts))
	})
	if !ran {
		return Result{}, fmt.Errorf("%w: the reservation on pool %s was used already", ErrShuttingDown, r.pool.name)
	}
	return res, err
}

// run is Run's body, called once.
func (r *Reservation) run(ctx context.Context, input []byte, o taskOptions) (Result, error) {
	ctx, cancel, cfg := r.pool.taskContext(ctx)
	defer cancel()
	book, ctx := r.m.beginTask(ctx, o, r.pool.name, cfg.Plugin)
	wait := time.Since(r.start)
	out, pid, err := r.lease.run(ctx, input)
	return book.end(out, pid, wait, err)
}

// Release gives the place back unused. It does nothing after Run or an
// earlier Release.
func (r *Reservation) Release() {
	r.once.Do(func() { r.lease.release(false, 0, false) })
}

// Pool returns the name of the reserved pool.
func (r *Reservation) Pool() string { return r.pool.name }

// reserveRank is the priority rank opts give a reservation's wait; only
// [Priority] counts.
func reserveRank(opts []TaskOption) int {
	o := taskOptions{prio: normalRank}
	for _, opt := range opts {
		opt(&o)
	}
	return o.prio
}
