package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// pool is a named set of worker slots running one plugin. Tasks get a
// place on the least-busy ready worker through the dispatch seam
// ([pool.acquire], [lease.run]); those that find none wait in the pool's
// queue (queue.go): high priority first, FIFO within a priority.
type pool struct {
	name     string
	logger   hclog.Logger
	observer Observer
	start    startFunc
	spawn    func(func()) bool // runs an actor under the manager's supervisor

	mu           sync.Mutex
	cfg          PoolConfig // changed by reconfigure
	timeoutErr   error      // the cause of a task past cfg.TaskTimeout
	launch       launch     // changed by reconfigure
	slots        []*slot    // live slots, oldest first
	nextSlot     int
	queue        waitQueue[*lease]
	closed       bool          // takes no new tasks
	running      int           // tasks holding a worker
	pending      int           // tasks between a worker that went before starting them and their next one
	runAvg       time.Duration // recent tasks' run time, for prefetching; 0 before the first
	stallAfter   time.Duration // see the constant; tests change it
	reclaimArmed bool          // reclaimTimer will look for stuck workers
	reclaimTimer *time.Timer   // made on first use
	drained      chan struct{}
	lastErr      error
	lastErrT     time.Time
	cappedLogged bool        // the cap of a plugin's own concurrency was logged
	failing      bool        // the pool's last start failed (scale.go)
	failDelay    backoff     // a new slot's first wait while starts fail
	scaleTimer   *time.Timer // looks for workers idle long enough; made on first use
	scaleAt      time.Time   // when scaleTimer fires; zero when it is not armed

	ctx     context.Context // the slots' parent; canceled by halt
	halt    context.CancelCauseFunc
	done    sync.WaitGroup // slot actors
	started sync.WaitGroup // done once every first slot tried its first start
}

func newPool(ctx context.Context, cfg PoolConfig, l launch, o Observer, start startFunc, spawn func(func()) bool) *pool {
	p := &pool{
		name:       cfg.Name,
		cfg:        cfg,
		timeoutErr: timeoutError(cfg.TaskTimeout),
		launch:     l,
		logger:     l.logger,
		observer:   o,
		start:      start,
		spawn:      spawn,
		drained:    make(chan struct{}),
		stallAfter: stallAfter,
		failDelay:  backoff{min: minRestartDelay, max: maxRestartDelay},
	}
	p.ctx, p.halt = context.WithCancelCause(ctx)
	return p
}

// startSlots starts the pool's minimum of slots and returns once each has
// tried to start its first worker; failed starts are retried in the
// background.
func (p *pool) startSlots() {
	p.mu.Lock()
	n := p.cfg.MinWorkers
	p.mu.Unlock()
	p.addSlots(n, true)
	p.started.Wait()
}

// slotConfig is how the pool's slots run their workers. p.mu must be held.
func (p *pool) slotConfig() slotConfig {
	return slotConfig{
		launch:       p.launch,
		start:        p.start,
		restart:      true,
		recycleAfter: p.cfg.MaxTasksPerWorker,
		maxAge:       p.cfg.MaxWorkerAge,
		health:       healthInterval,
		logger:       p.logger,
	}
}

// addSlots starts n more slots; with first, startSlots waits for them.
func (p *pool) addSlots(n int, first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addSlotsLocked(n, first, causeNone, 0)
}

// addSlotsLocked is addSlots with p.mu held: why is the reason the slots'
// first workers start for, delay how long their first start waits.
func (p *pool) addSlotsLocked(n int, first bool, why Cause, delay time.Duration) {
	for range n {
		s := newSlot(p.nextSlot, &p.mu, p, p.slotConfig(), p.ctx)
		s.why, s.delay = why, delay
		p.nextSlot++
		p.slots = append(p.slots, s)
		p.done.Add(1)
		if first {
			p.started.Add(1)
			s.firstStart = sync.OnceFunc(p.started.Done)
		}
		if !p.spawn(func() { defer p.done.Done(); s.run() }) {
			p.done.Done()
			s.startDone()
			p.slots = p.slots[:len(p.slots)-1]
		}
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

// slotReady hands queued tasks to a slot whose worker takes tasks now.
func (p *pool) slotReady(s *slot) {
	s.startDone()
	if w := s.worker; w.maxTasks > 0 && w.maxTasks < p.cfg.Concurrency && !p.cappedLogged {
		p.cappedLogged = true
		p.logger.Warn("the plugin runs fewer tasks at once than the pool's concurrency; each worker gets at most that many",
			"concurrency", p.cfg.Concurrency, "plugin_concurrency", w.maxTasks)
	}
	p.startWorked()
	p.dispatch()
	p.planScaleDown()
}

// slotEnded records the end of a slot's worker.
func (p *pool) slotEnded(s *slot, reason Cause, ending bool) {
	s.startDone()
	if reason == CauseStartFailed {
		p.lastErr, p.lastErrT = s.worker.startErr, time.Now()
		if !ending {
			p.startFailed(s)
		}
	}
	if reason.counts() && !ending {
		p.observer.WorkerReplaced(p.name, p.cfg.Plugin, reason.String())
	}
	if ending {
		p.slots = slices.DeleteFunc(p.slots, func(x *slot) bool { return x == s })
	}
}

// acquire reserves a place for one task on the least-busy ready worker, or
// on the first one freed while the task waits in the queue. It is the
// dispatch seam: whatever feeds tasks to the pool (an HTTP request, a queue
// consumer) asks it for capacity and then runs the task on the lease.
func (p *pool) acquire(ctx context.Context, rank int) (*lease, error) {
	return p.acquireTask(ctx, 0, rank)
}

// acquireTask is acquire for a task sent tries times before: one whose
// worker went before starting it, or that was taken back from a busy
// worker, waits at the front of the queue, beyond its limit, and is served
// by a pool that was closed but not yet stopped.
func (p *pool) acquireTask(ctx context.Context, tries, rank int) (*lease, error) {
	again := tries > 0
	p.mu.Lock()
	if again {
		p.pending--
	}
	if p.closed && (!again || p.ctx.Err() != nil) {
		p.checkDrained()
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: pool %s takes no new tasks", ErrShuttingDown, p.name)
	}
	if s := p.pick(); s != nil {
		l := p.reserveTask(s, tries)
		p.mu.Unlock()
		return l, nil
	}
	if !again && p.queue.len() >= p.cfg.QueueLimit {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: pool %s has %d tasks waiting, its queue limit; retry later or raise queueLimit", ErrQueueFull, p.name, p.cfg.QueueLimit)
	}
	wt := p.queue.push(tries, rank)
	p.grow()
	p.mu.Unlock()

	select {
	case l := <-wt.got:
		if l == nil {
			return nil, fmt.Errorf("%w: pool %s stopped before the task got a worker", ErrShuttingDown, p.name)
		}
		return l, nil
	case <-ctx.Done():
		p.mu.Lock()
		if p.queue.remove(wt) {
			p.checkDrained()
			p.mu.Unlock()
			return nil, contextFailure(ctx)
		}
		p.mu.Unlock()
		// A worker was handed over just as the task gave up: give it back.
		if l := <-wt.got; l != nil {
			l.release(false, 0, false)
		}
		return nil, contextFailure(ctx)
	}
}

// tryAcquire is acquire without the wait: a place if one is free now and
// no task waits for one, else nil.
func (p *pool) tryAcquire() *lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.takesTaskNow() {
		return nil
	}
	return p.reserveTask(p.pick(), 0)
}

// free reports whether tryAcquire would find a place now.
func (p *pool) free() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takesTaskNow()
}

// takesTaskNow reports whether a new task would get a place at once: the
// pool is open, no task waits and pick finds a worker (one with a free
// running place, or one to prefetch to). p.mu must be held.
func (p *pool) takesTaskNow() bool {
	return !p.closed && p.queue.len() == 0 && p.pick() != nil
}

// pick returns the slot with the least-busy ready worker, or nil. A worker
// gets a task beyond its concurrency (pipelining) only when no worker has
// a free place, the pool's tasks are short, and it is not stuck on a long
// one. p.mu must be held.
func (p *pool) pick() *slot {
	var best *slot
	for _, s := range p.slots {
		w := s.worker
		if w.ready(p.cfg.Concurrency) && (best == nil || w.inflight < best.worker.inflight) {
			best = s
		}
	}
	if best != nil || !p.canPrefetch() {
		return best
	}
	now := time.Now()
	for _, s := range p.slots {
		w := s.worker
		if p.prefetchable(w, now) && (best == nil || w.inflight < best.worker.inflight) {
			best = s
		}
	}
	return best
}

// reserve gives s's worker one more task. p.mu must be held.
func (p *pool) reserve(s *slot) *lease {
	w := s.worker
	if w.inflight == 0 {
		w.progress = time.Now()
	}
	l := &lease{pool: p, worker: w, piped: w.piped, prefetch: p.cfg.Prefetch > 0, concurrency: p.cfg.Concurrency}
	w.inflight++
	w.taken++
	p.running++
	if w.state == StateIdle {
		l.idleWas, l.takenAt = w.idleSince, w.taken
		w.become(StateBusy)
	}
	return l
}

// reserveTask is reserve for a task that has been sent tries times
// before; a task beyond the worker's concurrency may be taken back.
func (p *pool) reserveTask(s *slot, tries int) *lease {
	l := p.reserve(s)
	l.tries = tries
	p.prefetched(s.worker, l)
	return l
}

// dispatch hands queued tasks to ready workers in the queue's order
// (high priority first, oldest first within one). p.mu must be
// held.
func (p *pool) dispatch() {
	for p.queue.len() > 0 {
		s := p.pick()
		if s == nil {
			return
		}
		wt := p.queue.pop()
		wt.got <- p.reserveTask(s, wt.tries)
	}
	p.reclaim()
}

// lease is a place reserved for one task on one worker.
type lease struct {
	pool        *pool
	worker      *worker
	piped       bool          // the worker takes numbered tasks
	prefetch    bool          // the pool pipelines: open the worker's pipeline
	concurrency int           // the pool's, when the lease was made
	tries       int           // how often the task was sent again before
	moved       chan struct{} // closed to take the waiting task back; nil unless prefetched
	ran         bool          // run was called: the place was used
	idleWas     time.Time     // since when the worker idled before this lease, if it did
	takenAt     int           // the worker's tasks taken, this lease's included
}

// run runs the task on the leased worker and gives the place back. A task
// whose worker went before starting it fails with a *notStarted error,
// and the pool expects it back (acquireTask with again) if tries allow.
func (l *lease) run(ctx context.Context, input []byte) (out []byte, pid int, err error) {
	l.ran = true
	w := l.worker
	doomed := func() {
		l.pool.mu.Lock()
		w.stopping()
		l.pool.mu.Unlock()
	}
	var (
		ran     time.Duration
		healthy bool
	)
	if pp, ok := w.proc.(pipelinedProc); ok && (l.piped || l.prefetch && l.openPipeline(pp)) {
		out, ran, err, healthy = pp.runSeq(ctx, input, l.concurrency, doomed, l.moved)
	} else {
		start := time.Now()
		out, err, healthy = w.proc.Run(ctx, input, doomed)
		ran = time.Since(start)
	}
	if hp, ok := w.proc.(heldProc); ok && healthy {
		if until := hp.holdAfter(err); until != nil {
			l.pool.hold(w, until)
		}
	}
	again := isNotStarted(err)
	// Only a task that ran to an answer counts: one canceled or taken
	// back while it waited leaves a healthy worker but did not run.
	counted := healthy && !again && ctx.Err() == nil
	l.release(counted, ran, again && l.tries < maxRedispatch)
	return out, w.proc.PID(), err
}

// heldProc is a proc that, after some answers, must take no task for a
// while: a Node.js script that answered with an error may be about to end
// (nodeproc.go).
type heldProc interface {
	// holdAfter returns, for a task that ended with err, a channel closed
	// when the worker may take tasks again, or nil when it may at once.
	holdAfter(err error) <-chan struct{}
}

// hold keeps w from taking tasks until until is closed; a worker whose
// process ended meanwhile takes none again.
func (p *pool) hold(w *worker, until <-chan struct{}) {
	p.mu.Lock()
	w.held++
	p.mu.Unlock()
	go func() {
		<-until
		p.mu.Lock()
		defer p.mu.Unlock()
		w.held--
		select {
		case <-w.proc.Done():
			w.stopping()
		default:
		}
		p.dispatch()
	}()
}

// openPipeline opens the worker's pipeline and, if it has one, marks it
// as taking numbered tasks.
func (l *lease) openPipeline(pp pipelinedProc) bool {
	if !pp.openPipeline() {
		return false
	}
	l.pool.mu.Lock()
	l.worker.piped = true
	l.pool.mu.Unlock()
	return true
}

// release gives the place back. counted says whether the task counts
// towards recycling (it ran to an answer), ran how long it ran; again
// that the task will ask for a place again (it never started).
func (l *lease) release(counted bool, ran time.Duration, again bool) {
	p, w := l.pool, l.worker
	p.mu.Lock()
	defer p.mu.Unlock()
	w.inflight--
	w.settled(l)
	p.running--
	if again {
		p.pending++
	}
	if counted {
		w.progress = time.Now()
		p.observeRun(ran)
		w.tasksDone++
		if w.recycleAfter > 0 && w.tasksDone >= w.recycleAfter {
			w.retiring = true
		}
	}
	if w.inflight == 0 {
		if w.state == StateBusy {
			w.become(StateIdle)
			if !l.ran && w.taken == l.takenAt && !l.idleWas.IsZero() {
				w.idleSince = l.idleWas // a place given back unused is no activity
			}
		}
		if w.retiring {
			w.retireWhenIdle()
		}
	}
	p.dispatch()
	p.planScaleDown()
	p.checkDrained()
}

// submit runs one task on the pool and says how long it waited for a
// worker. ctx bounds the whole task, queue wait included.
func (p *pool) submit(ctx context.Context, input []byte, rank int) (out []byte, pid int, wait time.Duration, err error) {
	start := time.Now()
	for tries := 0; ; tries++ {
		l, err := p.acquireTask(ctx, tries, rank)
		if tries == 0 {
			wait = time.Since(start)
		}
		if err != nil {
			return nil, pid, wait, err
		}
		out, pid, err = l.run(ctx, input)
		if !isNotStarted(err) || tries >= maxRedispatch {
			return out, pid, wait, err
		}
		p.logger.Debug("a worker went before starting a task; sending it to another", "pid", pid)
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
	if p.closed && p.running == 0 && p.pending == 0 && p.queue.len() == 0 {
		closeOnce(p.drained)
	}
}

// stop ends every slot and its process and waits for them. Tasks still
// running fail with cause; queued ones with ErrShuttingDown.
func (p *pool) stop(cause error) {
	p.close()
	p.halt(cause)
	p.done.Wait()
	p.mu.Lock()
	p.stopScaling()
	p.queue.closeAll()
	p.checkDrained()
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
// returns the pool's configuration it used, read under one lock.
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
// current tasks; the pool grows to cfg.MinWorkers or shrinks to
// cfg.MaxWorkers, shrinking by retiring its newest workers once idle:
// workers within the new bounds stay.
func (p *pool) reconfigure(cfg PoolConfig, l launch) {
	p.mu.Lock()
	old := p.launch
	p.cfg, p.launch = cfg, l
	p.timeoutErr = timeoutError(cfg.TaskTimeout)
	sc := p.slotConfig()
	replace := l.path != old.path || l.memoryLimitMB != old.memoryLimitMB || l.startTimeout != old.startTimeout
	live := 0
	for _, s := range p.slots {
		s.cfg = sc
		if replace {
			s.worker.retireWhenIdle()
		}
		if !s.removed {
			live++
		}
	}
	p.dispatch() // a higher concurrency may free places at once
	p.grow()     // a higher maxWorkers may serve waiting tasks
	p.planScaleDown()
	p.mu.Unlock()
	switch {
	case cfg.MinWorkers > live:
		p.addSlots(cfg.MinWorkers-live, false)
	case cfg.MaxWorkers < live:
		p.removeSlots(live - cfg.MaxWorkers)
	}
}

// closeOnce closes c unless it is closed already. The caller serializes.
func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}
