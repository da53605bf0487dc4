package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// reloadPools applies pools to mgr as a config reload does, then matches
// e's runners to them as serve does after a reload.
func reloadPools(t *testing.T, e *Engine, mgr *host.Manager, pools []host.PoolConfig) {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.Pools = pools
	require.NoError(t, mgr.Reload(cfg))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.Reconcile(ctx))
}

// waitPoolReady waits until every worker of pool is ready.
func waitPoolReady(t *testing.T, mgr *host.Manager, pool string) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, err := mgr.Pool(pool)
		return err == nil && s.Ready == s.Config.Workers
	}, 10*time.Second, 5*time.Millisecond, "pool %s never became ready", pool)
}

// An idle runner looks for tasks without taking a worker's place: over
// many poll intervals with no task, the pool's workers never turn busy.
func TestRunner_idlePoolWorkersStayIdle(t *testing.T) {
	mgr := newManager(t, []host.PoolConfig{{Name: "M", Plugin: "misbehave", Workers: 2}})
	opts := testOptions(t.TempDir())
	opts.PollInterval = 2 * time.Millisecond
	e := startEngine(t, mgr, opts)
	waitPoolReady(t, mgr, "M")
	// One task first, so that the runner is surely polling.
	task := submit(t, e, "M", `{"fault": "echo"}`)
	require.Equal(t, StateSucceeded, waitFor(t, e, task.ID, ended).State)

	samples, busy, turned := 0, 0, 0
	wasBusy := false
	for end := time.Now().Add(100 * opts.PollInterval); time.Now().Before(end) || samples < 500; samples++ {
		s, err := mgr.Pool("M")
		require.NoError(t, err)
		now := s.Running > 0
		for _, w := range s.Workers {
			now = now || w.State == host.StateBusy
		}
		if now {
			busy++
			if !wasBusy {
				turned++
			}
		}
		wasBusy = now
	}
	t.Logf("%d snapshots over %d poll intervals: %d busy, %d turns to busy", samples, 100, busy, turned)
	assert.Zero(t, turned, "an idle pool's workers turned busy %d times in %d snapshots", turned, samples)
}

// A pool removed by a reload has its runner stopped: its running task
// ends as the pool drains, its queued tasks stay in the queue (no host
// takes them here), and they run once a reload brings the pool back.
func TestEngine_Reconcile_removedPoolKeepsItsQueue(t *testing.T) {
	pools := []host.PoolConfig{
		{Name: "A", Plugin: "misbehave", Workers: 1},
		{Name: "B", Plugin: "misbehave", Workers: 1},
	}
	mgr := newManager(t, pools)
	e := startEngine(t, mgr, testOptions(t.TempDir()))
	first := submit(t, e, "B", `{"fault": "sleep", "ms": 1500}`)
	waitFor(t, e, first.ID, inState(StateRunning))
	queued := []Task{submit(t, e, "B", `{"fault": "echo"}`), submit(t, e, "B", `{"fault": "echo"}`)}

	reloadPools(t, e, mgr, pools[:1])
	e.mu.Lock()
	_, still := e.runnerOf["B"]
	e.mu.Unlock()
	assert.False(t, still, "the removed pool's runner stopped")
	assert.Equal(t, StateSucceeded, waitFor(t, e, first.ID, ended).State, "the running task ended as the pool drained")
	require.Eventually(t, func() bool { return !mgr.HasPool("B") && len(mgr.PoolNames()) == 1 }, 10*time.Second, 10*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := e.js.Consumer(ctx, streamName, consumerName("B"))
	require.NoError(t, err)
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	// A runner waiting for B's place with a task in hand hands it back
	// when it stops: it is then up for redelivery rather than undelivered.
	assert.Equal(t, uint64(2), info.NumPending+uint64(info.NumAckPending), "the queued tasks stay in the queue")
	for _, q := range queued {
		got, err := e.Get(ctx, q.ID)
		require.NoError(t, err)
		assert.Equal(t, StateQueued, got.State)
	}

	reloadPools(t, e, mgr, pools)
	for _, q := range queued {
		assert.Equal(t, StateSucceeded, waitFor(t, e, q.ID, ended).State, "the pool is back: its queued tasks run")
	}
}
