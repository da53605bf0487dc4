package queue

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// submitPrio submits input to pool with priority p.
func submitPrio(t *testing.T, e *Engine, pool, input string, p host.TaskPriority) Task {
	t.Helper()
	task, err := e.Submit(context.Background(), Request{Pool: pool, Input: []byte(input), Priority: p})
	require.NoError(t, err)
	return task
}

// startOrder waits for the tasks to end and returns their ids by start.
func startOrder(t *testing.T, e *Engine, tasks []Task) []string {
	t.Helper()
	ended := make([]Task, len(tasks))
	for i, q := range tasks {
		ended[i] = waitFor(t, e, q.ID, func(t Task) bool { return t.State.Ended() })
		require.Equal(t, StateSucceeded, ended[i].State, "%+v", ended[i])
	}
	slices.SortFunc(ended, func(a, b Task) int { return a.StartedAt.Compare(*b.StartedAt) })
	ids := make([]string, len(ended))
	for i, t := range ended {
		ids[i] = t.ID
	}
	return ids
}

// A high task submitted after eight low ones to a busy one-worker pool
// runs before them; the record says its priority.
func TestEngine_priorityOvertakes(t *testing.T) {
	e := newEngine(t)
	busy := submit(t, e, "M", `{"fault": "sleep", "ms": 500}`)
	waitFor(t, e, busy.ID, inState(StateRunning))
	var lows []Task
	for range 8 {
		lows = append(lows, submitPrio(t, e, "M", `{"fault": "sleep", "ms": 20}`, host.PriorityLow))
	}
	high := submitPrio(t, e, "M", `{"fault": "sleep", "ms": 20}`, host.PriorityHigh)
	assert.Equal(t, host.PriorityHigh, high.Priority)
	assert.Equal(t, host.PriorityLow, lows[0].Priority)
	assert.Equal(t, host.PriorityNormal, busy.Priority)

	order := startOrder(t, e, append([]Task{busy}, append(lows, high)...))
	want := []string{busy.ID, high.ID}
	for _, l := range lows {
		want = append(want, l.ID)
	}
	assert.Equal(t, want, order)
	got, err := e.Get(context.Background(), high.ID)
	require.NoError(t, err)
	assert.Equal(t, host.PriorityHigh, got.Priority)
}

// A low task waits behind at most host.MaxOvertakes high ones.
func TestEngine_priorityNoStarvation(t *testing.T) {
	e := newEngine(t)
	busy := submit(t, e, "M", `{"fault": "sleep", "ms": 500}`)
	waitFor(t, e, busy.ID, inState(StateRunning))
	low := submitPrio(t, e, "M", `{"fault": "echo"}`, host.PriorityLow)
	var highs []Task
	for range host.MaxOvertakes + 4 {
		highs = append(highs, submitPrio(t, e, "M", `{"fault": "sleep", "ms": 10}`, host.PriorityHigh))
	}
	order := startOrder(t, e, append([]Task{busy, low}, highs...))
	at := slices.Index(order, low.ID)
	assert.LessOrEqual(t, at, host.MaxOvertakes+2, "the low task started after %d others; at most %d high ones may pass it", at, host.MaxOvertakes)
	assert.Greater(t, at, 1, "the high tasks go first")
}

// A message stored by a version before priorities (on the pool's subject,
// with no priority) runs as normal.
func TestEngine_priorityOldMessages(t *testing.T) {
	e := newEngine(t)
	j := job{ID: newID(), Pool: "M", Plugin: "misbehave", Input: []byte(`{"fault": "echo"}`), CreatedAt: time.Now().UTC()}
	data, err := encode(j)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = e.js.Publish(ctx, "wpm.tasks.pool.M", data, jetstream.WithMsgID(j.ID))
	require.NoError(t, err)
	e.signal(subject("M"))
	got := waitFor(t, e, j.ID, ended)
	assert.Equal(t, StateSucceeded, got.State)
	assert.Equal(t, "wpm.tasks.high.pool.M", subjectOf("M", host.PriorityHigh))
	assert.Equal(t, "wpm.tasks.low.oneshot", subjectOf("", host.PriorityLow))
}
