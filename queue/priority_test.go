package queue

import (
	"context"
	"slices"
	"sync"
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
	busy := submit(t, e, "M", `{"fault": "sleep", "ms": 300}`)
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
	busy := submit(t, e, "M", `{"fault": "sleep", "ms": 300}`)
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

// Across hosts: two engines on one NATS, each with a busy one-worker
// pool, each runner holding a low task while it waits; a high task
// submitted on one host starts with the first free worker: at most one
// low task (on the other worker, freed at the same moment) starts before
// it. (The busy tasks are short of the third of the ack wait a runner
// holds a task for: past it, the held task goes back with a delay.)
func TestEngine_priorityAcrossHosts(t *testing.T) {
	opts, addr := listenOptions(t)
	mgr1 := newManager(t, testPools())
	first := startEngine(t, mgr1, opts)
	second, mgr2 := secondHost(t, addr, "second", testPools())
	t.Cleanup(func() { stopEngine(t, second) }) // before the server it uses

	// Each host's worker busy with a synchronous task.
	var wg sync.WaitGroup
	for _, m := range []*host.Manager{mgr1, mgr2} {
		wg.Go(func() {
			_, err := m.Submit(context.Background(), "M", []byte(`{"fault": "sleep", "ms": 300}`))
			assert.NoError(t, err)
		})
		require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 }, 5*time.Second, time.Millisecond)
	}
	defer wg.Wait()
	var lows []Task
	for i := range 8 {
		e := first
		if i%2 == 1 {
			e = second
		}
		lows = append(lows, submitPrio(t, e, "M", `{"fault": "sleep", "ms": 20}`, host.PriorityLow))
	}
	time.Sleep(50 * time.Millisecond) // each runner holds a low task now
	high := submitPrio(t, second, "M", `{"fault": "sleep", "ms": 20}`, host.PriorityHigh)
	got := waitFor(t, first, high.ID, ended)
	require.Equal(t, StateSucceeded, got.State)
	before := 0
	for _, l := range lows {
		rec := waitFor(t, first, l.ID, ended)
		require.Equal(t, StateSucceeded, rec.State)
		if rec.StartedAt.Before(*got.StartedAt) {
			before++
		}
	}
	assert.LessOrEqual(t, before, 1, "low tasks started before the high one, with two workers")
}
