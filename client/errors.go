package client

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Code is an error code of the API (SPEC §3), as in an error answer's
// error.code and an asynchronous task's error.code.
type Code string

// The API's error codes.
const (
	CodeBadRequest           Code = "bad_request"
	CodeInvalidTask          Code = "invalid_task"
	CodeUnknownPool          Code = "unknown_pool"
	CodeUnknownPlugin        Code = "unknown_plugin"
	CodeBodyTooLarge         Code = "body_too_large"
	CodeQueueFull            Code = "queue_full"
	CodeTaskFailed           Code = "task_failed"
	CodeWorkerCrashed        Code = "worker_crashed"
	CodeMemoryLimitExceeded  Code = "memory_limit_exceeded"
	CodeShuttingDown         Code = "shutting_down"
	CodeTaskTimeout          Code = "task_timeout"
	CodeUnauthorized         Code = "unauthorized"
	CodeNotFound             Code = "not_found"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeNotReady             Code = "not_ready"
	CodeInvalidConfig        Code = "invalid_config"
	CodeCanceled             Code = "canceled"
	CodeInternal             Code = "internal"
	CodeOverloaded           Code = "overloaded"
	CodeUnknownTask          Code = "unknown_task"
	CodeTaskEnded            Code = "task_ended"
	CodeAsyncUnavailable     Code = "async_unavailable"
	CodeResultTooLarge       Code = "result_too_large"
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	CodeStorageFull          Code = "storage_full"
	CodeUnknownSchedule      Code = "unknown_schedule"
	CodeScheduleExists       Code = "schedule_exists"
	CodePoolPaused           Code = "pool_paused"
	CodeTaskNotEnded         Code = "task_not_ended"
	CodeTaskNotRetryable     Code = "task_not_retryable"
)

// Sentinels to compare an error with [errors.Is]: an [*Error] is one of
// them when its Code is theirs.
var (
	ErrBadRequest           = &Error{Code: CodeBadRequest}
	ErrInvalidTask          = &Error{Code: CodeInvalidTask}
	ErrUnknownPool          = &Error{Code: CodeUnknownPool}
	ErrUnknownPlugin        = &Error{Code: CodeUnknownPlugin}
	ErrBodyTooLarge         = &Error{Code: CodeBodyTooLarge}
	ErrQueueFull            = &Error{Code: CodeQueueFull}
	ErrTaskFailed           = &Error{Code: CodeTaskFailed}
	ErrWorkerCrashed        = &Error{Code: CodeWorkerCrashed}
	ErrMemoryLimitExceeded  = &Error{Code: CodeMemoryLimitExceeded}
	ErrShuttingDown         = &Error{Code: CodeShuttingDown}
	ErrTaskTimeout          = &Error{Code: CodeTaskTimeout}
	ErrUnauthorized         = &Error{Code: CodeUnauthorized}
	ErrNotFound             = &Error{Code: CodeNotFound}
	ErrNotReady             = &Error{Code: CodeNotReady}
	ErrInvalidConfig        = &Error{Code: CodeInvalidConfig}
	ErrCanceled             = &Error{Code: CodeCanceled}
	ErrInternal             = &Error{Code: CodeInternal}
	ErrOverloaded           = &Error{Code: CodeOverloaded}
	ErrUnknownTask          = &Error{Code: CodeUnknownTask}
	ErrTaskEnded            = &Error{Code: CodeTaskEnded}
	ErrAsyncUnavailable     = &Error{Code: CodeAsyncUnavailable}
	ErrResultTooLarge       = &Error{Code: CodeResultTooLarge}
	ErrIdempotencyKeyReused = &Error{Code: CodeIdempotencyKeyReused}
	ErrStorageFull          = &Error{Code: CodeStorageFull}
	ErrUnknownSchedule      = &Error{Code: CodeUnknownSchedule}
	ErrScheduleExists       = &Error{Code: CodeScheduleExists}
	ErrPoolPaused           = &Error{Code: CodePoolPaused}
	ErrTaskNotEnded         = &Error{Code: CodeTaskNotEnded}
	ErrTaskNotRetryable     = &Error{Code: CodeTaskNotRetryable}
)

// Error is an error answer of the API, or the error an asynchronous task
// ended with ([Task.Err]).
type Error struct {
	// StatusCode is the answer's HTTP status; 0 for a task's error.
	StatusCode int
	// Code is the API's error code; for an answer that is not the API's
	// error shape (a proxy's, say), it is empty.
	Code Code
	// Message says what happened and what to do.
	Message string
	// Detail holds a dead worker's last stderr lines, when there are some.
	Detail string
	// TaskID is the task's id, when the server made a task.
	TaskID string
	// RetryAfter is the answer's Retry-After; 0 when it had none.
	RetryAfter time.Duration
	// Method and URL are the request's; empty for a task's error.
	Method, URL string

	hasRetryAfter bool
	body          []byte // the answer's body
}

// Error reads like "GET http://h/v1/pools/X: 404 unknown_pool: no pool…",
// or "unknown_pool: …" for a task's error.
func (e *Error) Error() string {
	var s string
	if e.Method != "" {
		s = e.Method + " " + e.URL + ": "
	}
	if e.StatusCode != 0 {
		s += strconv.Itoa(e.StatusCode) + " "
	}
	if e.Code == "" {
		return s + http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("%s%s: %s", s, e.Code, e.Message)
}

// Is reports whether target is an [*Error] with the same Code, such as
// one of the ErrXxx sentinels.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// parseRetryAfter reads a Retry-After header, in seconds or as an HTTP
// date; ok is false when it is absent or unreadable.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
