package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/wpmdev/wpm/shared"
)

// Sentinel errors returned by the [Manager]. Match them with [errors.Is].
// A task's own errors match [shared.ErrInvalidInput] or [shared.ErrTaskFailed].
var (
	// ErrUnknownPool means no pool has the requested name.
	ErrUnknownPool = errors.New("unknown pool")
	// ErrUnknownPlugin means the plugins directory holds no such plugin.
	ErrUnknownPlugin = errors.New("unknown plugin")
	// ErrQueueFull means the pool's queue, or the one-shot capacity, is
	// exhausted; the caller should retry later.
	ErrQueueFull = errors.New("queue full")
	// ErrWorkerCrashed means the worker process died while running the task,
	// or could not be started.
	ErrWorkerCrashed = errors.New("worker crashed")
	// ErrMemoryLimit means the worker went over its memory limit and was
	// stopped.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrTimeout means the task ran past its timeout, counted from when it
	// was accepted.
	ErrTimeout = errors.New("task timed out")
	// ErrShuttingDown means the manager is shutting down and takes no tasks.
	ErrShuttingDown = errors.New("shutting down")
)

// startFailure is a worker's failure to start. It matches
// ErrWorkerCrashed (code worker_crashed) and says the worker never
// started, and why.
type startFailure struct{ err error }

func (e *startFailure) Error() string   { return "the worker could not start: " + e.err.Error() }
func (e *startFailure) Unwrap() []error { return []error{ErrWorkerCrashed, e.err} }

// TaskError is the error Submit and RunOnce return once a task has been
// given an ID. It wraps the cause, which matches one of the sentinels.
type TaskError struct {
	// TaskID is the ID the task was given.
	TaskID string
	// Pool or Plugin names where the task ran.
	Pool, Plugin string
	// WorkerPID is the worker's pid, 0 if the task never reached one.
	WorkerPID int
	// Detail holds what the worker last wrote to stderr when it died.
	Detail string
	// Err is the cause.
	Err error
}

// Error describes the failure with its task ID.
func (e *TaskError) Error() string {
	return fmt.Sprintf("task %s: %v", e.TaskID, e.Err)
}

// Unwrap returns the cause.
func (e *TaskError) Unwrap() error { return e.Err }

// ErrorCode is an error's code, as sent in wpm's API (its JSON value is
// the string). [Code] maps an error to one.
type ErrorCode string

// Error codes, as sent in wpm's API. [Code] maps an error to one of them.
const (
	CodeInvalidTask   ErrorCode = "invalid_task"
	CodeUnknownPool   ErrorCode = "unknown_pool"
	CodeUnknownPlugin ErrorCode = "unknown_plugin"
	CodeQueueFull     ErrorCode = "queue_full"
	CodeTaskFailed    ErrorCode = "task_failed"
	CodeWorkerCrashed ErrorCode = "worker_crashed"
	CodeMemoryLimit   ErrorCode = "memory_limit_exceeded"
	CodeShuttingDown  ErrorCode = "shutting_down"
	CodeTaskTimeout   ErrorCode = "task_timeout"
	CodeCanceled      ErrorCode = "canceled"
	CodeInternal      ErrorCode = "internal"
)

// codes maps each sentinel to its code, in the order they are checked.
var codes = []struct {
	err  error
	code ErrorCode
}{
	{ErrUnknownPool, CodeUnknownPool},
	{ErrUnknownPlugin, CodeUnknownPlugin},
	{ErrQueueFull, CodeQueueFull},
	{ErrShuttingDown, CodeShuttingDown},
	{ErrPoolPaused, CodePoolPaused},
	{ErrTimeout, CodeTaskTimeout},
	{ErrMemoryLimit, CodeMemoryLimit},
	{ErrWorkerCrashed, CodeWorkerCrashed},
	{shared.ErrInvalidInput, CodeInvalidTask},
	{shared.ErrTaskFailed, CodeTaskFailed},
	{context.Canceled, CodeCanceled},
}

// Code returns the API error code for err: one of the Code constants, or
// CodeInternal for an error this package did not make. The code of a nil
// error (no error) is "".
func Code(err error) ErrorCode {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}
