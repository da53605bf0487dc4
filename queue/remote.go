package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/host"
)

// livenessCheck is how often a forwarded task's caller checks that the
// host running it still heartbeats.
const livenessCheck = time.Second

// RunRemote runs a synchronous task through the queue, for a pool or a
// plugin this host does not run: it stores the task as an asynchronous one,
// which a host with a free place takes, and waits for its end. The wait is
// bounded by ctx and by the pool's taskTimeout as its hosts announce it
// (timeout, when not 0, for a one-shot). When the host running the task
// stops heartbeating, RunRemote cancels the task and fails with
// host.ErrWorkerCrashed; when ctx ends first, it cancels the task and
// returns ctx's error. The returned record is the task's last.
func (e *Engine) RunRemote(ctx context.Context, req Request) (Task, error) {
	ctx, span := e.startSpan(ctx, SpanForward, trace.SpanKindClient, req.Pool, req.Plugin)
	t, err := e.runRemote(ctx, req)
	if t.Host != "" {
		span.SetAttributes(attrHost.String(t.Host))
	}
	endSpan(span, t.ID, err)
	return t, err
}

// attrHost names the host that ran a forwarded task.
const attrHost = attribute.Key("wpm.host")

// runRemote is RunRemote within its span.
func (e *Engine) runRemote(ctx context.Context, req Request) (Task, error) {
	if err := e.refusePaused(req.Pool); err != nil {
		return Task{}, err
	}
	limit := req.Run.Timeout
	if req.Pool != "" {
		if hp, ok := e.remotePool(req.Pool); ok && hp.TaskTimeoutMs > 0 {
			limit = time.Duration(hp.TaskTimeoutMs) * time.Millisecond
		}
	}
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, limit, fmt.Errorf("%w: the task ran past its timeout (%s) on another host", host.ErrTimeout, limit))
		defer cancel()
	}
	req.forwarded = true
	t, err := e.Submit(ctx, req)
	if err != nil {
		return Task{}, err
	}
	// A host that joined less than hostTTL ago may not be in this host's
	// view yet: only a task running longer than that counts.
	hostGone := func(t Task) bool {
		return t.State == StateRunning && t.Host != "" && t.StartedAt != nil &&
			time.Since(*t.StartedAt) > hostTTL && !e.hostLive(t.Host)
	}
	t, err = e.follow(ctx, t.ID, livenessCheck, hostGone)
	switch {
	case err != nil:
		return t, err
	case t.State.Ended():
		t, err = e.withResult(ctx, t)
		return t, e.unavailable(err)
	case ctx.Err() != nil:
		e.abandon(t.ID, "the task was canceled: its caller on host "+e.opts.Name+" left, or its timeout passed", CauseCanceled)
		return t, context.Cause(ctx)
	}
	e.abandon(t.ID, "the task was canceled: host "+t.Host+" running it stopped answering, and its caller on host "+e.opts.Name+" gave up", CauseLost)
	return t, fmt.Errorf("%w: %w: host %s went while running the task", host.ErrWorkerCrashed, errNoHost, t.Host)
}

// abandon cancels a forwarded task nobody waits for any more, so that it
// does not run again after a redelivery; why is its error's message, and
// its running attempt's, which ends with cause.
func (e *Engine) abandon(id, why, cause string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := e.cancel(ctx, id, why, cause); err != nil && !errors.Is(err, ErrTaskEnded) {
		e.logger.Warn("can not cancel an abandoned forwarded task", "task", id, "why", why, "error", err)
	}
}
