package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A task's record keeps its input and run options, so that the task can
// be shown (GET /v1/tasks/{id}) and retried: an input of up to
// maxInlineInput bytes inside the record, a larger one beside it, in the
// object store of large results (wpm_results) under "<id>.input", written
// at submit before the task's message. The record then says InputSize;
// Get reads the input back, a list leaves it out. Such an object expires
// async.retention after the submit (the store's TTL), so the input of a
// task that waited or ran longer than that is no longer kept: Get shows
// only InputSize, and a retry is refused.

// maxInlineInput is the largest input kept inside its record: small
// enough that a record with its input and a result of any size kept
// beside it still fits the smallest max_payload wpm sets.
const maxInlineInput = 16 << 10

// inputSuffix names a large input's object: the task id, then this.
const inputSuffix = ".input"

// TaskOptions are a one-shot's run options, as its record keeps them.
type TaskOptions struct {
	// MemoryLimitMB is the one-shot's memory limit (?memoryLimitMB).
	MemoryLimitMB int `json:"memoryLimitMB,omitempty"`
	// Timeout is the one-shot's timeout, a Go duration (?timeout).
	Timeout string `json:"timeout,omitempty"`
}

// keep copies into t, j's record, what a retry needs of j: its input
// (or its size, when kept beside), run options and the task it retries.
func (j job) keep(t *Task) {
	if len(j.Input) <= maxInlineInput {
		t.Input = j.Input
	} else {
		t.InputSize = int64(len(j.Input))
	}
	if j.MemoryLimitMB != 0 || j.Timeout != 0 {
		t.Options = &TaskOptions{MemoryLimitMB: j.MemoryLimitMB}
		if j.Timeout != 0 {
			t.Options.Timeout = j.Timeout.String()
		}
	}
	t.RetryOf = j.RetryOf
}

// keepInput stores j's input beside its record when it is too large for
// it.
func (e *Engine) keepInput(ctx context.Context, j job) error {
	if len(j.Input) <= maxInlineInput {
		return nil
	}
	if _, err := e.results.PutBytes(ctx, j.ID+inputSuffix, j.Input); err != nil {
		if errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
			err = fmt.Errorf("%w: %w", err, context.DeadlineExceeded) // the object store's timeout, as storageError knows it
		}
		return fmt.Errorf("store the input of task %s: %w", j.ID, err)
	}
	return nil
}

// withInput fills in t's input when it is kept beside the record and
// still there.
func (e *Engine) withInput(ctx context.Context, t Task) Task {
	if t.InputSize == 0 || t.Input != nil {
		return t
	}
	if b, err := e.results.GetBytes(ctx, t.ID+inputSuffix); err == nil {
		t.Input = b
	}
	return t
}

// inputOf returns t's input, read from beside the record when kept there.
func (e *Engine) inputOf(ctx context.Context, t Task) ([]byte, error) {
	if t.InputSize == 0 {
		return t.Input, nil
	}
	b, err := e.results.GetBytes(ctx, t.ID+inputSuffix)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: the input of task %s (%d bytes, kept beside its record) has expired (async.retention counts from the submit for it); submit it anew", ErrNotRetryable, t.ID, t.InputSize)
	}
	if err != nil {
		return nil, fmt.Errorf("read the input of task %s: %w", t.ID, err)
	}
	return b, nil
}

// runOptions returns the one-shot options t's record keeps.
func (t Task) runOptions() (memoryLimitMB int, timeout time.Duration) {
	if t.Options == nil {
		return 0, 0
	}
	timeout, _ = time.ParseDuration(t.Options.Timeout)
	return t.Options.MemoryLimitMB, timeout
}
