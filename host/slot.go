package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Start back-off bounds for a plugin that keeps failing to start, how long
// a worker must live for its start to count as a success, and how often an
// idle worker is pinged, with how long it has to answer.
const (
	minRestartDelay = 100 * time.Millisecond
	maxRestartDelay = 10 * time.Second
	stableUptime    = 5 * time.Second
	healthInterval  = 5 * time.Second
	healthTimeout   = time.Second
)

// slotOwner is what a slot reports to: a pool, or the one-shot runner. Its
// methods are called with the owner's mutex (slot.mu) held.
type slotOwner interface {
	// slotReady: the slot's worker takes tasks now.
	slotReady(s *slot)
	// slotEnded: the slot's worker went, for reason (causeNone when the
	// slot ends without one); the slot restarts it unless ending is set.
	slotEnded(s *slot, reason Cause, ending bool)
}

// slotConfig is what a slot needs to know to run its worker.
type slotConfig struct {
	launch       launch
	start        startFunc
	restart      bool          // pool slots replace their worker; one-shot slots end with it
	recycleAfter int           // tasks before a worker is recycled; 0 means never
	exact        bool          // recycleAfter without jitter (one-shots: exactly 1)
	maxAge       time.Duration // 0 means no age limit
	health       time.Duration // 0 means idle workers are not pinged
	logger       hclog.Logger
}

// slot is an actor that runs one worker process at a time through its
// states (see [State]): it starts it, with back-off while starts fail, hands
// it to its owner to take tasks, pings it while idle, recycles it, and
// stops it with a cause; a pool slot then starts the next. Its fields are
// guarded by its owner's mutex mu; its goroutine (run) owns the process.
type slot struct {
	id    int
	mu    *sync.Mutex
	owner slotOwner

	cfg        slotConfig // guarded by mu; a reload changes it for the next worker
	worker     *worker    // never nil
	restarts   int
	lastExit   Cause  // why the last worker that counts went (Cause.counts)
	removed    bool   // end after the current worker
	firstStart func() // called once its first start was tried; may be nil
	// why and delay are for a slot its pool added to scale up: the reason
	// its first worker's start event carries (CauseScaledUp), and how long
	// that start waits (the pool's back-off while its starts fail).
	why   Cause
	delay time.Duration

	ctx       context.Context
	interrupt context.CancelCauseFunc
}

func newSlot(id int, mu *sync.Mutex, owner slotOwner, cfg slotConfig, parent context.Context) *slot {
	s := &slot{id: id, mu: mu, owner: owner, cfg: cfg, worker: newWorker(id)}
	s.ctx, s.interrupt = context.WithCancelCause(parent)
	return s
}

// run keeps a worker in the slot until the slot is removed or interrupted
// (or, for a one-shot slot, until its one worker is gone).
func (s *slot) run() {
	defer s.interrupt(nil)
	delay := backoff{min: minRestartDelay, max: maxRestartDelay}
	s.mu.Lock()
	wait := s.delay
	s.mu.Unlock()
	for {
		s.mu.Lock()
		if s.removed {
			s.owner.slotEnded(s, causeNone, true)
			s.mu.Unlock()
			return
		}
		w := newWorker(s.id)
		s.worker = w
		cfg := s.cfg
		s.mu.Unlock()
		if wait > 0 && !sleepCtx(s.ctx, wait) {
			s.ended(causeNone, false) // the slot ends without a worker
			return
		}
		p, err := cfg.start(s.ctx, cfg.launch)
		if err != nil {
			if s.ctx.Err() == nil {
				cfg.logger.Error("worker failed to start", "slot", s.id, "error", err)
			}
			w.startErr = err
			if !s.ended(CauseStartFailed, cfg.restart) {
				return
			}
			wait = delay.next()
			continue
		}
		reason, tasks := s.serve(w, p, cfg)
		if !s.ended(reason, cfg.restart) {
			return
		}
		// A worker that served or lived a while is replaced at once; one
		// that keeps dying before its first task is retried with back-off.
		wait = 0
		if tasks > 0 || time.Since(p.StartedAt()) > stableUptime {
			delay.reset()
		} else {
			wait = delay.next()
		}
	}
}

// ended records the end of the slot's worker for reason and reports
// whether the slot goes on with another: not once it is removed.
func (s *slot) ended(reason Cause, restart bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	goOn := restart && s.ctx.Err() == nil && !s.removed
	s.worker.stopped()
	if reason.counts() {
		s.restarts++
		s.lastExit = reason
	}
	if !goOn {
		s.removed = true
	}
	s.owner.slotEnded(s, reason, !goOn)
	if goOn && s.removed { // the owner let the slot go
		goOn = false
		s.owner.slotEnded(s, causeNone, true)
	}
	s.reportEnd(reason, goOn)
	return goOn
}

// reportEnd reports the end of the slot's worker for reason, and its
// replacement if the slot goes on. s.mu must be held.
func (s *slot) reportEnd(reason Cause, goOn bool) {
	if reason == causeNone {
		return
	}
	pid := 0
	if s.worker.proc != nil {
		pid = s.worker.proc.PID()
	}
	workerEvent(s.ctx, EventWorkerExited, s.id, pid, reason)
	if goOn && reason.counts() {
		workerEvent(s.ctx, EventWorkerReplaced, s.id, pid, reason)
	}
}

// serve puts a started process to work in w and waits until it dies, is
// retired or the slot is interrupted; then it stops it. It returns why the
// worker went (CauseStopped when the slot was interrupted) and how many
// tasks it took.
func (s *slot) serve(w *worker, p proc, cfg slotConfig) (reason Cause, tasks int) {
	s.mu.Lock()
	w.proc = p
	if c, ok := p.(capped); ok {
		w.maxTasks = c.maxConcurrency()
	}
	w.recycleAfter = cfg.recycleAfter
	if !cfg.exact {
		w.recycleAfter = jitter(cfg.recycleAfter)
	}
	w.become(StateIdle)
	s.owner.slotReady(s)
	why := s.why
	s.why = causeNone
	s.mu.Unlock()
	workerEvent(s.ctx, EventWorkerStarted, s.id, p.PID(), why)
	cfg.logger.Debug("worker ready", "slot", s.id, "pid", p.PID())

	var ageC, healthC <-chan time.Time
	if cfg.maxAge > 0 {
		t := time.NewTimer(jitterDuration(cfg.maxAge))
		defer t.Stop()
		ageC = t.C
	}
	if cfg.health > 0 {
		t := time.NewTicker(cfg.health)
		defer t.Stop()
		healthC = t.C
	}
	var stopErr error
	var exit Exit // how the process ended, when it ended on its own; else its Cause is causeNone
wait:
	for {
		select {
		case <-p.Done():
			exit = p.Exit()
			reason = exit.Cause
			break wait
		case <-w.retire:
			reason = CauseRecycled
			s.mu.Lock()
			if w.retireWhy != causeNone {
				reason = w.retireWhy
			}
			s.mu.Unlock()
			break wait
		case <-ageC:
			s.mu.Lock()
			w.retireWhenIdle()
			s.mu.Unlock()
		case <-healthC:
			if err := s.check(w, p); err != nil {
				cfg.logger.Warn("idle worker did not answer its health check; replacing it", "slot", s.id, "pid", p.PID(), "error", err)
				stopErr = fmt.Errorf("%w: the worker did not answer a health check (%w)", ErrWorkerCrashed, err)
				reason = CauseUnhealthy
				break wait
			}
		case <-s.ctx.Done():
			reason = CauseStopped
			if cause := context.Cause(s.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				stopErr = cause
			}
			break wait
		}
	}
	s.mu.Lock()
	w.stopping()
	busy := w.inflight > 0
	tasks = w.taken
	s.mu.Unlock()
	if !busy && reason == CauseStopped {
		stopErr = nil // an idle worker stops in order
	}
	p.Stop(stopErr)
	if exit.Cause.counts() { // it went on its own
		cfg.logger.Warn("worker exited; replacing it", "slot", s.id, "pid", p.PID(), "error", exit.Err)
	} else {
		cfg.logger.Debug("worker stopped", "slot", s.id, "pid", p.PID(), "reason", reason.String())
	}
	return reason, tasks
}

// check pings w's process if it is idle, and says what went wrong.
func (s *slot) check(w *worker, p proc) error {
	s.mu.Lock()
	idle := w.inflight == 0 && w.state == StateIdle
	if idle {
		w.checking = true // not handed tasks while it is pinged
	}
	s.mu.Unlock()
	if !idle {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, healthTimeout)
	err := p.Ping(ctx)
	cancel()
	s.mu.Lock()
	w.checking = false
	s.owner.slotReady(s)
	s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil
	}
	return err
}

// stop ends the slot: its worker stops after its current tasks, or at
// once with cause when cause is not nil. It does not wait.
func (s *slot) stop(cause error) {
	if cause != nil {
		s.interrupt(cause)
		return
	}
	s.mu.Lock()
	s.removed = true
	s.worker.retireWhenIdle()
	s.mu.Unlock()
}

// startDone marks the slot's first start as tried.
func (s *slot) startDone() {
	if s.firstStart != nil {
		s.firstStart()
	}
}

// closedWithin waits at most d for ch to close and reports whether it did.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// sleepCtx waits for d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
