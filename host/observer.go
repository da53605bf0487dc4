package host

import "time"

// Observer receives the manager's events, for metrics. Its methods are
// called on the task path: they must be quick and safe for concurrent use.
type Observer interface {
	// TaskFinished is called once for every task that reached a known pool
	// or plugin and was admitted; tasks refused before that (unknown pool
	// or plugin, a failed checksum, shutting down) are not reported, so
	// that a caller's made-up names never become metric labels.
	TaskFinished(TaskEvent)
	// WorkerReplaced is called when a pool's worker went and another takes
	// its place; reason is "exited", "recycled", "start_failed",
	// "unhealthy" or the code of the error that got it killed (for example
	// "task_timeout"): a [Cause]'s name.
	WorkerReplaced(pool, plugin, reason string)
}

// TaskEvent describes a finished task.
type TaskEvent struct {
	// Pool is empty for a one-shot.
	Pool   string
	Plugin string
	// Code is "ok" or the error's code (see [Code]).
	Code string
	// QueueWait is how long the task waited for a worker or a one-shot place.
	QueueWait time.Duration
	// Duration is the time from acceptance to answer.
	Duration time.Duration
}

// WithObserver sends the manager's events to o.
func WithObserver(o Observer) Option {
	return func(m *Manager) { m.observer = o }
}

// nopObserver is the default Observer.
type nopObserver struct{}

func (nopObserver) TaskFinished(TaskEvent)                {}
func (nopObserver) WorkerReplaced(string, string, string) {}
