package host

import (
	"context"
	"time"

	"github.com/wpmdev/wpm/internal/randid"
)

// TaskOption sets how one task of [Manager.Submit], [Manager.RunOnce] or
// [Reservation.Run] is named and reported. The context carries only the
// task's deadline and cancellation.
type TaskOption func(*taskOptions)

// taskOptions are the options of one task.
type taskOptions struct {
	id     string
	events func(Event)
}

// TaskID gives the task id instead of a new random one: in its [Result],
// its [*TaskError] and its events. A queue consumer passes its own task's
// id, so that both name the task alike. The manager does not check that
// ids are unique.
func TaskID(id string) TaskOption { return func(o *taskOptions) { o.id = id } }

// TaskEvents makes the manager call fn with each event of this one task
// (queued, started, progress, finished), besides the sink of
// [WithEvents]. fn has the same duties as that sink.
func TaskEvents(fn func(Event)) TaskOption { return func(o *taskOptions) { o.events = fn } }

// newTaskOptions applies opts, giving the task a random id when none is
// set.
func newTaskOptions(opts []TaskOption) taskOptions {
	var o taskOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.id == "" {
		o.id = randid.New()
	}
	return o
}

// taskRun is what runs one task, once its bookkeeping is set up: on a
// pool's worker, a reserved worker or a one-shot process. It returns the
// output, the worker's pid (0 if none took it) and how long the task
// waited for a worker.
type taskRun func(ctx context.Context) (out []byte, pid int, wait time.Duration, err error)

// runTask is the one bookkeeping of a task, whichever way it runs: it
// reports the task queued, runs it, tells the observer and the task's
// events how it ended, and makes its Result or *TaskError. pool is empty
// for a one-shot.
func (m *Manager) runTask(ctx context.Context, o taskOptions, pool, plugin string, run taskRun) (Result, error) {
	start := time.Now()
	ctx, tr := m.track(ctx, o, pool, plugin)
	out, pid, wait, err := run(ctx)
	m.finished(pool, plugin, start, wait, err)
	tr.finished(pid, time.Since(start), err)
	if err != nil {
		return Result{}, taskError(o.id, pool, plugin, pid, err)
	}
	return Result{TaskID: o.id, Pool: pool, Plugin: plugin, WorkerPID: pid, Output: out, Duration: time.Since(start)}, nil
}
