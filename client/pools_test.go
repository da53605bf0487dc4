package client_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/client"
)

// Pause and Resume: a paused pool says so, refuses synchronous tasks with
// ErrPoolPaused and keeps asynchronous ones queued until resumed.
func TestClient_pauseResume(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	p, err := c.Pause(ctx, "ONE")
	require.NoError(t, err)
	assert.Equal(t, &client.PoolPaused{Pool: "ONE", Paused: true}, p)
	t.Cleanup(func() { _, _ = c.Resume(context.Background(), "ONE") })
	pool, err := c.Pool(ctx, "ONE")
	require.NoError(t, err)
	assert.True(t, pool.Paused)
	list, err := c.Pools(ctx)
	require.NoError(t, err)
	assert.True(t, list.Cluster["ONE"].Paused)

	_, err = c.Run(ctx, "ONE", json.RawMessage(`{"fault": "echo"}`))
	require.ErrorIs(t, err, client.ErrPoolPaused)
	acc, err := c.Submit(ctx, client.SubmitRequest{Pool: "ONE", Input: json.RawMessage(`{"fault": "echo"}`), Priority: "high"})
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	task, err := c.Task(ctx, acc.ID)
	require.NoError(t, err)
	assert.Equal(t, client.StateQueued, task.State)
	assert.Equal(t, "high", task.Priority)

	_, err = c.Pause(ctx, "nope")
	require.ErrorIs(t, err, client.ErrUnknownPool)

	p, err = c.Resume(ctx, "ONE")
	require.NoError(t, err)
	assert.False(t, p.Paused)
	task, err = c.Wait(ctx, acc.ID, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, client.StateSucceeded, task.State)
}
