package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/wpmdev/wpm/shared"
)

// call runs one task on proc and sorts out how it ended. healthy reports
// whether proc can take another task. When ctx ends first, proc is killed
// (a net/rpc call can not be cancelled). doomed, if not nil, runs as soon
// as proc is known to be lost, so its owner stops handing it tasks.
func call(ctx context.Context, proc *process, input []byte, doomed func()) (out []byte, err error, healthy bool) {
	proc.enter()
	out, err = proc.task.Run(ctx, input)
	proc.leave()
	switch {
	case err == nil:
		return out, nil, true
	case errors.Is(err, shared.ErrInvalidInput), errors.Is(err, shared.ErrTaskFailed):
		return nil, err, true
	case errors.Is(err, shared.ErrNotSent):
		// The deadline passed before the task was sent: the worker is fine.
		return nil, contextFailure(ctx), true
	case ctx.Err() != nil:
		cause := contextFailure(ctx)
		if doomed != nil {
			doomed()
		}
		// The cause is named, not wrapped: other tasks on this worker die
		// of the kill, and for them it is a crash, not their timeout.
		proc.kill(fmt.Errorf("%w: killed because a task on it ended early (%v)", ErrWorkerCrashed, cause))
		return nil, cause, false
	default:
		if doomed != nil {
			doomed()
		}
		cause, detail := proc.failure(err)
		return nil, &failure{cause: cause, detail: detail}, false
	}
}

// failure is a worker's death with its last stderr lines.
type failure struct {
	cause  error
	detail string
}

func (f *failure) Error() string { return f.cause.Error() }
func (f *failure) Unwrap() error { return f.cause }
