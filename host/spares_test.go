package host_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// newSpareManager starts a manager without pools whose one-shots keep
// spares warm spares per plugin, at most maxConcurrent processes at once;
// edit may change the config further. It is shut down, and no worker may
// be left, when the test ends.
func newSpareManager(t *testing.T, spares, maxConcurrent int, edit ...func(*host.Config)) *host.Manager {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.OneShot.Spares = spares
	cfg.OneShot.MaxConcurrent = maxConcurrent
	for _, e := range edit {
		e(&cfg)
	}
	return newManagerWith(t, cfg, testLogger(t))
}

// spareStats returns the spares of plugin, or zero stats if it has none.
func spareStats(m *host.Manager, plugin string) host.SpareStats {
	for _, s := range m.OneShots().Spares {
		if s.Plugin == plugin {
			return s
		}
	}
	return host.SpareStats{}
}

// waitSpares waits until plugin has n ready spares, every one a live child
// of this test, none starting, and returns their pids.
func waitSpares(t *testing.T, m *host.Manager, plugin string, n int) []int {
	t.Helper()
	var s host.SpareStats
	require.Eventually(t, func() bool {
		s = spareStats(m, plugin)
		if len(s.ReadyPIDs) != n || s.Starting != 0 {
			return false
		}
		kids := testkit.Children()
		for _, pid := range s.ReadyPIDs {
			if !slices.Contains(kids, pid) {
				return false
			}
		}
		return true
	}, 10*time.Second, 2*time.Millisecond, "want %d ready spares of %s, have %+v", n, plugin, s)
	return s.ReadyPIDs
}

func TestSpares_lazyPerPlugin(t *testing.T) {
	m := newSpareManager(t, 1, 8)
	assert.Empty(t, m.OneShots().Spares, "no plugin has been run yet")
	assert.Empty(t, testkit.Children(), "nothing is started ahead of the first run")

	res, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	waitSpares(t, m, "misbehave", 1)
	s := m.OneShots()
	require.Len(t, s.Spares, 1, "only the plugin that ran gets spares")
	assert.Equal(t, 1, s.Spares[0].Cold, "the first run started its own process")
	assert.Zero(t, s.Spares[0].Used)
	assert.NotContains(t, s.Spares[0].ReadyPIDs, res.WorkerPID)
}

func TestSpares_eachUsedOnceAndReplaced(t *testing.T) {
	m := newSpareManager(t, 1, 8)
	_, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
	require.NoError(t, err)

	var used []int
	for range 3 {
		spare := waitSpares(t, m, "misbehave", 1)[0]
		res, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
		require.NoError(t, err)
		assert.Equal(t, spare, res.WorkerPID, "the run got the process started before it")
		assert.Equal(t, spare, outputPID(t, res.Output))
		used = append(used, res.WorkerPID)
		require.Eventually(t, func() bool { return !testkit.Alive(spare) }, 5*time.Second, 2*time.Millisecond,
			"a spare is killed after its one task")
	}
	slices.Sort(used)
	assert.Len(t, slices.Compact(used), 3, "every run had a spare of its own")
	next := waitSpares(t, m, "misbehave", 1)
	assert.NotContains(t, used, next[0], "the last spare was replaced")
	s := spareStats(m, "misbehave")
	assert.Equal(t, 3, s.Used)
	assert.Equal(t, 1, s.Cold)
	assert.Zero(t, s.Lost)
}

func TestSpares_memoryLimitOfTheRunApplies(t *testing.T) {
	m := newSpareManager(t, 1, 8, func(c *host.Config) { c.OneShot.MemoryLimitMB = 1024 })
	_, err := m.RunOnce(context.Background(), "memusage", []byte(`{"mb": 1}`), host.RunOptions{})
	require.NoError(t, err)

	// Lower than the spare's: the spare runs it under the run's limit.
	spare := waitSpares(t, m, "memusage", 1)[0]
	_, err = m.RunOnce(context.Background(), "memusage", []byte(`{"mb": 300, "duration": 1000}`), host.RunOptions{MemoryLimitMB: 64})
	require.ErrorIs(t, err, host.ErrMemoryLimit)
	var te *host.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, spare, te.WorkerPID, "the spare ran the task")

	spare = waitSpares(t, m, "memusage", 1)[0]
	res, err := m.RunOnce(context.Background(), "memusage", []byte(`{"mb": 40, "duration": 10}`), host.RunOptions{MemoryLimitMB: 128})
	require.NoError(t, err, "within the lowered limit nothing is killed")
	assert.Equal(t, spare, res.WorkerPID)

	// Higher than the spare's: a limit can not be raised, so a fresh
	// process runs it and the spare waits on.
	spare = waitSpares(t, m, "memusage", 1)[0]
	res, err = m.RunOnce(context.Background(), "memusage", []byte(`{"mb": 1}`), host.RunOptions{MemoryLimitMB: 2048})
	require.NoError(t, err)
	assert.NotEqual(t, spare, res.WorkerPID)
	assert.Equal(t, []int{spare}, waitSpares(t, m, "memusage", 1))
	s := spareStats(m, "memusage")
	assert.Equal(t, 2, s.Used)
	assert.Equal(t, 2, s.Cold)
}

func TestSpares_timeoutApplies(t *testing.T) {
	m := newSpareManager(t, 1, 8)
	_, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	spare := waitSpares(t, m, "misbehave", 1)[0]
	_, err = m.RunOnce(context.Background(), "misbehave", fault("hang"), host.RunOptions{Timeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, host.ErrTimeout)
	var te *host.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, spare, te.WorkerPID)
	require.Eventually(t, func() bool { return !testkit.Alive(spare) }, 5*time.Second, 2*time.Millisecond)
}

func TestSpares_deadSpareIsNotHandedOut(t *testing.T) {
	m := newSpareManager(t, 1, 8)
	_, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	spare := waitSpares(t, m, "misbehave", 1)[0]
	require.NoError(t, syscall.Kill(spare, syscall.SIGKILL))
	require.Eventually(t, func() bool { return !testkit.Alive(spare) }, 5*time.Second, time.Millisecond)

	res, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
	require.NoError(t, err, "a run never gets a dead spare")
	assert.NotEqual(t, spare, res.WorkerPID)

	// It is replaced after a back-off.
	next := waitSpares(t, m, "misbehave", 1)
	assert.NotEqual(t, spare, next[0])
	s := spareStats(m, "misbehave")
	assert.Equal(t, 1, s.Lost)
	assert.Contains(t, s.LastError, "exited while waiting")
}

func TestSpares_neverStarveRuns(t *testing.T) {
	// One place in all: after a run of misbehave, its spare holds it.
	m := newSpareManager(t, 1, 1, func(c *host.Config) { c.OneShot.MaxWait = 10 * time.Second })
	_, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	spare := waitSpares(t, m, "misbehave", 1)[0]
	assert.Equal(t, 1, m.OneShots().Places)

	// A run of another plugin takes the spare's place.
	res, err := m.RunOnce(context.Background(), "cpuload", []byte(`{"duration": 0}`), host.RunOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, spare, res.WorkerPID)
	assert.Equal(t, 1, spareStats(m, "misbehave").Evicted)
	require.Eventually(t, func() bool { return !testkit.Alive(spare) }, 5*time.Second, 2*time.Millisecond)

	// Concurrent runs of two plugins through one place all get through:
	// no spare keeps a run waiting past its turn.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			name, in := "misbehave", fault("echo")
			if i%2 == 1 {
				name, in = "cpuload", []byte(`{"duration": 0}`)
			}
			_, errs[i] = m.RunOnce(context.Background(), name, in, host.RunOptions{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	s := m.OneShots()
	assert.LessOrEqual(t, s.Places, 1, "spares count against oneShot.maxConcurrent")
	assert.LessOrEqual(t, len(testkit.Children()), 2, "one process, and at most one being killed")
}

func TestSpares_shutdownStopsThem(t *testing.T) {
	for name, wait := range map[string]bool{"ready": true, "starting": false} {
		t.Run(name, func(t *testing.T) {
			m := newSpareManager(t, 2, 8)
			_, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
			require.NoError(t, err)
			if wait {
				waitSpares(t, m, "misbehave", 2)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, m.Shutdown(ctx))
			testkit.RequireNoChildren(t)
			assert.Empty(t, spareStats(m, "misbehave").ReadyPIDs)
			_, err = m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
			require.ErrorIs(t, err, host.ErrShuttingDown)
		})
	}
}

// Issue 8 item 2: a plugin that can not start gets no spares, so broken
// plugins never hold one-shot places that runs of good plugins need.
func TestSpares_brokenPluginsHoldNoPlaces(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"broken1", "broken2", "broken3"} {
		testkit.CopyPlugin(t, "/bin/true", dir, name)
	}
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "cpuload"), dir, "cpuload")
	m := newSpareManager(t, 1, 8, func(c *host.Config) { c.PluginDir = dir })
	for _, name := range []string{"broken1", "broken2", "broken3"} {
		_, err := m.RunOnce(context.Background(), name, []byte(`{}`), host.RunOptions{})
		require.ErrorIs(t, err, host.ErrWorkerCrashed)
	}
	// Eight parallel runs of a good plugin all get a place.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = m.RunOnce(context.Background(), "cpuload", []byte(`{"duration": 300}`), host.RunOptions{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	for _, name := range []string{"broken1", "broken2", "broken3"} {
		s := spareStats(m, name)
		assert.Zero(t, s.Lost+s.Starting+len(s.ReadyPIDs), "%s got no spare: %+v", name, s)
	}
}

// A plugin whose spare failed gets no new one until a run of it succeeds.
func TestSpares_lostSpareNotRetriedUntilARunSucceeds(t *testing.T) {
	dir := t.TempDir()
	path := testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), dir, "worker")
	m := newSpareManager(t, 1, 8, func(c *host.Config) { c.PluginDir = dir })
	_, err := m.RunOnce(context.Background(), "worker", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	spare := waitSpares(t, m, "worker", 1)[0]

	// The plugin breaks and its spare dies: no replacement is started.
	testkit.CopyPlugin(t, "/bin/true", dir, "worker.new")
	require.NoError(t, os.Rename(filepath.Join(dir, "worker.new"), path))
	require.NoError(t, syscall.Kill(spare, syscall.SIGKILL))
	require.Eventually(t, func() bool { return spareStats(m, "worker").Lost == 1 }, 10*time.Second, time.Millisecond)
	_, err = m.RunOnce(context.Background(), "worker", fault("echo"), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrWorkerCrashed)
	s := spareStats(m, "worker")
	assert.Zero(t, s.Starting+len(s.ReadyPIDs), "no spare of a plugin that fails: %+v", s)
	assert.Equal(t, 0, m.OneShots().Places)

	// Fixed, and run once: it gets spares again.
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), dir, "worker.new")
	require.NoError(t, os.Rename(filepath.Join(dir, "worker.new"), path))
	_, err = m.RunOnce(context.Background(), "worker", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	waitSpares(t, m, "worker", 1)
	assert.Equal(t, 1, spareStats(m, "worker").Lost)
}

func TestSpares_replacedBinaryRunsAtOnce(t *testing.T) {
	dir := t.TempDir()
	path := testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), dir, "worker")
	m := newSpareManager(t, 1, 8, func(c *host.Config) { c.PluginDir = dir })
	_, err := m.RunOnce(context.Background(), "worker", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	old := waitSpares(t, m, "worker", 1)[0]

	// A new build is dropped in (renamed over the old, as installers do):
	// the spare still runs the old one, so the next run starts the new.
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "cpuload"), dir, "worker.new")
	require.NoError(t, os.Rename(filepath.Join(dir, "worker.new"), path))
	res, err := m.RunOnce(context.Background(), "worker", []byte(`{"duration": 0}`), host.RunOptions{})
	require.NoError(t, err, "the new binary (cpuload) answers, not the spare of the old one (misbehave)")
	assert.NotEqual(t, old, res.WorkerPID)
	assert.Contains(t, string(res.Output), `"requestedMs":0`)
	require.Eventually(t, func() bool { return !testkit.Alive(old) }, 5*time.Second, 2*time.Millisecond)

	// Its replacement runs the new binary.
	next := waitSpares(t, m, "worker", 1)[0]
	res, err = m.RunOnce(context.Background(), "worker", []byte(`{"duration": 0}`), host.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, next, res.WorkerPID)
}

func TestSpares_removedPluginIsForgotten(t *testing.T) {
	dir := t.TempDir()
	path := testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), dir, "worker")
	m := newSpareManager(t, 1, 8, func(c *host.Config) { c.PluginDir = dir })
	_, err := m.RunOnce(context.Background(), "worker", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	spare := waitSpares(t, m, "worker", 1)[0]

	// The plugin is removed, and its spare dies: no replacement is tried
	// for a binary that is gone, and the plugin leaves the stats.
	require.NoError(t, os.Remove(path))
	require.NoError(t, syscall.Kill(spare, syscall.SIGKILL))
	require.Eventually(t, func() bool { s := m.OneShots(); return len(s.Spares) == 0 && s.Places == 0 }, 10*time.Second, 2*time.Millisecond,
		"the dead spare's plugin and place are given up")
	_, err = m.RunOnce(context.Background(), "worker", fault("echo"), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrUnknownPlugin)
}
