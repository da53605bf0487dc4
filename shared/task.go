package shared

import (
	"context"
	"errors"
	"fmt"
)

// Task is one kind of work a plugin performs. Input and output are JSON
// documents that the host treats as opaque bytes.
//
// Run must respect ctx: its deadline is the time the host will wait before it
// kills the worker. Run is called from one goroutine per task; a plugin whose
// pool allows more than one task per worker must make Run safe for concurrent
// use.
type Task interface {
	Run(ctx context.Context, input []byte) ([]byte, error)
}

// TaskFunc adapts an ordinary function to the [Task] interface.
type TaskFunc func(ctx context.Context, input []byte) ([]byte, error)

// Run calls f(ctx, input).
func (f TaskFunc) Run(ctx context.Context, input []byte) ([]byte, error) { return f(ctx, input) }

// Sentinel errors that identify what kind of failure a task reported.
// Match them with [errors.Is]; never compare messages.
var (
	// ErrInvalidInput marks a task error caused by its input: the caller's
	// fault, answered by wpm's HTTP API as 400 invalid_task.
	ErrInvalidInput = errors.New("invalid input")
	// ErrTaskFailed marks every other error a task returned, including a
	// recovered panic.
	ErrTaskFailed = errors.New("task failed")
	// ErrTransport marks a failure of the connection to the plugin process:
	// the worker died or the connection broke before a reply arrived.
	ErrTransport = errors.New("plugin transport failed")
)

// ErrorKind says which sentinel a [WireError] matches.
type ErrorKind uint8

// The kinds of task error.
const (
	// KindFailed is any failure that is not the caller's fault.
	KindFailed ErrorKind = iota
	// KindInvalidInput is a failure caused by the task's input.
	KindInvalidInput
)

// WireError is an error reported by a task, as it crosses the wire (the
// host wraps what it gets in its own host.TaskError, with the task id). It
// matches [ErrInvalidInput] or [ErrTaskFailed] according to its Kind.
type WireError struct {
	Kind    ErrorKind
	Message string
}

// Error returns the task's message.
func (e *WireError) Error() string { return e.Message }

// Is reports whether e is of the kind target names.
func (e *WireError) Is(target error) bool {
	switch target {
	case ErrInvalidInput:
		return e.Kind == KindInvalidInput
	case ErrTaskFailed:
		return e.Kind == KindFailed
	}
	return false
}

// InvalidInput returns an error that tells the caller its input was wrong.
// The message should say what to change.
func InvalidInput(format string, args ...any) error {
	return &WireError{Kind: KindInvalidInput, Message: fmt.Sprintf(format, args...)}
}

// toWireError turns any error returned by a task into its wire form.
func toWireError(err error) *WireError {
	var te *WireError
	if errors.As(err, &te) {
		return &WireError{Kind: te.Kind, Message: err.Error()}
	}
	kind := KindFailed
	if errors.Is(err, ErrInvalidInput) {
		kind = KindInvalidInput
	}
	return &WireError{Kind: kind, Message: err.Error()}
}
