package queue

import (
	"errors"

	"github.com/wpmdev/wpm/host"
)

// Error codes this package adds to the API's table (host's are the rest).
const (
	// CodeUnknownTask: no task has that id (or its record expired).
	CodeUnknownTask host.ErrorCode = "unknown_task"
	// CodeTaskEnded: the task ended already and can not be canceled.
	CodeTaskEnded host.ErrorCode = "task_ended"
	// CodeIdempotencyKeyReused: an idempotency key came back with another
	// request than the one it was first used for.
	CodeIdempotencyKeyReused host.ErrorCode = "idempotency_key_reused"
	// CodeResultTooLarge: a task's result was over async.maxResultBytes.
	CodeResultTooLarge host.ErrorCode = "result_too_large"
	// CodeUnknownSchedule: no schedule has that name.
	CodeUnknownSchedule host.ErrorCode = "unknown_schedule"
	// CodeScheduleExists: a schedule of that name exists already.
	CodeScheduleExists host.ErrorCode = "schedule_exists"
)

// Sentinel errors; match them with [errors.Is].
var (
	// ErrUnknownTask means no task has the id, or its record expired.
	ErrUnknownTask = errors.New("unknown task")
	// ErrTaskEnded means the task ended already.
	ErrTaskEnded = errors.New("task ended")
	// ErrTooLarge means a task's input is larger than the queue takes.
	ErrTooLarge = errors.New("task too large")
	// ErrKeyReused means an idempotency key was used for another request
	// within the dedup window.
	ErrKeyReused = errors.New("idempotency key reused for another request")
	// ErrUnavailable means NATS can not be reached now.
	ErrUnavailable = errors.New("task queue unavailable")
	// ErrUnknownSchedule means no schedule has the name.
	ErrUnknownSchedule = errors.New("unknown schedule")
	// ErrScheduleExists means a schedule of the name exists already.
	ErrScheduleExists = errors.New("schedule exists")
	// ErrBadSchedule means a schedule's field is wrong; the message names it.
	ErrBadSchedule = errors.New("bad schedule")
)

// retryable lists the codes after which a pool's retries apply.
var retryable = map[host.ErrorCode]bool{
	host.CodeWorkerCrashed: true,
	host.CodeMemoryLimit:   true,
	host.CodeTaskTimeout:   true,
}
