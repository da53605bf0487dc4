package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wpmdev/wpm/internal/wire"
	"github.com/wpmdev/wpm/shared"
)

// call runs one task on proc and sorts out how it ended. healthy reports
// whether proc can take another task. When ctx ends first, proc is killed
// (a net/rpc call can not be canceled). doomed, if not nil, runs as soon
// as proc is known to be lost, so its owner stops handing it tasks.
func call(ctx context.Context, proc *process, input []byte, doomed func()) (out []byte, err error, healthy bool) {
	proc.enter()
	out, err = proc.task.Run(ctx, input)
	proc.leave()
	switch {
	case err == nil:
		return out, nil, true
	case errors.Is(err, shared.ErrInvalidInput), errors.Is(err, shared.ErrTaskFailed):
		return nil, atDeadline(ctx, err), true
	case errors.Is(err, wire.ErrNotSent):
		// The deadline passed before the task was sent: the worker is fine.
		return nil, contextFailure(ctx), true
	case ctx.Err() != nil:
		cause := contextFailure(ctx)
		if doomed != nil {
			doomed()
		}
		proc.kill(&taskEnded{cause: cause})
		return nil, cause, false
	default:
		if doomed != nil {
			doomed()
		}
		cause, detail := proc.failure(err)
		return nil, &failure{cause: cause, detail: detail}, false
	}
}

// taskEnded is the reason a worker is killed for when a task on it ended
// early (timeout, caller gone, shutdown). It wraps that task's cause, so
// the worker's last exit is the timeout; the other tasks running on the
// same worker lose it to a crash, not to their own timeout (see
// process.failure).
type taskEnded struct{ cause error }

func (e *taskEnded) Error() string {
	return fmt.Sprintf("%v: killed because a task on it ended early (%v)", ErrWorkerCrashed, e.cause)
}

func (e *taskEnded) Unwrap() []error { return []error{e.cause, ErrWorkerCrashed} }

// forOthers is the error of the other tasks on the killed worker.
func (e *taskEnded) forOthers() error {
	return fmt.Errorf("%w: killed because another task on it ended early (%v)", ErrWorkerCrashed, e.cause)
}

// failure is a worker's death with its last stderr lines.
type failure struct {
	cause  error
	detail string
}

func (f *failure) Error() string { return f.cause.Error() }
func (f *failure) Unwrap() error { return f.cause }

// deadlineSlack is how early a plugin may give up on a task before the
// host's own deadline: the plugin's timer starts from the time left when
// the task was sent, so it can fire a little before the host's.
const deadlineSlack = 10 * time.Millisecond

// atDeadline turns a task's own error that came back at its deadline (a
// plugin that stopped because its time was up) into the task's timeout,
// as the host's clock would have. Other errors pass as they are.
func atDeadline(ctx context.Context, err error) error {
	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) > deadlineSlack {
		return err
	}
	<-ctx.Done() // at most deadlineSlack away
	return contextFailure(ctx)
}
