package host

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

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
	prio   int // TaskPriority.Rank; 0 is high, so unset means normal (see newTaskOptions)
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
	if len(opts) == 0 {
		return taskOptions{id: randid.New(), prio: normalRank} // no allocation of its own
	}
	o := &taskOptions{prio: normalRank}
	for _, opt := range opts {
		opt(o)
	}
	if o.id == "" {
		o.id = randid.New()
	}
	return *o
}

// taskBook is the bookkeeping of one task, whichever way it runs (on a
// pool's worker, a reserved worker or a one-shot process): begun before
// the task looks for a worker, ended with how it went. A value, so that
// it costs no allocation.
type taskBook struct {
	m            *Manager
	o            taskOptions
	pool, plugin string // pool is empty for a one-shot
	start        time.Time
	tr           *tracker
	span         trace.Span // the attempt's; nil when the manager traces nothing
}

// beginTask reports the task queued and returns its bookkeeping and ctx
// carrying what its worker reports to.
func (m *Manager) beginTask(ctx context.Context, o taskOptions, pool, plugin string) (taskBook, context.Context) {
	b := taskBook{m: m, o: o, pool: pool, plugin: plugin, start: time.Now()}
	ctx, b.span = m.startAttempt(ctx, o.id, pool, plugin)
	ctx, b.tr = m.track(ctx, o, pool, plugin)
	return b, ctx
}

// end tells the observer and the task's events how it ended (its output,
// its worker's pid or 0, how long it waited for a worker, its error), and
// makes its Result or *TaskError.
func (b taskBook) end(out []byte, pid int, wait time.Duration, err error) (Result, error) {
	b.m.finished(b.pool, b.plugin, b.start, wait, err)
	b.tr.finished(pid, time.Since(b.start), err)
	b.endAttempt(pid, wait, err)
	if err != nil {
		return Result{}, taskError(b.o.id, b.pool, b.plugin, pid, err)
	}
	return Result{TaskID: b.o.id, Pool: b.pool, Plugin: b.plugin, WorkerPID: pid, Output: out, Duration: time.Since(b.start)}, nil
}
