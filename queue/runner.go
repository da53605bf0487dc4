package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wpmdev/wpm/host"
)

// runner takes the tasks of one pool, or the one-shots, off the queue and
// runs them, never more than there is room for.
type runner struct {
	e    *Engine
	pool string // "" for one-shots
	// cons are the pool's consumers, by priority rank (priority.go);
	// passed counts, by rank, the tasks of higher ones taken since that
	// rank's last (fetch).
	cons   [ranks]jetstream.Consumer
	passed [ranks]int
	owed   bool // the last task fetched was taken for its turn (MaxOvertakes)
	// pending says, by rank, that the level may hold a task; lastPoll is
	// when all were last set; higher is signalled by notePriority.
	pending  [ranks]atomic.Bool
	lastPoll time.Time
	higher   chan struct{}
	wake     chan struct{}
	// slots caps one-shots running at once; nil for a pool.
	slots chan struct{}
	// ctx ends the loop (with the engine's loops, or by stop when the
	// pool is removed); done is closed when the loop has returned.
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}
}

// place is room reserved for one task: a pool worker's place or a
// one-shot slot. Exactly one of run and release is called.
type place interface {
	run(ctx context.Context, j job, events func(host.Event)) (host.Result, error)
	release()
}

// loop runs until the engine stops or the pool is removed, taking one
// task at a time, never more than there is room for. It looks for a task
// before it takes a place: while a place is free it takes it once it has
// the task, so an idle pool's workers stay idle; while none is, it waits
// for one with the task in hand (see takeThenReserve), so that a runner
// never stands in a pool's queue (counting against its queueLimit, or
// starting a worker of a pool that sizes itself) for a task that does
// not exist. One-shots wait for a slot first. When there is no task it
// waits for a submit or the poll interval.
func (r *runner) loop() {
	defer close(r.done)
	ctx := r.ctx
	for ctx.Err() == nil {
		if r.pausedHere() { // its tasks wait (pause.go)
			r.idle(ctx)
			continue
		}
		var p place
		if !r.hasRoom() {
			if r.slots == nil {
				r.takeThenReserve(ctx)
				continue
			}
			var err error
			if p, err = r.reserve(ctx, host.Priority(host.PriorityNormal)); err != nil {
				continue // the engine stops
			}
		}
		msg, prio, err := r.fetch()
		if err != nil || msg == nil {
			if p != nil {
				p.release()
			}
			if err != nil {
				r.e.logger.Debug("fetch failed", "pool", r.pool, "error", err)
				r.e.needRepair() // the consumer may be gone with a restart of the server
			}
			r.idle(ctx)
			continue
		}
		if p == nil {
			var ok bool
			if p, ok = r.tryReserve(); !ok {
				// The free place went meanwhile (to a synchronous task,
				// say): the task goes back to the queue at once, for this
				// runner's next place or another host's.
				r.handBack(msg, prio)
				continue
			}
		}
		if r.pausedHere() { // paused between the check above and the fetch: the task waits
			p.release()
			r.handBack(msg, prio)
			continue
		}
		r.e.tasks.Go(func() { r.e.handle(msg, p) })
	}
}

// takeThenReserve takes one task off the queue of a pool with no free
// place and then waits for its place in the pool's queue, which starts a
// worker in a pool below maxWorkers; the wait is bounded by a third of
// the ack wait, after which the task is handed back for later, here or
// on another host.
func (r *runner) takeThenReserve(ctx context.Context) {
	msg, prio, err := r.fetch()
	if err != nil || msg == nil {
		if err != nil {
			r.e.logger.Debug("fetch failed", "pool", r.pool, "error", err)
			r.e.needRepair()
		}
		r.idle(ctx)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, r.e.opts.AckWait/3)
	p, err := r.reserveHolding(rctx, &msg, &prio)
	cancel()
	if err != nil {
		if ctx.Err() != nil { // the runner stops: the task goes back at once
			_ = msg.Nak()
			return
		}
		r.e.logger.Debug("no room for an asynchronous task yet; handed back", "pool", r.pool, "error", err)
		if prio.Rank() == 0 {
			// A high task keeps its turn: back at once, and every host's
			// runner told, so that one holding a lower task swaps it.
			r.handBack(msg, prio)
			r.e.wakeAllPrio(r.pool, prio)
		} else {
			_ = msg.NakWithDelay(r.e.opts.PollInterval)
		}
		r.idle(ctx)
		return
	}
	if r.pausedHere() { // paused meanwhile: the task waits with the others
		p.release()
		r.handBack(msg, prio)
		return
	}
	r.e.tasks.Go(func() { r.e.handle(msg, p) })
}

// fetchOne takes one message off cons, or returns nil when there is none;
// an error says the fetch failed (the consumer may be gone, say).
func fetchOne(cons jetstream.Consumer) (jetstream.Msg, error) {
	batch, err := cons.FetchNoWait(1)
	if err != nil {
		return nil, err
	}
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return msg, err
	}
	return msg, nil
}

// idle waits for a submit, the poll interval, or the engine's stop.
func (r *runner) idle(ctx context.Context) { idle(ctx, r.wake, r.e.opts.PollInterval) }

// idle waits for wake, for d, or for ctx to end.
func idle(ctx context.Context, wake <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-t.C:
	}
}

// hasRoom reports whether a place is free now, reserving nothing.
func (r *runner) hasRoom() bool {
	if r.slots == nil {
		return r.e.mgr.HasFreePlace(r.pool)
	}
	return len(r.slots) < cap(r.slots)
}

// tryReserve takes a free place, if there is one now.
func (r *runner) tryReserve() (place, bool) {
	if r.slots == nil {
		res, ok := r.e.mgr.TryReserve(r.pool)
		if !ok {
			return nil, false
		}
		return poolPlace{res}, true
	}
	select {
	case r.slots <- struct{}{}:
		return oneShotPlace{e: r.e, slots: r.slots}, true
	default:
		return nil, false
	}
}

// reserve waits for room for one task; prio is its place in the pool's
// queue.
func (r *runner) reserve(ctx context.Context, prio host.TaskOption) (place, error) {
	if r.slots == nil {
		res, err := r.e.mgr.Reserve(ctx, r.pool, prio)
		if err != nil {
			return nil, err
		}
		return poolPlace{res}, nil
	}
	select {
	case r.slots <- struct{}{}:
		return oneShotPlace{e: r.e, slots: r.slots}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// poolPlace is a reserved place on a pool worker.
type poolPlace struct{ res *host.Reservation }

func (p poolPlace) run(ctx context.Context, j job, events func(host.Event)) (host.Result, error) {
	return p.res.Run(ctx, j.Input, host.TaskID(j.ID), host.TaskEvents(events))
}

func (p poolPlace) release() { p.res.Release() }

// oneShotPlace is one of the one-shot runner's slots.
type oneShotPlace struct {
	e     *Engine
	slots chan struct{}
}

func (p oneShotPlace) run(ctx context.Context, j job, events func(host.Event)) (host.Result, error) {
	defer p.release()
	return p.e.mgr.RunOnce(ctx, j.Plugin, j.Input, host.RunOptions{MemoryLimitMB: j.MemoryLimitMB, Timeout: j.Timeout},
		host.TaskID(j.ID), host.TaskEvents(events))
}

func (p oneShotPlace) release() { <-p.slots }

// handle runs one task taken off the queue on p and records how it ended;
// the message is acknowledged once the end is recorded, or handed back
// for a retry.
func (e *Engine) handle(msg jetstream.Msg, p place) {
	ctx := context.Background()
	var j job
	if err := json.Unmarshal(msg.Data(), &j); err != nil || j.ID == "" {
		p.release()
		e.logger.Error("dropping a message that is no task", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	// Registered before the record says running, so that a cancel that
	// sees it running always finds the context to cancel.
	taskCtx, cancel := context.WithCancelCause(e.work)
	e.mu.Lock()
	e.running[j.ID] = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, j.ID)
		e.mu.Unlock()
		cancel(context.Canceled)
	}()
	t, rev, ok, err := e.start(ctx, j)
	if err != nil {
		p.release()
		// The record could not be read or written (NATS between leaders,
		// say): the task runs later, here or elsewhere.
		e.logger.Warn("can not start a task now; it runs later", "task", j.ID, "error", err)
		_ = msg.NakWithDelay(e.opts.PollInterval)
		return
	}
	if !ok {
		p.release()
		e.ackEnded(ctx, msg, t) // ended already: nothing to run
		return
	}
	if errors.Is(context.Cause(taskCtx), errCanceled) {
		p.release()
		e.ackRead(ctx, msg, j.ID) // canceled meanwhile
		return
	}
	stopBeat := e.heartbeat(msg)
	progress := e.watchProgress(t, rev)
	res, err := p.run(e.traceContext(taskCtx, msg), j, progress.event)
	t, rev = progress.stop()
	stopBeat()
	e.finish(ctx, msg, j, t, rev, res, err, context.Cause(taskCtx))
}

// start marks the task running and counts the attempt. ok is false when
// the task must not run: it ended, or was canceled, already. An error
// means the record could not be read or written now.
func (e *Engine) start(ctx context.Context, j job) (Task, uint64, bool, error) {
	t, rev, err := e.modify(ctx, Task{ID: j.ID}, 0, casOnce, e.startChange(j))
	if errors.Is(err, ErrUnknownTask) {
		// wpm stopped between storing the message and its record.
		switch err = e.create(ctx, j.record()); {
		case err == nil:
			e.indexTask(ctx, j.record())
		case !errors.Is(err, jetstream.ErrKeyExists):
			return Task{}, 0, false, fmt.Errorf("record task %s: %w", j.ID, err)
		}
		t, rev, err = e.modify(ctx, Task{ID: j.ID}, 0, casOnce, e.startChange(j))
	}
	switch {
	case errors.Is(err, errEndedMeanwhile):
		return t, rev, false, nil
	case err != nil:
		return Task{}, 0, false, fmt.Errorf("start task %s: %w", j.ID, err)
	}
	return t, rev, true, nil
}

// startChange is start's change of the record: running on this host, one
// more attempt (in its history too, where an attempt left open by a host
// that stopped answering is closed as lost); errEndedMeanwhile when it
// has ended.
func (e *Engine) startChange(j job) func(*Task) error {
	return func(t *Task) error {
		if t.State.Ended() {
			return errEndedMeanwhile
		}
		if t.State == StateRunning {
			e.counters.redeliveries.WithLabelValues(j.Pool).Inc()
		}
		t.State, t.StartedAt, t.Error, t.Host = StateRunning, now(), nil, e.opts.Name
		t.Attempts++
		t.startAttempt(t.Host, *t.StartedAt)
		return nil
	}
}

// heartbeat tells the server, every third of the ack wait, that the task
// still runs, so that it is not handed out again; the returned function
// stops it.
func (e *Engine) heartbeat(msg jetstream.Msg) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(e.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// finish records how an attempt ended and acknowledges the message, or
// hands it back: for a retry after the pool's back-off, or, when wpm is
// stopping, to run again at the next start.
func (e *Engine) finish(ctx context.Context, msg jetstream.Msg, j job, t Task, rev uint64, res host.Result, err error, cause error) {
	at := t // the attempt's record at rev; t becomes its end
	switch {
	case errors.Is(cause, errCanceled):
		e.ackRead(ctx, msg, j.ID) // Cancel recorded the end
		return
	case e.work.Err() != nil && err != nil:
		t.State, t.Error, t.Progress = StateQueued, errorOf(err), nil
		t.endAttempt(*now(), pidOf(res, err), CauseInterrupted, "wpm stopped while the task ran ("+t.Error.Message+"); it runs again")
		if errors.Is(e.save(ctx, at, rev, t), errStartedElsewhere) {
			e.dropStale(j)
			return
		}
		_ = msg.Nak() // handed back even when the record could not be written
		return
	case err != nil && host.Code(err) == host.CodeQueueFull:
		t.State, t.Error, t.Progress = StateQueued, errorOf(err), nil
		t.Attempts-- // it did not run
		t.dropAttempt()
		if errors.Is(e.save(ctx, at, rev, t), errStartedElsewhere) {
			e.dropStale(j)
			return
		}
		_ = msg.NakWithDelay(e.opts.PollInterval)
		return
	case err != nil && e.retry(j, t, err):
		t.State, t.Error, t.Progress = StateQueued, errorOf(err), nil
		t.endAttemptAsRecorded(*now(), pidOf(res, err))
		switch serr := e.save(ctx, at, rev, t); {
		case errors.Is(serr, errStartedElsewhere):
			e.dropStale(j)
		case serr == nil:
			e.counters.retries.WithLabelValues(j.Pool).Inc()
			_ = msg.NakWithDelay(e.backoff(j.Pool, t.Attempts))
		case errors.Is(serr, errEndedMeanwhile):
			e.ackRead(ctx, msg, j.ID)
		default:
			_ = msg.NakWithDelay(e.backoff(j.Pool, t.Attempts))
		}
		return
	}
	t.State, t.FinishedAt, t.WorkerPID, t.Error = StateSucceeded, now(), pidOf(res, err), nil
	switch {
	case err != nil:
		t.State, t.Error = StateFailed, errorOf(err)
	case !j.Forwarded && int64(len(res.Output)) > e.opts.MaxResultBytes:
		t.State = StateFailed
		t.Error = &TaskError{Code: CodeResultTooLarge, Message: fmt.Sprintf(
			"the result is %d bytes, over async.maxResultBytes (%d); return less, or raise async.maxResultBytes", len(res.Output), e.opts.MaxResultBytes)}
	case !json.Valid(res.Output):
		t.State = StateFailed
		t.Error = &TaskError{Code: host.CodeTaskFailed, Message: "the plugin answered with output that is not valid JSON; a plugin must return a JSON value"}
	default:
		t.Result = res.Output
	}
	t.endAttemptAsRecorded(*t.FinishedAt, t.WorkerPID)
	if ferr := e.fitRecord(ctx, &t); ferr != nil {
		// Not stored for now (NATS between leaders, say): the task runs
		// again rather than lose its result.
		e.logger.Warn("can not store a task's result; it runs again", "task", t.ID, "error", ferr)
		_ = msg.NakWithDelay(e.opts.PollInterval)
		return
	}
	switch serr := e.save(ctx, at, rev, t); {
	case errors.Is(serr, errStartedElsewhere):
		e.dropStale(j)
	case serr == nil:
		e.counters.ended.WithLabelValues(j.Pool, string(t.State)).Inc()
		e.ackEnded(ctx, msg, t)
	case errors.Is(serr, errEndedMeanwhile):
		e.ackRead(ctx, msg, j.ID)
	default:
		// The end could not be recorded: the task runs again rather than
		// stay "running" for ever (at least once).
		_ = msg.NakWithDelay(e.opts.PollInterval)
	}
}

// pidOf returns the worker process that ran an attempt: res's, or err's
// when it failed (0 when it never reached one).
func pidOf(res host.Result, err error) int {
	var te *host.TaskError
	if err != nil && errors.As(err, &te) {
		return te.WorkerPID
	}
	return res.WorkerPID
}

// dropStale lets go of an attempt whose task started again elsewhere: its
// message is neither acknowledged (that would end the other attempt's
// delivery) nor handed back (that would start a third).
func (e *Engine) dropStale(j job) {
	e.logger.Warn("a task this host ran was started again by another host meanwhile (this host was cut off past async.ackWait); this attempt's end is dropped", "task", j.ID, "pool", j.Pool)
}

// save writes end, the end of the attempt whose record at revision rev
// is at (or its hand-back to the queue), with the casEnd policy. It fails
// with errEndedMeanwhile when the task was canceled meanwhile, with
// errStartedElsewhere when another attempt started meanwhile (writing
// nothing in both cases), and with the last error when NATS kept
// refusing the write.
func (e *Engine) save(ctx context.Context, at Task, rev uint64, end Task) error {
	_, _, err := e.modify(ctx, at, rev, casEnd, func(cur *Task) error {
		if err := sameAttempt(cur, &at); err != nil {
			return err
		}
		*cur = end
		return nil
	})
	// A full store is logged once, by markFull.
	if err != nil && !errors.Is(err, errEndedMeanwhile) && !errors.Is(err, errStartedElsewhere) && !errors.Is(err, ErrStorageFull) {
		e.logger.Error("can not record a task's end", "task", at.ID, "error", err)
	}
	return err
}

// retry reports whether the task's pool retries after err (a retryable
// code, or task_failed when the pool says so), and has attempts left.
func (e *Engine) retry(j job, t Task, err error) bool {
	if j.Pool == "" {
		return false
	}
	r, code := e.retriesOf(j.Pool), host.Code(err)
	return (retryable[code] || r.OnTaskFailed && code == host.CodeTaskFailed) && t.Attempts <= r.Max
}

// backoff is the wait before retry n of a pool's task, with up to 20%
// jitter.
func (e *Engine) backoff(pool string, n int) time.Duration {
	d := e.retriesOf(pool).Delay(n)
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}
