package shared

import (
	"context"
	"fmt"

	"github.com/wpmdev/wpm/internal/wire"
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

// Sentinel errors that identify what kind of failure a task reported, on
// the plugin's side and, after the trip, on the host's. Match them with
// [errors.Is]; never compare messages.
var (
	// ErrInvalidInput marks a task error caused by its input: the caller's
	// fault, answered by wpm's HTTP API as 400 invalid_task. Return it
	// wrapped, or an error made by [InvalidInput].
	ErrInvalidInput = wire.ErrInvalidInput
	// ErrTaskFailed marks every other error a task returned, including a
	// recovered panic.
	ErrTaskFailed = wire.ErrTaskFailed
)

// InvalidInput returns an error that tells the caller its input was wrong:
// it matches [ErrInvalidInput]. The message should say what to change.
func InvalidInput(format string, args ...any) error {
	return &wire.Error{Kind: wire.KindInvalidInput, Message: fmt.Sprintf(format, args...)}
}
