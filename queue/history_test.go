package queue

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// requireEnded checks that a is an ended attempt on host with cause, a
// worker pid when pid says so, and times in order.
func requireEnded(t *testing.T, a Attempt, hostName, cause string) {
	t.Helper()
	assert.Equal(t, hostName, a.Host)
	assert.Equal(t, cause, a.Cause, "%+v", a)
	require.NotNil(t, a.FinishedAt, "%+v", a)
	assert.False(t, a.FinishedAt.Before(a.StartedAt), "%+v", a)
	assert.False(t, a.StartedAt.IsZero())
}

// A task that succeeds has one attempt: its host, worker, times and
// cause ok.
func TestEngine_history_succeeded(t *testing.T) {
	e := newEngine(t)
	task := submit(t, e, "M", `{"fault": "echo"}`)
	got := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateSucceeded, got.State, "%+v", got)
	require.Len(t, got.History, 1)
	a := got.History[0]
	requireEnded(t, a, "wpm", CauseOK)
	assert.Positive(t, a.WorkerPID)
	assert.Equal(t, got.WorkerPID, a.WorkerPID)
	assert.True(t, a.StartedAt.Equal(*got.StartedAt))
	assert.True(t, a.FinishedAt.Equal(*got.FinishedAt))
	assert.Empty(t, a.Message)
}

// A worker that crashes on the first attempt, retried by its pool: the
// first attempt says worker_crashed with the crashed worker's pid, the
// second ok on its replacement.
func TestEngine_history_retriedAfterCrash(t *testing.T) {
	mgr := newManager(t, testPools())
	e := startEngine(t, mgr, testOptions(t.TempDir()))
	waitPoolReady(t, mgr, "F")
	pool, err := mgr.Pool("F")
	require.NoError(t, err)
	crashed := pool.Workers[0].PID
	marker := filepath.Join(t.TempDir(), "crash-once")
	require.NoError(t, os.WriteFile(marker, nil, 0o600))
	input, _ := json.Marshal(map[string]any{"once": marker})
	task := submit(t, e, "F", string(input))

	got := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateSucceeded, got.State, "%+v", got)
	require.Len(t, got.History, 2)
	first, last := got.History[0], got.History[1]
	requireEnded(t, first, "wpm", string(host.CodeWorkerCrashed))
	assert.Equal(t, crashed, first.WorkerPID, "the first attempt names the worker that crashed")
	assert.NotEmpty(t, first.Message)
	requireEnded(t, last, "wpm", CauseOK)
	assert.Positive(t, last.WorkerPID)
	assert.NotEqual(t, crashed, last.WorkerPID)
	assert.False(t, last.StartedAt.Before(*first.FinishedAt), "the retry started after the crash")
}

// A failure that ends the task, and a result too large, name their code.
func TestEngine_history_failed(t *testing.T) {
	e := newEngine(t)
	task := submit(t, e, "M", `{"fault": "fail"}`)
	got := waitFor(t, e, task.ID, ended)
	require.Len(t, got.History, 1)
	requireEnded(t, got.History[0], "wpm", string(host.CodeTaskFailed))
	assert.Equal(t, got.Error.Message, got.History[0].Message)

	task = submit(t, e, "F", `{"bytes": 2000}`)
	got = waitFor(t, e, task.ID, ended)
	require.Len(t, got.History, 1)
	requireEnded(t, got.History[0], "wpm", string(CodeResultTooLarge))
	assert.Positive(t, got.History[0].WorkerPID)
}

// A running task canceled: its attempt ends canceled.
func TestEngine_history_canceled(t *testing.T) {
	e := newEngine(t)
	task := submit(t, e, "M", `{"fault": "sleep", "ms": 1900}`)
	running := waitFor(t, e, task.ID, inState(StateRunning))
	require.Len(t, running.History, 1)
	assert.Nil(t, running.History[0].FinishedAt, "a running attempt is open")
	assert.Empty(t, running.History[0].Cause)

	got, err := e.Cancel(context.Background(), task.ID)
	require.NoError(t, err)
	require.Len(t, got.History, 1)
	requireEnded(t, got.History[0], "wpm", CauseCanceled)
	assert.Contains(t, got.History[0].Message, "canceled")
	again, err := e.Get(context.Background(), task.ID)
	require.NoError(t, err)
	assert.Equal(t, got.History, again.History, "as stored")

	queued := submit(t, e, "M", `{"fault": "echo"}`)
	got, err = e.Cancel(context.Background(), queued.ID)
	require.NoError(t, err)
	assert.Empty(t, got.History, "a queued task never ran")
}

// A task started again while its record says running (its host stopped
// answering and the message was handed out again): the open attempt
// ends lost. A record of an older version, without history, starts as
// any other.
func TestEngine_history_startOverOpenAttempt(t *testing.T) {
	e := startEngine(t, newManager(t, nil), testOptions(t.TempDir()))
	ctx := context.Background()
	j := job{ID: newID(), Pool: "P", CreatedAt: time.Now().UTC()}
	old := j.record()
	old.State, old.Attempts, old.Host, old.StartedAt = StateRunning, 1, "gone", now()
	b, err := json.Marshal(old)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "history", "as an older version wrote it")
	_, err = e.kv.Create(ctx, j.ID, b)
	require.NoError(t, err)

	first, _, ok, err := e.start(ctx, j)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 2, first.Attempts)
	require.Len(t, first.History, 1, "an older record's attempts have no history")
	assert.Nil(t, first.History[0].FinishedAt)

	second, _, ok, err := e.start(ctx, j) // handed out again: the first's host stopped answering
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 3, second.Attempts)
	require.Len(t, second.History, 2)
	lost := second.History[0]
	requireEnded(t, lost, "wpm", CauseLost)
	assert.True(t, lost.FinishedAt.Equal(second.History[1].StartedAt))
	assert.Contains(t, lost.Message, "stopped answering")
	assert.Nil(t, second.History[1].FinishedAt)
	assert.True(t, second.History[1].StartedAt.Equal(*second.StartedAt))
}

// A record keeps the latest maxHistory attempts.
func TestTask_startAttempt_keepsTheLatest(t *testing.T) {
	var task Task
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxHistory + 5 {
		task.startAttempt("h", start.Add(time.Duration(i)*time.Second))
		task.endAttempt(start.Add(time.Duration(i)*time.Second+time.Millisecond), i+1, CauseOK, "")
	}
	require.Len(t, task.History, maxHistory)
	assert.Equal(t, 6, task.History[0].WorkerPID, "the five oldest went")
	assert.Equal(t, maxHistory+5, task.History[maxHistory-1].WorkerPID)

	copied := task
	copied.startAttempt("h", start.Add(time.Hour))
	copied.dropAttempt()
	copied.endAttempt(start, 0, CauseLost, "")
	assert.Equal(t, task.History, copied.History, "an attempt dropped leaves the record as it was")
}
