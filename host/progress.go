package host

import (
	"context"
	"time"

	"github.com/wpmdev/wpm/internal/wire"
)

// tracker reports the events of one task: to the manager's sink and to
// the caller's own function given with [TaskEvents]. A nil *tracker
// reports nothing.
type tracker struct {
	m    *Manager
	base Event // TaskID, Pool, Plugin
	own  func(Event)
}

type trackerKey struct{}

// track makes the tracker of the task o names on pool (empty for a
// one-shot) and plugin, reports it queued, and returns ctx carrying it: the
// worker process that takes the task reports it started (taskStarted), and
// the plugin's progress reports reach it through the SDK
// (wire.WithProgressFunc). The returned ctx always carries the task's id,
// for the workers that send it (gRPC plugins, Node.js scripts); with nobody
// listening the tracker is nil.
func (m *Manager) track(ctx context.Context, o taskOptions, pool, plugin string) (context.Context, *tracker) {
	ctx = context.WithValue(ctx, taskIDKey{}, o.id)
	if m.events == nil && o.events == nil {
		return ctx, nil
	}
	t := &tracker{m: m, base: Event{TaskID: o.id, Pool: pool, Plugin: plugin}, own: o.events}
	t.emit(Event{Type: EventTaskQueued})
	ctx = context.WithValue(ctx, trackerKey{}, t)
	return wire.WithProgressFunc(ctx, t.progress), t
}

// emit fills e with the task's identity and reports it.
func (t *tracker) emit(e Event) {
	if t == nil {
		return
	}
	e.TaskID, e.Pool, e.Plugin = t.base.TaskID, t.base.Pool, t.base.Plugin
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	t.m.emit(e)
	if t.own != nil {
		t.own(e)
	}
}

// progress reports the plugin's progress report. A plugin may not use
// wpm's SDK, so the report is checked here: a fraction that is no number
// is dropped, others are clamped to 0..1, and the message is cut to
// wire.MaxProgressMessage bytes of valid UTF-8.
func (t *tracker) progress(fraction float64, msg string) {
	fraction, msg, ok := wire.CleanProgress(fraction, msg)
	if ok {
		t.emit(Event{Type: EventTaskProgress, Fraction: fraction, Message: msg})
	}
}

// finished reports how the task ended.
func (t *tracker) finished(pid int, d time.Duration, err error) {
	if t == nil {
		return
	}
	e := Event{Type: EventTaskFinished, PID: pid, Code: "ok", Duration: d}
	if err != nil {
		e.Code, e.Error = string(Code(err)), err.Error()
	}
	t.emit(e)
}

// taskStarted reports that the worker process pid took the task whose
// context is ctx. Processes call it as they send the task.
func taskStarted(ctx context.Context, pid int) {
	if t, ok := ctx.Value(trackerKey{}).(*tracker); ok {
		t.emit(Event{Type: EventTaskStarted, PID: pid})
	}
}
