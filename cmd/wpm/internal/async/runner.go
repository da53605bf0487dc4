package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wpmdev/wpm/host"
)

// runner takes the tasks of one pool, or the one-shots, off the queue and
// runs them, never more than there is room for.
type runner struct {
	e    *Engine
	pool string // "" for one-shots
	cons jetstream.Consumer
	wake chan struct{}
	// slots caps one-shots running at once; nil for a pool.
	slots chan struct{}
}

// place is room reserved for one task: a pool worker's place or a
// one-shot slot. Exactly one of run and release is called.
type place interface {
	run(ctx context.Context, j job) (host.Result, error)
	release()
}

// loop runs until the engine stops: it reserves a place, then takes one
// task if there is one; when there is none it gives the place back and
// waits for a submit or the poll interval.
func (r *runner) loop() {
	ctx := r.e.loops
	for ctx.Err() == nil {
		p, err := r.reserve(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.e.logger.Debug("no room for an asynchronous task yet", "pool", r.pool, "error", err)
				r.idle(ctx)
			}
			continue
		}
		msg := r.fetch()
		if msg == nil {
			p.release()
			r.idle(ctx)
			continue
		}
		r.e.tasks.Go(func() { r.e.handle(msg, p) })
	}
}

// fetch takes one message off the consumer, or returns nil.
func (r *runner) fetch() jetstream.Msg {
	batch, err := r.cons.FetchNoWait(1)
	if err != nil {
		r.e.logger.Debug("fetch failed", "pool", r.pool, "error", err)
		return nil
	}
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	return msg
}

// idle waits for a submit, the poll interval, or the engine's stop.
func (r *runner) idle(ctx context.Context) {
	t := time.NewTimer(r.e.opts.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-t.C:
	}
}

// reserve waits for room for one task.
func (r *runner) reserve(ctx context.Context) (place, error) {
	if r.slots == nil {
		res, err := r.e.mgr.Reserve(ctx, r.pool)
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

func (p poolPlace) run(ctx context.Context, j job) (host.Result, error) {
	return p.res.Run(host.WithTaskID(ctx, j.ID), j.Input)
}

func (p poolPlace) release() { p.res.Release() }

// oneShotPlace is one of the one-shot runner's slots.
type oneShotPlace struct {
	e     *Engine
	slots chan struct{}
}

func (p oneShotPlace) run(ctx context.Context, j job) (host.Result, error) {
	defer p.release()
	return p.e.mgr.RunOnce(host.WithTaskID(ctx, j.ID), j.Plugin, j.Input, host.RunOptions{MemoryLimitMB: j.MemoryLimitMB, Timeout: j.Timeout})
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
	t, rev, ok := e.start(ctx, j)
	if !ok || errors.Is(context.Cause(taskCtx), errCanceled) {
		p.release()
		_ = msg.Ack() // ended or cancelled already: nothing to run
		return
	}
	stopBeat := e.heartbeat(msg)
	runCtx, progress := e.watchProgress(taskCtx, t, rev)
	res, err := p.run(runCtx, j)
	t, rev = progress.stop()
	stopBeat()
	e.finish(ctx, msg, j, t, rev, res, err, context.Cause(taskCtx))
}

// start marks the task running and counts the attempt. ok is false when
// the task must not run: it ended, or was cancelled, already.
func (e *Engine) start(ctx context.Context, j job) (Task, uint64, bool) {
	for range 10 {
		t, rev, err := e.get(ctx, j.ID)
		if errors.Is(err, ErrUnknownTask) {
			// wpm stopped between storing the message and its record.
			if err := e.create(ctx, j.record()); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
				e.logger.Error("can not record a task", "task", j.ID, "error", err)
				return Task{}, 0, false
			}
			continue
		}
		if err != nil {
			e.logger.Error("can not read a task's record", "task", j.ID, "error", err)
			return Task{}, 0, false
		}
		if t.State.Ended() {
			return t, rev, false
		}
		if t.State == StateRunning {
			e.counters.redeliveries.WithLabelValues(j.Pool).Inc()
		}
		t.State, t.StartedAt, t.Error, t.Host = StateRunning, now(), nil, e.opts.Name
		t.Attempts++
		b, _ := json.Marshal(t)
		next, err := e.kv.Update(ctx, t.ID, b, rev)
		if err == nil {
			return t, next, true
		}
	}
	return Task{}, 0, false
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
	switch {
	case errors.Is(cause, errCanceled):
		_ = msg.Ack() // Cancel recorded the end
		return
	case e.work.Err() != nil && err != nil:
		t.State, t.Error, t.Progress = StateQueued, errorOf(err), nil
		e.save(ctx, t, rev)
		_ = msg.Nak()
		return
	case err != nil && host.Code(err) == host.CodeQueueFull:
		t.State, t.Error, t.Progress = StateQueued, errorOf(err), nil
		t.Attempts-- // it did not run
		e.save(ctx, t, rev)
		_ = msg.NakWithDelay(e.opts.PollInterval)
		return
	case err != nil && e.retry(j, t, err):
		t.State, t.Error, t.Progress = StateQueued, errorOf(err), nil
		if e.save(ctx, t, rev) {
			e.counters.retries.WithLabelValues(j.Pool).Inc()
			_ = msg.NakWithDelay(e.backoff(j.Pool, t.Attempts))
			return
		}
		_ = msg.Ack() // cancelled meanwhile
		return
	}
	t.State, t.FinishedAt, t.WorkerPID, t.Error = StateSucceeded, now(), res.WorkerPID, nil
	switch {
	case err != nil:
		t.State, t.Error = StateFailed, errorOf(err)
		var te *host.TaskError
		if errors.As(err, &te) {
			t.WorkerPID = te.WorkerPID
		}
	case int64(len(res.Output)) > e.opts.MaxResultBytes:
		t.State = StateFailed
		t.Error = &TaskError{Code: CodeResultTooLarge, Message: fmt.Sprintf(
			"the result is %d bytes, over async.maxResultBytes (%d); return less, or raise async.maxResultBytes", len(res.Output), e.opts.MaxResultBytes)}
	case !json.Valid(res.Output):
		t.State = StateFailed
		t.Error = &TaskError{Code: host.CodeTaskFailed, Message: "the plugin answered with output that is not valid JSON; a plugin must return a JSON value"}
	default:
		t.Result = res.Output
	}
	if e.save(ctx, t, rev) {
		e.counters.ended.WithLabelValues(j.Pool, string(t.State)).Inc()
		e.notify(t)
	}
	_ = msg.Ack()
}

// save writes t at revision rev; it reports false, writing nothing, when
// the task was cancelled meanwhile.
func (e *Engine) save(ctx context.Context, t Task, rev uint64) bool {
	for range 10 {
		err := e.update(ctx, t, rev)
		if err == nil {
			return true
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			e.logger.Error("can not record a task's end", "task", t.ID, "error", err)
			return false
		}
		cur, next, gerr := e.get(ctx, t.ID)
		if gerr != nil || cur.State.Ended() {
			return false
		}
		rev = next
	}
	return false
}

// retry reports whether the task's pool retries after err (a retryable
// code, or task_failed when the pool says so), and has attempts left.
func (e *Engine) retry(j job, t Task, err error) bool {
	if j.Pool == "" {
		return false
	}
	p, perr := e.mgr.Pool(j.Pool)
	if perr != nil {
		return false
	}
	r, code := p.Config.Retries, host.Code(err)
	return (retryable[code] || r.OnTaskFailed && code == host.CodeTaskFailed) && t.Attempts <= r.Max
}

// backoff is the wait before retry n of a pool's task, with up to 20%
// jitter.
func (e *Engine) backoff(pool string, n int) time.Duration {
	var r host.Retries
	if p, err := e.mgr.Pool(pool); err == nil {
		r = p.Config.Retries
	}
	d := r.Delay(n)
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}
