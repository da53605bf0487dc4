package host

import (
	"context"
	"time"
)

// EventType names what an [Event] reports. Its values are used as they are
// in logs and in wpm's event stream.
type EventType string

// The events a Manager reports to the sink given with [WithEvents].
const (
	// EventTaskQueued: a task was admitted to a pool or a one-shot run.
	EventTaskQueued EventType = "task.queued"
	// EventTaskStarted: a worker (PID) took the task.
	EventTaskStarted EventType = "task.started"
	// EventTaskProgress: the plugin reported progress (Fraction, Message).
	EventTaskProgress EventType = "task.progress"
	// EventTaskFinished: the task answered; Code is "ok" or the error's code.
	EventTaskFinished EventType = "task.finished"
	// EventWorkerStarted: a worker (Slot, PID) takes tasks now: a pool's,
	// or with no Pool a one-shot's or a warm spare's process. Reason is
	// "scaled_up" for the first worker of a slot a pool added for waiting
	// tasks, and empty otherwise.
	EventWorkerStarted EventType = "worker.started"
	// EventWorkerExited: a worker went, for Reason (a one-shot's process
	// after its task: "recycled"; an idle worker a pool stopped above its
	// MinWorkers: "scaled_down").
	EventWorkerExited EventType = "worker.exited"
	// EventWorkerReplaced: a pool's slot starts another worker after one
	// went for Reason.
	EventWorkerReplaced EventType = "worker.replaced"
	// EventPoolReloaded: a reload applied a new set of pools; Message
	// counts them.
	EventPoolReloaded EventType = "pool.reloaded"
)

// Event is one thing that happened in a Manager. Fields that do not apply
// to its Type are zero.
type Event struct {
	Type EventType
	Time time.Time
	// TaskID is set on task events.
	TaskID string
	// Pool is empty for one-shots.
	Pool   string
	Plugin string
	// Slot and PID identify a worker.
	Slot int
	PID  int
	// Code is "ok" or the error's code (see [Code]), on task.finished.
	Code string
	// Error is the error's message on a task.finished that failed.
	Error string
	// Duration is the time from acceptance to answer, on task.finished.
	Duration time.Duration
	// Fraction (0..1) and Message are a task.progress report.
	Fraction float64
	Message  string
	// Reason says why a worker went: "exited", "recycled", "start_failed",
	// "unhealthy", "scaled_down", "stopped" or an error's code; on
	// worker.started, "scaled_up" for a worker started for waiting tasks.
	// It is a [Cause]'s name.
	Reason string
}

// WithEvents sends every [Event] to sink. sink is called on the task path
// and by worker actors, from many goroutines at once: it must be quick,
// never block, and be safe for concurrent use.
func WithEvents(sink func(Event)) Option {
	return func(m *Manager) { m.events = sink }
}

// taskIDKey is the context key of the running task's id, which track puts
// there for the workers that send it (gRPC plugins, Node.js scripts).
type taskIDKey struct{}

// emit stamps e and hands it to the manager's sink, if any.
func (m *Manager) emit(e Event) {
	if m.events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	m.events(e)
}

// eventScope is what a pool's slots need to report worker events: the
// pool's names and the manager's sink. It travels in the pool's context,
// so that the pool's own code need not carry it.
type eventScope struct {
	pool, plugin string
	emit         func(Event)
}

type eventScopeKey struct{}

// withEventScope returns ctx carrying the event scope of pool pc.
func (m *Manager) withEventScope(ctx context.Context, pc PoolConfig) context.Context {
	if m.events == nil {
		return ctx
	}
	return context.WithValue(ctx, eventScopeKey{}, &eventScope{pool: pc.Name, plugin: pc.Plugin, emit: m.emit})
}

// withPlugin returns ctx with its event scope, if any, narrowed to plugin
// (a one-shot's: its scope has no pool).
func withPlugin(ctx context.Context, plugin string) context.Context {
	sc, ok := ctx.Value(eventScopeKey{}).(*eventScope)
	if !ok {
		return ctx
	}
	return context.WithValue(ctx, eventScopeKey{}, &eventScope{pool: sc.pool, plugin: plugin, emit: sc.emit})
}

// workerEvent reports a worker event of the slot whose context is ctx, if
// it belongs to a pool whose manager has a sink.
func workerEvent(ctx context.Context, t EventType, slot, pid int, reason Cause) {
	sc, ok := ctx.Value(eventScopeKey{}).(*eventScope)
	if !ok {
		return
	}
	sc.emit(Event{Type: t, Pool: sc.pool, Plugin: sc.plugin, Slot: slot, PID: pid, Reason: reason.String()})
}
