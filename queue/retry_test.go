package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// A failed task is retried as a new task with the same pool and input,
// linked both ways; a second retry gives the same new task; a running or
// queued task is not retried, nor a succeeded one, nor an unknown one.
func TestRetry_failedTask(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	failed := submit(t, e, "M", `{"fault": "fail"}`)
	assert.JSONEq(t, `{"fault": "fail"}`, string(failed.Input))
	got := waitFor(t, e, failed.ID, ended)
	require.Equal(t, StateFailed, got.State)

	again, err := e.Retry(ctx, failed.ID)
	require.NoError(t, err)
	assert.NotEqual(t, failed.ID, again.ID)
	assert.Equal(t, failed.ID, again.RetryOf)
	assert.Equal(t, "M", again.Pool)
	assert.JSONEq(t, `{"fault": "fail"}`, string(again.Input))
	old, err := e.Get(ctx, failed.ID)
	require.NoError(t, err)
	assert.Equal(t, again.ID, old.RetriedBy)
	assert.Equal(t, StateFailed, old.State)

	twice, err := e.Retry(ctx, failed.ID)
	require.NoError(t, err)
	assert.Equal(t, again.ID, twice.ID, "a second retry gives the first retry")

	end, err := e.Wait(ctx, again.ID, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, StateFailed, end.State, "the retry ran and failed again")
	assert.Equal(t, failed.ID, end.RetryOf)

	_, err = e.Retry(ctx, "0123456789abcdef")
	assert.ErrorIs(t, err, ErrUnknownTask)

	ok := submit(t, e, "M", `{"fault": "echo"}`)
	waitFor(t, e, ok.ID, ended)
	_, err = e.Retry(ctx, ok.ID)
	assert.ErrorIs(t, err, ErrNotRetryable)

	running := submit(t, e, "M", `{"fault": "sleep", "ms": 1500}`)
	queued := submit(t, e, "M", `{"fault": "echo"}`)
	waitFor(t, e, running.ID, inState(StateRunning))
	_, err = e.Retry(ctx, running.ID)
	assert.ErrorIs(t, err, ErrTaskNotEnded)
	_, err = e.Retry(ctx, queued.ID)
	assert.ErrorIs(t, err, ErrTaskNotEnded)
}

// A canceled one-shot is retried with its run options, and succeeds; a
// large input is kept beside the record, shown whole by Get and retried.
func TestRetry_canceledOneShotLargeInput(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	input := `{"duration": 1000` + strings.Repeat(" ", maxInlineInput) + `}`
	task, err := e.Submit(ctx, Request{Plugin: "cpuload", Input: []byte(input), Run: host.RunOptions{MemoryLimitMB: 64, Timeout: 30 * time.Second}})
	require.NoError(t, err)
	assert.Nil(t, task.Input)
	assert.EqualValues(t, len(input), task.InputSize)
	_, _ = e.Cancel(ctx, task.ID)
	got, err := e.Get(ctx, task.ID)
	require.NoError(t, err)
	require.True(t, got.State.Ended(), "%+v", got)
	assert.Equal(t, input, string(got.Input), "Get shows a large input whole")
	require.NotNil(t, got.Options)
	assert.Equal(t, TaskOptions{MemoryLimitMB: 64, Timeout: "30s"}, *got.Options)

	if got.State == StateSucceeded {
		t.Skip("the one-shot ended before its cancel")
	}
	again, err := e.Retry(ctx, task.ID)
	require.NoError(t, err)
	assert.Equal(t, task.ID, again.RetryOf)
	assert.Equal(t, *got.Options, *again.Options)
	end, err := e.Wait(ctx, again.ID, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, StateSucceeded, end.State, "%+v", end)
	assert.Equal(t, input, string(end.Input))
}

// A task whose retry's record expired is retried anew.
func TestRetry_retryExpired(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	failed := submit(t, e, "M", `{"fault": "fail"}`)
	waitFor(t, e, failed.ID, ended)
	first, err := e.Retry(ctx, failed.ID)
	require.NoError(t, err)
	waitFor(t, e, first.ID, ended)
	require.NoError(t, e.kv.Purge(ctx, first.ID)) // as if it expired

	second, err := e.Retry(ctx, failed.ID)
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, second.ID)
	assert.Equal(t, failed.ID, second.RetryOf)
	old, err := e.Get(ctx, failed.ID)
	require.NoError(t, err)
	assert.Equal(t, second.ID, old.RetriedBy)
}
