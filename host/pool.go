package host

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Start back-off bounds for a plugin that keeps failing to start, and how
// long a worker must live for its start to count as a success.
const (
	minRestartDelay = 100 * time.Millisecond
	maxRestartDelay = 10 * time.Second
	stableUptime    = 5 * time.Second
)

// pool is a named set of worker slots running one plugin. Each slot is an
// actor that owns the process in it; tasks are handed to the least-busy
// ready worker or wait in a FIFO queue.
type pool struct {
	name     string
	logger   hclog.Logger
	observer Observer

	mu         sync.Mutex
	cfg        PoolConfig // changed by reconfigure
	timeoutErr error      // the cause of a task past cfg.TaskTimeout
	launch     launch     // changed by reconfigure
	slots      []*slot    // live slots, oldest first
	nextSlot   int
	queue      list.List // of *waiter, oldest first
	closed     bool      // takes no new tasks
	running    int       // tasks holding a worker
	drained    chan struct{}
	lastErr    error
	lastErrT   time.Time

	stop    chan struct{} // closed to end every slot
	done    sync.WaitGroup
	started sync.WaitGroup // done once every slot tried its first start
}

// slot is one place for a worker in a pool. Its goroutine (runSlot) owns
// the worker process in it; its fields are guarded by the pool's mutex.
type slot struct {
	id         int
	worker     *worker // never nil
	restarts   int
	lastReason string
	removed    bool // the pool shrank: end after the current worker
}

// waiter is a task waiting in the queue for a worker.
type waiter struct {
	got      chan *worker // buffered; receives the worker handed over
	enqueued time.Time
	handed   bool // guarded by pool.mu
}

func newPool(cfg PoolConfig, l launch, o Observer) *pool {
	return &pool{
		name:       cfg.Name,
		cfg:        cfg,
		timeoutErr: timeoutError(cfg.TaskTimeout),
		launch:     l,
		logger:     l.logger,
		observer:   o,
		drained:    make(chan struct{}),
		stop:       make(chan struct{}),
	}
}

// start starts the configured number of slots and returns once each has
// tried to start its first worker; failed starts are retried in the
// background.
func (p *pool) start() {
	p.mu.Lock()
	n := p.cfg.Workers
	p.mu.Unlock()
	p.addSlots(n, &p.started)
	p.started.Wait()
}

// addSlots starts n more slots. If started is not nil, each slot marks it
// done once it has tried its first start.
func (p *pool) addSlots(n int, started *sync.WaitGroup) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range n {
		s := &slot{id: p.nextSlot}
		s.worker = newWorker(s.id)
		p.nextSlot++
		p.slots = append(p.slots, s)
		p.done.Add(1)
		markStarted := func() {}
		if started != nil {
			started.Add(1)
			markStarted = sync.OnceFunc(started.Done)
		}
		go p.runSlot(s, markStarted)
	}
}

// removeSlots retires the n newest slots: each ends once its worker has
// finished its current tasks.
func (p *pool) removeSlots(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.slots) - 1; i >= 0 && n > 0; i-- {
		s := p.slots[i]
		if s.removed {
			continue
		}
		s.removed = true
		s.worker.retireWhenIdle()
		n--
	}
}

// dropSlot forgets a slot whose goroutine is ending. p.mu must be held.
func (p *pool) dropSlot(s *slot) {
	p.slots = slices.DeleteFunc(p.slots, func(x *slot) bool { return x == s })
}

// runSlot keeps one worker running in slot i until the pool stops: it
// starts a process, waits for it to die or be retired, ends it, and starts
// the next, with back-off while starts keep failing.
func (p *pool) runSlot(s *slot, markStarted func()) {
	defer p.done.Done()
	defer markStarted()
	delay := backoff{min: minRestartDelay, max: maxRestartDelay}
	var wait time.Duration // before the next start
	for {
		p.mu.Lock()
		if s.removed {
			p.dropSlot(s)
			p.mu.Unlock()
			return
		}
		w := newWorker(s.id)
		s.worker = w
		l, plugin := p.launch, p.cfg.Plugin
		p.mu.Unlock()
		if wait > 0 && !p.sleep(wait) {
			return
		}

		proc, err := startProcess(context.Background(), l)
		if err != nil {
			p.logger.Error("worker failed to start", "slot", s.id, "error", err)
			p.mu.Lock()
			p.lastErr, p.lastErrT = err, time.Now()
			s.restarts++
			s.lastReason = "start_failed"
			p.mu.Unlock()
			p.observer.WorkerReplaced(p.name, plugin, "start_failed")
			markStarted()
			wait = delay.next()
			continue
		}
		reason, tasks, ok := p.serve(w, proc, markStarted)
		p.mu.Lock()
		w.become(StateStopped)
		if reason != "" {
			s.restarts++
			s.lastReason = reason
		}
		p.mu.Unlock()
		if reason != "" {
			p.observer.WorkerReplaced(p.name, plugin, reason)
		}
		if !ok {
			return
		}
		// A worker that served or lived a while is replaced at once; one
		// that keeps dying before its first task is retried with back-off.
		wait = 0
		if tasks > 0 || time.Since(proc.startedAt) > stableUptime {
			delay.reset()
		} else {
			wait = delay.next()
		}
	}
}

// serve puts a started process to work in w, calls ready once it takes
// tasks, and waits until it dies, is retired or the pool stops; then it
// ends it. It returns why the worker was replaced
// ("" when the pool stopped) and whether the slot should go on.
func (p *pool) serve(w *worker, proc *process, ready func()) (reason string, tasks int, goOn bool) {
	p.mu.Lock()
	w.proc = proc
	w.recycleAfter = jitter(p.cfg.MaxTasksPerWorker)
	maxAge := p.cfg.MaxWorkerAge
	w.become(StateIdle)
	p.dispatch()
	p.mu.Unlock()
	ready()
	p.logger.Debug("worker ready", "slot", w.slot, "pid", proc.pid)

	var ageC <-chan time.Time
	if maxAge > 0 {
		t := time.NewTimer(jitterDuration(maxAge))
		defer t.Stop()
		ageC = t.C
	}
	goOn = true
wait:
	for {
		select {
		case <-proc.exited():
			reason = "exited"
			if c := Code(proc.deathCause()); c != CodeWorkerCrashed {
				reason = c
			}
			break wait
		case <-w.retire:
			reason = "recycled"
			break wait
		case <-ageC:
			p.mu.Lock()
			w.retireWhenIdle()
			p.mu.Unlock()
		case <-p.stop:
			goOn = false
			break wait
		}
	}
	p.mu.Lock()
	w.stopping()
	busy := w.inflight > 0
	tasks = w.tasksDone + w.inflight
	p.mu.Unlock()
	if !goOn && busy {
		proc.kill(fmt.Errorf("%w: the worker was stopped", ErrShuttingDown))
	} else {
		proc.kill(nil) // idle, or already dead
	}
	<-proc.exited()
	if reason == "exited" {
		p.logger.Warn("worker exited; replacing it", "slot", w.slot, "pid", proc.pid, "error", proc.deathCause())
	} else {
		p.logger.Debug("worker stopped", "slot", w.slot, "pid", proc.pid, "reason", reason)
	}
	return reason, tasks, goOn
}

// sleep waits for d or until the pool stops, and reports whether it may go on.
func (p *pool) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stop:
		return false
	}
}

// submit runs one task on the pool and says how long it waited for a
// worker. ctx bounds the whole task, queue wait included; the pool's
// timeout has already been applied by the caller.
func (p *pool) submit(ctx context.Context, input []byte) (out []byte, pid int, wait time.Duration, err error) {
	start := time.Now()
	w, err := p.acquire(ctx)
	wait = time.Since(start)
	if err != nil {
		return nil, 0, wait, err
	}
	pid = w.proc.pid
	out, err, healthy := call(ctx, w.proc, input, func() {
		p.mu.Lock()
		w.stopping()
		p.mu.Unlock()
	})
	p.release(w, healthy)
	return out, pid, wait, err
}

// acquire returns a worker reserved for one task: the least-busy ready one,
// or the first one freed while the task waits in the queue.
func (p *pool) acquire(ctx context.Context) (*worker, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: pool %s takes no new tasks", ErrShuttingDown, p.name)
	}
	if w := p.pick(); w != nil {
		p.reserve(w)
		p.mu.Unlock()
		return w, nil
	}
	if p.queue.Len() >= p.cfg.QueueLimit {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: pool %s has %d tasks waiting, its queue limit; retry later or raise queueLimit", ErrQueueFull, p.name, p.cfg.QueueLimit)
	}
	wt := &waiter{got: make(chan *worker, 1), enqueued: time.Now()}
	elem := p.queue.PushBack(wt)
	p.mu.Unlock()

	select {
	case w := <-wt.got:
		if w == nil {
			return nil, fmt.Errorf("%w: pool %s stopped before the task got a worker", ErrShuttingDown, p.name)
		}
		return w, nil
	case <-ctx.Done():
		p.mu.Lock()
		if !wt.handed {
			p.queue.Remove(elem)
			p.checkDrained()
			p.mu.Unlock()
			return nil, contextFailure(ctx)
		}
		p.mu.Unlock()
		// A worker was handed over just as the task gave up: give it back.
		if w := <-wt.got; w != nil {
			p.release(w, false)
		}
		return nil, contextFailure(ctx)
	}
}

// pick returns the least-busy ready worker, or nil. p.mu must be held.
func (p *pool) pick() *worker {
	var best *worker
	for _, s := range p.slots {
		w := s.worker
		if w.ready(p.cfg.Concurrency) && (best == nil || w.inflight < best.inflight) {
			best = w
		}
	}
	return best
}

// reserve gives w one more task. p.mu must be held.
func (p *pool) reserve(w *worker) {
	w.inflight++
	p.running++
	if w.state == StateIdle {
		w.become(StateBusy)
	}
}

// release returns w after a task. counted says whether the task counts
// towards recycling (it ran to an answer).
func (p *pool) release(w *worker, counted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.inflight--
	p.running--
	if counted {
		w.tasksDone++
		if w.recycleAfter > 0 && w.tasksDone >= w.recycleAfter {
			w.retiring = true
		}
	}
	if w.inflight == 0 {
		if w.state == StateBusy {
			w.become(StateIdle)
		}
		if w.retiring {
			select {
			case <-w.retire:
			default:
				close(w.retire)
			}
		}
	}
	p.dispatch()
	p.checkDrained()
}

// dispatch hands queued tasks to ready workers, oldest first. p.mu must be
// held.
func (p *pool) dispatch() {
	for p.queue.Len() > 0 {
		w := p.pick()
		if w == nil {
			return
		}
		wt := p.queue.Remove(p.queue.Front()).(*waiter)
		wt.handed = true
		p.reserve(w)
		wt.got <- w
	}
}

// close stops the pool taking new tasks; queued and running ones go on.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.checkDrained()
	p.mu.Unlock()
}

// checkDrained closes drained once a closed pool has no task left. p.mu
// must be held.
func (p *pool) checkDrained() {
	if p.closed && p.running == 0 && p.queue.Len() == 0 {
		select {
		case <-p.drained:
		default:
			close(p.drained)
		}
	}
}

// halt ends every slot and its process and waits for them. Tasks still
// running fail with ErrShuttingDown.
func (p *pool) halt() {
	p.close()
	close(p.stop)
	p.done.Wait()
	// Tasks still queued get no worker now.
	p.mu.Lock()
	for e := p.queue.Front(); e != nil; e = e.Next() {
		wt := e.Value.(*waiter)
		wt.handed = true
		close(wt.got)
	}
	p.queue.Init()
	p.mu.Unlock()
}

// contextFailure turns the end of a task's context into wpm's error.
func contextFailure(ctx context.Context) error {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrShuttingDown), errors.Is(cause, ErrTimeout):
		return cause
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("%w: the caller's deadline passed", ErrTimeout)
	default:
		return fmt.Errorf("%w: the caller went away", context.Canceled)
	}
}

// taskContext bounds a task by the pool's timeout (none when 0) and
// returns the pool's configuration it used, read under one lock. The
// shutdown deadline needs no context: halting a pool kills its busy
// workers with ErrShuttingDown as the reason.
func (p *pool) taskContext(ctx context.Context) (context.Context, context.CancelFunc, PoolConfig) {
	p.mu.Lock()
	cfg, cause := p.cfg, p.timeoutErr
	p.mu.Unlock()
	if cfg.TaskTimeout <= 0 {
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, cfg
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.TaskTimeout, cause)
	return ctx, cancel, cfg
}

// settings returns the pool's current configuration.
func (p *pool) settings() PoolConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// reconfigure applies a new configuration to a running pool without
// failing a task: queue, timeout, concurrency and recycling settings apply
// at once; a new plugin, memory limit or start timeout applies to workers
// started from now on, and every current worker is replaced after its
// current tasks; the pool grows or shrinks to cfg.Workers, shrinking by
// retiring its newest workers once idle.
func (p *pool) reconfigure(cfg PoolConfig, l launch) {
	p.mu.Lock()
	old := p.launch
	p.cfg, p.launch = cfg, l
	p.timeoutErr = timeoutError(cfg.TaskTimeout)
	if l.path != old.path || l.memoryLimitMB != old.memoryLimitMB || l.startTimeout != old.startTimeout {
		for _, s := range p.slots {
			s.worker.retireWhenIdle()
		}
	}
	live := 0
	for _, s := range p.slots {
		if !s.removed {
			live++
		}
	}
	p.dispatch() // a higher concurrency may free places at once
	p.mu.Unlock()
	switch {
	case cfg.Workers > live:
		p.addSlots(cfg.Workers-live, nil)
	case cfg.Workers < live:
		p.removeSlots(live - cfg.Workers)
	}
}
