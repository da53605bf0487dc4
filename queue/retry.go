package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wpmdev/wpm/host"
)

// Codes of a retry's refusals, added to the API's table.
const (
	// CodeTaskNotEnded: the task is still queued or running; only an
	// ended task can be retried.
	CodeTaskNotEnded host.ErrorCode = "task_not_ended"
	// CodeTaskNotRetryable: the task ended but can not be retried: it
	// succeeded, or its input is no longer kept.
	CodeTaskNotRetryable host.ErrorCode = "task_not_retryable"
)

var (
	// ErrTaskNotEnded means the task has not ended yet.
	ErrTaskNotEnded = errors.New("task not ended")
	// ErrNotRetryable means the task succeeded, or its input is gone.
	ErrNotRetryable = errors.New("task not retryable")
)

// errRetriedBy is the change of Retry's write when another retry won.
type errRetriedBy struct{ id string }

func (e errRetriedBy) Error() string { return "retried already by task " + e.id }

// Retry submits a failed or canceled task again: a new task with the same
// pool or plugin, input, one-shot options and callback URL (not its
// idempotency key), whose record has RetryOf; the old record gets
// RetriedBy (compare-and-set), which restarts its async.retention. A task
// retried already returns its retry's record, so a repeated retry makes no
// second task. An unknown task is ErrUnknownTask, a queued or running one
// ErrTaskNotEnded, a succeeded one (run it again by submitting its input)
// ErrNotRetryable; errors of Submit (the pool is gone, say) pass as
// they are.
func (e *Engine) Retry(ctx context.Context, id string) (Task, error) {
	v, err := e.retryTask(ctx, id)
	return v, e.unavailable(err)
}

// retryTask is Retry before NATS errors are translated.
func (e *Engine) retryTask(ctx context.Context, id string) (Task, error) {
	old, _, err := e.get(ctx, id)
	if err != nil {
		return Task{}, err
	}
	stale := "" // a retry whose record expired: retried anew
	if old.RetriedBy != "" {
		t, err := e.retryOf(ctx, old.RetriedBy) // it may be being made now
		if err == nil || !errors.Is(err, ErrUnknownTask) {
			return t, err
		}
		stale = old.RetriedBy
	}
	if err := canRetry(old); err != nil {
		return old, err
	}
	input, err := e.inputOf(ctx, old)
	if err != nil {
		return old, err
	}
	next := newID()
	_, _, err = e.modify(ctx, old, 0, casOnce, func(t *Task) error {
		if err := canRetry(*t); err != nil {
			return err
		}
		if t.RetriedBy != "" && t.RetriedBy != stale {
			return errRetriedBy{t.RetriedBy}
		}
		t.RetriedBy = next
		return nil
	})
	var won errRetriedBy
	if errors.As(err, &won) {
		t, err := e.retryOf(ctx, won.id)
		if errors.Is(err, ErrUnknownTask) {
			err = fmt.Errorf("%w: task %s is being retried by task %s, whose record is not stored yet; retry later", ErrUnavailable, id, won.id)
		}
		return t, err
	}
	if err != nil {
		return old, err
	}
	req := Request{Pool: old.Pool, Input: input, CallbackURL: old.CallbackURL, Priority: old.Priority, retryOf: id, id: next}
	if old.Pool == "" {
		req.Plugin = old.Plugin
		req.Run.MemoryLimitMB, req.Run.Timeout = old.runOptions()
	}
	t, err := e.submit(ctx, req)
	if err != nil {
		// Give the old task back its retry.
		_, _, _ = e.modify(context.WithoutCancel(ctx), Task{ID: id}, 0, casOnce, func(t *Task) error {
			if t.RetriedBy != next {
				return errRetriedBy{t.RetriedBy}
			}
			t.RetriedBy = ""
			return nil
		})
		return Task{}, err
	}
	return t, nil
}

// retryOf returns the record of id, a retry that another Retry may be
// making: it waits a second for it to be stored, then gives
// ErrUnknownTask (it expired, or its submit failed).
func (e *Engine) retryOf(ctx context.Context, id string) (Task, error) {
	for i := 0; ; i++ {
		t, err := e.Get(ctx, id)
		if !errors.Is(err, ErrUnknownTask) || i == 20 {
			return t, err
		}
		select {
		case <-ctx.Done():
			return Task{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// canRetry says why t can not be retried, if it can not.
func canRetry(t Task) error {
	switch {
	case !t.State.Ended():
		return fmt.Errorf("%w: task %s is %s; only a failed or canceled task can be retried (cancel it first with DELETE /v1/tasks/%s)", ErrTaskNotEnded, t.ID, t.State, t.ID)
	case t.State == StateSucceeded:
		return fmt.Errorf("%w: task %s succeeded; only a failed or canceled task can be retried (to run it again, submit its input anew)", ErrNotRetryable, t.ID)
	}
	return nil
}

// taskID is the id a new task of req gets: Retry's, or a new one.
func (req Request) taskID() string {
	if req.id != "" {
		return req.id
	}
	return newID()
}
