package host_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// count returns how many worker events of type t carried reason.
func (l *eventLog) count(t host.EventType, reason string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Type == t && e.Reason == reason {
			n++
		}
	}
	return n
}

// scalingPool is a misbehave pool of min to max workers that stops idle
// ones after idle.
func scalingPool(name string, minW, maxW int, idle time.Duration) host.PoolConfig {
	return host.PoolConfig{Name: name, Plugin: "misbehave", MinWorkers: minW, MaxWorkers: maxW, ScaleDownAfter: idle, QueueLimit: 64}
}

// newScalingManager starts a manager with pc whose events go to a log.
func newScalingManager(t *testing.T, pc host.PoolConfig) (*host.Manager, *eventLog) {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{pc}
	log := newEventLog()
	return newManagerWith(t, cfg, testLogger(t), host.WithEvents(log.add)), log
}

// burst submits n sleep tasks of ms at once and returns the PIDs that ran
// them.
func burst(t *testing.T, m *host.Manager, pool string, n int, ms int) map[int]int {
	t.Helper()
	var (
		mu   sync.Mutex
		pids = map[int]int{}
		wg   sync.WaitGroup
		errs = make(chan error, n)
	)
	for range n {
		wg.Go(func() {
			res, err := m.Submit(context.Background(), pool, fault("sleep", "ms", ms))
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			pids[res.WorkerPID]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return pids
}

// waitTarget waits until the pool wants target workers and has as many
// slots.
func waitTarget(t *testing.T, m *host.Manager, pool string, target int) host.PoolStats {
	t.Helper()
	return waitUntil(t, m, pool, func(s host.PoolStats) bool { return s.Target == target && len(s.Workers) == target })
}

func TestScale_fromZeroToMaxAndBack(t *testing.T) {
	m, log := newScalingManager(t, scalingPool("Z", 0, 4, 300*time.Millisecond))

	s, err := m.Pool("Z")
	require.NoError(t, err)
	assert.Zero(t, s.Target, "a pool of minWorkers 0 starts no worker")
	assert.Empty(t, s.Workers)
	assert.False(t, s.Degraded(), "a pool at 0 wanting 0 is not degraded")

	pids := burst(t, m, "Z", 12, 300)
	assert.LessOrEqual(t, len(pids), 4, "never beyond max: %v", pids)
	assert.Equal(t, 4, log.count(host.EventWorkerStarted, "scaled_up"), "the burst grew the pool to its max")

	waitTarget(t, m, "Z", 0)
	require.Eventually(t, func() bool { return log.count(host.EventWorkerExited, "scaled_down") == 4 },
		5*time.Second, 5*time.Millisecond, "every worker was stopped for scale-down")
	assert.Zero(t, log.count(host.EventWorkerReplaced, "scaled_down"), "a scaled-down worker is not replaced")

	// The next task starts a worker again.
	res, err := m.Submit(context.Background(), "Z", fault("echo"))
	require.NoError(t, err)
	assert.NotContains(t, pids, res.WorkerPID)
}

func TestScale_minOneNeverBelowOne(t *testing.T) {
	m, log := newScalingManager(t, scalingPool("O", 1, 3, 100*time.Millisecond))
	waitTarget(t, m, "O", 1)

	pids := burst(t, m, "O", 6, 200)
	assert.LessOrEqual(t, len(pids), 3, "never beyond max: %v", pids)
	assert.Equal(t, 2, log.count(host.EventWorkerStarted, "scaled_up"), "grew from 1 to its max of 3")

	s := waitTarget(t, m, "O", 1)
	require.Never(t, func() bool {
		s, _ := m.Pool("O")
		return s.Target < 1 || s.Ready < 1
	}, 600*time.Millisecond, 10*time.Millisecond, "the pool went below its minimum")
	assert.Contains(t, pids, s.Workers[0].PID)
}

func TestScale_crashLoopAtZeroIsRateLimited(t *testing.T) {
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), pluginDir, "misbehave-failstart")
	pc := scalingPool("F", 0, 4, 100*time.Millisecond)
	pc.Plugin = "misbehave-failstart"
	m, log := newScalingManager(t, pc)

	// Many tasks at once, then more one by one: without a limit every one
	// of 4 slots would retry on its own, and every new task start another.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := m.Submit(ctx, "F", fault("echo"))
			assert.ErrorIs(t, err, host.ErrTimeout)
		})
	}
	wg.Wait()
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := m.Submit(ctx, "F", fault("echo"))
		cancel()
		assert.ErrorIs(t, err, host.ErrTimeout)
	}
	// The burst starts 4 at once; then one slot retries at 0.1, 0.3, 0.7,
	// 1.5 s...: about 8 over these 2 s, where each of 4 slots retrying on
	// its own would start 20 or more.
	starts := log.count(host.EventWorkerExited, "start_failed")
	assert.GreaterOrEqual(t, starts, 4)
	assert.LessOrEqual(t, starts, 10, "a crash-looping plugin is started at a bounded rate")

	waitTarget(t, m, "F", 0)
	s, err := m.Pool("F")
	require.NoError(t, err)
	assert.Contains(t, s.LastError, "failing at start on purpose")
}

func TestScale_unusedReservationIsNoActivity(t *testing.T) {
	m, _ := newScalingManager(t, scalingPool("R", 0, 1, 200*time.Millisecond))
	r, err := m.Reserve(context.Background(), "R")
	require.NoError(t, err, "a reservation at an empty pool starts a worker")
	r.Release()

	// A queue consumer that keeps looking and finds nothing does not keep
	// the worker.
	require.Eventually(t, func() bool {
		s, _ := m.Pool("R")
		if s.Target == 0 {
			return true
		}
		if s.Ready == 1 && s.Running == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if r, err := m.Reserve(ctx, "R"); err == nil {
				r.Release()
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
}

func TestScale_reloadChangesBounds(t *testing.T) {
	pc := scalingPool("B", 1, 2, time.Hour)
	m, _ := newScalingManager(t, pc)
	s := waitTarget(t, m, "B", 1)
	first := s.Workers[0].PID

	cfg := host.DefaultConfig()
	pc.MinWorkers, pc.MaxWorkers = 2, 4
	cfg.Pools = []host.PoolConfig{pc}
	require.NoError(t, m.Reload(cfg))
	s = waitReady(t, m, "B")
	assert.Equal(t, 2, s.Target, "a higher minimum starts workers")
	assert.Contains(t, pids(s), first, "a worker within the bounds stays")

	cfg.Pools = []host.PoolConfig{{Name: "B", Plugin: "misbehave", Workers: 1, QueueLimit: 64}}
	require.NoError(t, m.Reload(cfg))
	s = waitTarget(t, m, "B", 1)
	assert.Equal(t, []int{first}, pids(s), "the oldest worker stays; the newer one is retired")

	pc.MinWorkers, pc.MaxWorkers = 3, 2
	cfg.Pools = []host.PoolConfig{pc}
	err := m.Reload(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pools[0].minWorkers: must be at most maxWorkers (2), got 3")
	s, err = m.Pool("B")
	require.NoError(t, err)
	assert.Equal(t, 1, s.Config.MaxWorkers, "a refused reload changes nothing")
}

func TestScale_recyclingAndMemoryLimitKeepWorking(t *testing.T) {
	pc := scalingPool("L", 0, 2, time.Hour)
	pc.MaxTasksPerWorker = 2
	pc.MemoryLimitMB = 64
	m, log := newScalingManager(t, pc)

	served := map[int]int{}
	for range 6 {
		res, err := m.Submit(context.Background(), "L", fault("echo"))
		require.NoError(t, err)
		served[res.WorkerPID]++
	}
	assert.GreaterOrEqual(t, len(served), 2, "workers were recycled: %v", served)
	for pid, n := range served {
		assert.LessOrEqual(t, n, 3, "pid %d served past its recycling count (with jitter)", pid)
	}

	_, err := m.Submit(context.Background(), "L", fault("alloc", "mb", 256, "ms", 2000))
	require.ErrorIs(t, err, host.ErrMemoryLimit)
	_, err = m.Submit(context.Background(), "L", fault("echo"))
	require.NoError(t, err, "the pool recovers")
	// The last task may have reached the recycling count: its worker is
	// then being replaced. Either way the pool stays at 1 and gets a ready
	// worker back.
	waitTarget(t, m, "L", 1)
	s := waitUntil(t, m, "L", func(s host.PoolStats) bool { return s.Ready == 1 || s.Target != 1 })
	assert.Equal(t, 1, s.Target, "a recycled or killed worker is replaced in its slot, not scaled away")
	assert.Equal(t, 1, s.Ready)
	assert.Zero(t, log.count(host.EventWorkerExited, "scaled_down"))
}
