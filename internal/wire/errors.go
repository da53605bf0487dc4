package wire

import (
	"context"
	"errors"
)

// Task is what the wire runs on the plugin side and what the host-side
// clients implement. It has the method set of shared.Task, so a value of
// either interface is a value of the other.
type Task interface {
	Run(ctx context.Context, input []byte) ([]byte, error)
}

// Sentinel errors that identify what kind of failure a task reported.
// shared exports the first two to plugin authors as shared.ErrInvalidInput
// and shared.ErrTaskFailed (the same values). Match them with [errors.Is];
// never compare messages.
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
	// ErrNotSent is returned by [RPCClient.Run], with ctx's error, when
	// ctx's deadline had passed before the task was sent: the plugin never
	// saw it, so the worker is still usable.
	ErrNotSent = errors.New("task not sent: its deadline had passed")
)

// ErrorKind says which sentinel an [Error] matches.
type ErrorKind uint8

// The kinds of task error.
const (
	// KindFailed is any failure that is not the caller's fault.
	KindFailed ErrorKind = iota
	// KindInvalidInput is a failure caused by the task's input.
	KindInvalidInput
)

// Error is an error reported by a task, as it crosses the wire (the host
// wraps what it gets in its own host.TaskError, with the task id). It
// matches [ErrInvalidInput] or [ErrTaskFailed] according to its Kind.
type Error struct {
	Kind    ErrorKind
	Message string
}

// Error returns the task's message.
func (e *Error) Error() string { return e.Message }

// Is reports whether e is of the kind target names.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalidInput:
		return e.Kind == KindInvalidInput
	case ErrTaskFailed:
		return e.Kind == KindFailed
	}
	return false
}

// toWireError turns any error returned by a task into its wire form.
func toWireError(err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		return &Error{Kind: te.Kind, Message: err.Error()}
	}
	kind := KindFailed
	if errors.Is(err, ErrInvalidInput) {
		kind = KindInvalidInput
	}
	return &Error{Kind: kind, Message: err.Error()}
}
