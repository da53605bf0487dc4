package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
	"github.com/wpmdev/wpm/shared"
)

func TestManager_Submit_cpuload(t *testing.T) {
	m := newManager(t, host.PoolConfig{Name: "CPU", Plugin: "cpuload", Workers: 2})
	res, err := m.Submit(context.Background(), "CPU", []byte(`{"duration": 20}`))
	require.NoError(t, err)
	assert.Equal(t, "CPU", res.Pool)
	assert.Equal(t, "cpuload", res.Plugin)
	assert.NotEmpty(t, res.TaskID)
	assert.Equal(t, res.WorkerPID, outputPID(t, res.Output))
	assert.GreaterOrEqual(t, res.Duration, 20*time.Millisecond)
	var out struct {
		RequestedMs int     `json:"requestedMs"`
		ElapsedMs   float64 `json:"elapsedMs"`
	}
	require.NoError(t, json.Unmarshal(res.Output, &out))
	assert.Equal(t, 20, out.RequestedMs)
	assert.GreaterOrEqual(t, out.ElapsedMs, 20.0)
}

func TestManager_Submit_unknownPool(t *testing.T) {
	m := newManager(t, misbehavePool("A", 1), misbehavePool("B", 1))
	_, err := m.Submit(context.Background(), "nope", []byte(`{}`))
	require.ErrorIs(t, err, host.ErrUnknownPool)
	assert.Contains(t, err.Error(), "known pools: A, B")
	assert.Equal(t, host.CodeUnknownPool, host.Code(err))
	var te *host.TaskError
	require.ErrorAs(t, err, &te)
	assert.NotEmpty(t, te.TaskID)
}

func TestManager_Submit_invalidInputKeepsWorker(t *testing.T) {
	m := newManager(t, host.PoolConfig{Name: "CPU", Plugin: "cpuload", Workers: 1})
	before := waitReady(t, m, "CPU")
	for _, in := range []string{`{"duration": -1}`, `{"duration": "x"}`, `[]`, `{}`} {
		_, err := m.Submit(context.Background(), "CPU", []byte(in))
		require.ErrorIs(t, err, shared.ErrInvalidInput, in)
		assert.Equal(t, host.CodeInvalidTask, host.Code(err), in)
	}
	after := waitReady(t, m, "CPU")
	assert.Equal(t, pids(before), pids(after), "a rejected input must not cost a worker")
	assert.Equal(t, 4, after.Workers[0].TasksDone)
}

func TestManager_Submit_taskFailed(t *testing.T) {
	m := newManager(t, misbehavePool("M", 1))
	_, err := m.Submit(context.Background(), "M", fault("fail"))
	require.ErrorIs(t, err, shared.ErrTaskFailed)
	assert.Equal(t, host.CodeTaskFailed, host.Code(err))

	_, err = m.Submit(context.Background(), "M", fault("panic"))
	require.ErrorIs(t, err, shared.ErrTaskFailed, "a panic inside Run is recovered by the SDK")
	_, err = m.Submit(context.Background(), "M", fault("echo"))
	require.NoError(t, err, "the worker survives")
}

func TestManager_Submit_leastBusyDispatch(t *testing.T) {
	m := newManager(t, misbehavePool("M", 2))
	waitReady(t, m, "M")
	var wg sync.WaitGroup
	results := make([]host.Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { results[i], errs[i] = m.Submit(context.Background(), "M", fault("sleep", "ms", 300)) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assert.NotEqual(t, results[0].WorkerPID, results[1].WorkerPID, "two tasks on two idle workers must not share one")
}

func TestManager_Submit_queueFull(t *testing.T) {
	m := newManager(t, host.PoolConfig{Name: "M", Plugin: "misbehave", Workers: 1, QueueLimit: 1})
	waitReady(t, m, "M")
	release := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr, queuedErr error
	wg.Go(func() {
		_, firstErr = m.Submit(context.Background(), "M", fault("sleep", "ms", 400))
	})
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 }, 5*time.Second, time.Millisecond)
	wg.Go(func() {
		<-release
		_, queuedErr = m.Submit(context.Background(), "M", fault("echo"))
	})
	close(release)
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.QueueDepth == 1 }, 5*time.Second, time.Millisecond)

	_, err := m.Submit(context.Background(), "M", fault("echo"))
	require.ErrorIs(t, err, host.ErrQueueFull)
	assert.Equal(t, host.CodeQueueFull, host.Code(err))
	assert.Contains(t, err.Error(), "queueLimit")

	wg.Wait()
	assert.NoError(t, firstErr)
	assert.NoError(t, queuedErr, "the queued task runs once the worker is free")
}

func TestManager_workerKilledIsReplaced(t *testing.T) {
	m := newManager(t, misbehavePool("M", 2))
	before := waitReady(t, m, "M")
	victim := before.Workers[0].PID
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))

	after := waitUntil(t, m, "M", func(s host.PoolStats) bool {
		return s.Ready == 2 && s.Workers[0].PID != victim
	})
	assert.Equal(t, 1, after.Workers[0].Restarts)
	assert.Equal(t, "exited", after.Workers[0].LastExit)
	assert.False(t, testkit.Alive(victim))
	for range 10 {
		res, err := m.Submit(context.Background(), "M", fault("echo"))
		require.NoError(t, err)
		assert.NotEqual(t, victim, res.WorkerPID)
	}
}

func TestManager_crashFailsOnlyItsTask(t *testing.T) {
	m := newManager(t, misbehavePool("M", 2))
	waitReady(t, m, "M")
	var wg sync.WaitGroup
	var slowErr error
	wg.Go(func() { _, slowErr = m.Submit(context.Background(), "M", fault("sleep", "ms", 300)) })
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 }, 5*time.Second, time.Millisecond)

	for _, f := range []string{"crash", "exit", "sigkill"} {
		_, err := m.Submit(context.Background(), "M", fault(f, "lines", []string{"last words"}))
		require.ErrorIs(t, err, host.ErrWorkerCrashed, f)
		assert.Equal(t, host.CodeWorkerCrashed, host.Code(err), f)
		var te *host.TaskError
		require.ErrorAs(t, err, &te)
		assert.NotZero(t, te.WorkerPID)
		switch f {
		case "crash":
			assert.Contains(t, te.Detail, "panic:", "a crash keeps its last stderr lines")
		case "exit":
			assert.Contains(t, te.Detail, "last words")
			assert.Contains(t, err.Error(), "exit status 3")
		}
	}
	wg.Wait()
	assert.NoError(t, slowErr, "the task on the other worker is untouched")
	waitReady(t, m, "M")
	_, err := m.Submit(context.Background(), "M", fault("echo"))
	require.NoError(t, err)
}

func TestManager_RunOnce(t *testing.T) {
	m := newManager(t)
	res, err := m.RunOnce(context.Background(), "cpuload", []byte(`{"duration": 10}`), host.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, "cpuload", res.Plugin)
	assert.Empty(t, res.Pool)
	assert.Equal(t, res.WorkerPID, outputPID(t, res.Output))
	require.Eventually(t, func() bool { return !testkit.Alive(res.WorkerPID) }, 5*time.Second, time.Millisecond,
		"a one-shot process is killed after its task")

	// The seed named workers by path; the last element is what counts.
	res2, err := m.RunOnce(context.Background(), "./workers/cpuload", []byte(`{"duration": 1}`), host.RunOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, res.WorkerPID, res2.WorkerPID, "never reused")
}

func TestManager_RunOnce_errors(t *testing.T) {
	m := newManager(t)
	_, err := m.RunOnce(context.Background(), "cpuload", []byte(`{"duration": "soon"}`), host.RunOptions{})
	require.ErrorIs(t, err, shared.ErrInvalidInput)
	_, err = m.RunOnce(context.Background(), "misbehave", fault("exit"), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrWorkerCrashed)
}

func TestManager_RunOnce_pathTricks(t *testing.T) {
	m := newManager(t)
	for _, name := range []string{
		"", "..", "../cpuload", "../plugins/cpuload", "/bin/sh", "/usr/bin/true",
		"cpuload/../../../bin/sh", "sh", "nope", ".hidden", "-x", `..\cpuload`, "cpu\x00load",
		pluginDir + "/cpuload",
	} {
		_, err := m.RunOnce(context.Background(), name, []byte(`{"duration": 1}`), host.RunOptions{})
		require.ErrorIs(t, err, host.ErrUnknownPlugin, "%q", name)
		assert.Equal(t, host.CodeUnknownPlugin, host.Code(err))
		assert.Empty(t, testkit.Children(), "%q must not start anything", name)
	}
}

func TestManager_Shutdown_letsRunningTasksFinish(t *testing.T) {
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.Pools = []host.PoolConfig{misbehavePool("M", 1)}
	m, err := host.New(cfg, host.WithLogger(testLogger(t)))
	require.NoError(t, err)
	waitReady(t, m, "M")

	var wg sync.WaitGroup
	var inflightErr error
	wg.Go(func() { _, inflightErr = m.Submit(context.Background(), "M", fault("sleep", "ms", 300)) })
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.Shutdown(ctx))
	wg.Wait()
	assert.NoError(t, inflightErr, "an in-flight task finishes within the grace period")
	_, err = m.Submit(context.Background(), "M", fault("echo"))
	require.ErrorIs(t, err, host.ErrShuttingDown)
	_, err = m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrShuttingDown)
	testkit.RequireNoChildren(t)
}

func TestManager_Shutdown_graceEnds(t *testing.T) {
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.Pools = []host.PoolConfig{misbehavePool("M", 1)}
	m, err := host.New(cfg, host.WithLogger(testLogger(t)))
	require.NoError(t, err)
	waitReady(t, m, "M")

	var wg sync.WaitGroup
	var hungErr, oneShotErr error
	wg.Go(func() { _, hungErr = m.Submit(context.Background(), "M", fault("hang")) })
	wg.Go(func() { _, oneShotErr = m.RunOnce(context.Background(), "misbehave", fault("hang"), host.RunOptions{}) })
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 && len(testkit.Children()) == 2 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = m.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	wg.Wait()
	assert.ErrorIs(t, hungErr, host.ErrShuttingDown)
	assert.ErrorIs(t, oneShotErr, host.ErrShuttingDown)
	testkit.RequireNoChildren(t)
}

func TestManager_New_errors(t *testing.T) {
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.Pools = []host.PoolConfig{{Name: "X", Plugin: "nope", Workers: 1}}
	_, err := host.New(cfg)
	require.ErrorIs(t, err, host.ErrUnknownPlugin)
	assert.Contains(t, err.Error(), "pools[0].plugin")

	cfg.Pools = []host.PoolConfig{{Name: "X", Plugin: "cpuload", Workers: 0}}
	_, err = host.New(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pools[0].workers")

	cfg = host.DefaultConfig()
	cfg.PluginDir = "/does/not/exist"
	_, err = host.New(cfg)
	require.Error(t, err)
	assert.False(t, errors.Is(err, host.ErrUnknownPool))
}

// waitUntil waits until cond holds for the pool's stats and returns them.
func waitUntil(t *testing.T, m *host.Manager, pool string, cond func(host.PoolStats) bool) host.PoolStats {
	t.Helper()
	var s host.PoolStats
	require.Eventually(t, func() bool {
		s, _ = m.Pool(pool)
		return cond(s)
	}, 10*time.Second, 5*time.Millisecond)
	return s
}
