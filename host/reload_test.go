package host_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

func TestReload_addRemoveResizeRetune(t *testing.T) {
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{misbehavePool("A", 2), misbehavePool("B", 1)}
	m := newManagerWith(t, cfg, testLogger(t))
	waitReady(t, m, "A")
	waitReady(t, m, "B")

	// Tasks running and queued on every pool while the config changes.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for _, pool := range []string{"A", "A", "A", "B", "B"} {
		wg.Go(func() {
			_, err := m.Submit(context.Background(), pool, fault("sleep", "ms", 300))
			errs <- err
		})
	}
	require.Eventually(t, func() bool {
		a, _ := m.Pool("A")
		b, _ := m.Pool("B")
		return a.Running == 2 && a.QueueDepth == 1 && b.Running == 1 && b.QueueDepth == 1
	}, 5*time.Second, time.Millisecond)

	next := cfg
	a := misbehavePool("A", 1)                               // shrink A
	a.QueueLimit = 32                                        // and re-tune it
	next.Pools = []host.PoolConfig{a, misbehavePool("C", 2)} // drop B, add C
	require.NoError(t, m.Reload(next))

	_, err := m.Submit(context.Background(), "B", fault("echo"))
	require.ErrorIs(t, err, host.ErrUnknownPool, "a removed pool takes no new task")
	res, err := m.Submit(context.Background(), "C", fault("echo"))
	require.NoError(t, err, "an added pool serves")
	assert.Equal(t, "C", res.Pool)

	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err, "no running or queued task fails across a reload")
	}
	s := waitUntil(t, m, "A", func(s host.PoolStats) bool { return len(s.Workers) == 1 && s.Ready == 1 })
	assert.Equal(t, 32, s.Config.QueueLimit)
	assert.Equal(t, []string{"A", "C"}, m.PoolNames())
}

func TestReload_growAndNewMemoryLimitReplacesWorkers(t *testing.T) {
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{misbehavePool("A", 1)}
	m := newManagerWith(t, cfg, testLogger(t))
	old := waitReady(t, m, "A").Workers[0].PID

	next := cfg
	a := misbehavePool("A", 3)
	a.MemoryLimitMB = 64
	next.Pools = []host.PoolConfig{a}
	require.NoError(t, m.Reload(next))
	s := waitUntil(t, m, "A", func(s host.PoolStats) bool {
		return s.Ready == 3 && !contains(pids(s), old)
	})
	assert.Equal(t, 64, s.Config.MemoryLimitMB)
	_, err := m.Submit(context.Background(), "A", fault("alloc", "mb", 200))
	require.ErrorIs(t, err, host.ErrMemoryLimit, "the new limit applies to the new workers")
}

func TestReload_refusesBadConfig(t *testing.T) {
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{misbehavePool("A", 1)}
	m := newManagerWith(t, cfg, testLogger(t))
	before := waitReady(t, m, "A")

	for name, mutate := range map[string]func(*host.Config){
		"zero workers":   func(c *host.Config) { c.Pools[0].Workers = 0 },
		"unknown plugin": func(c *host.Config) { c.Pools[0].Plugin = "nope" },
		"duplicate pool": func(c *host.Config) { c.Pools = append(c.Pools, c.Pools[0]) },
		"plugins dir":    func(c *host.Config) { c.PluginDir = t.TempDir() },
		"one-shot":       func(c *host.Config) { c.OneShot.MaxConcurrent = 99 },
	} {
		next := cfg
		next.PluginDir = pluginDir
		next.Pools = append([]host.PoolConfig(nil), cfg.Pools...)
		mutate(&next)
		assert.Error(t, m.Reload(next), name)
	}
	after := waitReady(t, m, "A")
	assert.Equal(t, pids(before), pids(after), "a refused reload changes nothing")
	_, err := m.Submit(context.Background(), "A", fault("echo"))
	require.NoError(t, err)
}
