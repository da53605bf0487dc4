package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// A paused pool's queued tasks wait, its running task finishes, its host
// refuses synchronous tasks; resumed, the queued tasks run.
func TestEngine_pauseAndResume(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	running := submit(t, e, "M", `{"fault": "sleep", "ms": 300}`)
	waitFor(t, e, running.ID, inState(StateRunning))
	require.NoError(t, e.Pause(ctx, "M"))
	assert.True(t, e.Paused("M"))
	assert.Equal(t, []string{"M"}, e.PausedPools())
	var queued []Task
	for range 3 {
		queued = append(queued, submit(t, e, "M", `{"fault": "echo"}`))
	}
	assert.Equal(t, StateSucceeded, waitFor(t, e, running.ID, ended).State, "the running task finishes")
	time.Sleep(500 * time.Millisecond)
	for _, q := range queued {
		got, err := e.Get(ctx, q.ID)
		require.NoError(t, err)
		assert.Equal(t, StateQueued, got.State, "a paused pool's task waits")
	}
	_, err := e.mgr.Submit(ctx, "M", []byte(`{"fault": "echo"}`))
	require.ErrorIs(t, err, host.ErrPoolPaused)
	_, err = e.RunRemote(ctx, Request{Pool: "M", Input: []byte(`{"fault": "echo"}`)})
	require.ErrorIs(t, err, host.ErrPoolPaused)
	require.ErrorIs(t, e.Pause(ctx, "nope"), host.ErrUnknownPool)

	require.NoError(t, e.Resume(ctx, "M"))
	assert.False(t, e.Paused("M"))
	for _, q := range queued {
		assert.Equal(t, StateSucceeded, waitFor(t, e, q.ID, ended).State)
	}
	_, err = e.mgr.Submit(ctx, "M", []byte(`{"fault": "echo"}`))
	require.NoError(t, err)
}

// A pause outlives a restart of the engine.
func TestEngine_pauseSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	mgr := newManager(t, testPools())
	opts := testOptions(dir)
	e := startEngine(t, mgr, opts)
	ctx := context.Background()
	require.NoError(t, e.Pause(ctx, "M"))
	q := submit(t, e, "M", `{"fault": "echo"}`)
	stopEngine(t, e)
	mgr.SetPaused("M", false) // as a new process would start

	e = startEngine(t, mgr, opts)
	assert.True(t, e.Paused("M"), "paused after the restart")
	assert.True(t, mgr.Paused("M"), "the host is told at once")
	time.Sleep(300 * time.Millisecond)
	got, err := e.Get(ctx, q.ID)
	require.NoError(t, err)
	assert.Equal(t, StateQueued, got.State)

	require.NoError(t, e.Resume(ctx, "M"))
	assert.Equal(t, StateSucceeded, waitFor(t, e, q.ID, ended).State)
}

// hostPool returns pool of host as e's cluster view has it (the zero
// HostPool when it has none).
func hostPool(e *Engine, host, pool string) HostPool {
	for _, h := range e.Cluster() {
		for _, p := range h.Pools {
			if h.Name == host && p.Name == pool {
				return p
			}
		}
	}
	return HostPool{}
}

// A pause made on one host is seen by another on the same NATS, and so is
// the resume; each host's pools in the cluster view say so.
func TestEngine_pauseIsShared(t *testing.T) {
	opts, addr := listenOptions(t)
	mgr1 := newManager(t, testPools())
	first := startEngine(t, mgr1, opts)
	second, mgr2 := secondHost(t, addr, "second", testPools())
	ctx := context.Background()
	require.NoError(t, first.Pause(ctx, "R"))
	require.Eventually(t, func() bool { return second.Paused("R") && mgr2.Paused("R") }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return hostPool(first, "second", "R").Paused && hostPool(first, "wpm", "R").Paused && !hostPool(first, "second", "M").Paused
	}, 5*time.Second, 10*time.Millisecond, "each host's pool in the cluster view says paused")
	q := submit(t, second, "R", `{"fault": "echo"}`)
	time.Sleep(300 * time.Millisecond)
	got, err := first.Get(ctx, q.ID)
	require.NoError(t, err)
	assert.Equal(t, StateQueued, got.State, "neither host runs a paused pool's task")
	require.NoError(t, second.Resume(ctx, "R"))
	require.Eventually(t, func() bool { return !first.Paused("R") && !mgr1.Paused("R") }, 5*time.Second, 10*time.Millisecond)
	assert.False(t, hostPool(first, "wpm", "R").Paused, "this host's at once")
	require.Eventually(t, func() bool { return !hostPool(first, "second", "R").Paused }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, StateSucceeded, waitFor(t, first, q.ID, ended).State)
	stopEngine(t, second) // before the server it uses
}
