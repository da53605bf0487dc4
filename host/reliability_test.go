package host_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

func TestReliability_timeoutKillsAndReplacesWorker(t *testing.T) {
	pc := misbehavePool("M", 2)
	pc.TaskTimeout = 300 * time.Millisecond
	m := newManager(t, pc)
	before := waitReady(t, m, "M")

	var wg sync.WaitGroup
	var okErr error
	wg.Go(func() { _, okErr = m.Submit(context.Background(), "M", fault("sleep", "ms", 100)) })
	for _, f := range []string{"hang", "busyhang"} {
		_, err := m.Submit(context.Background(), "M", fault(f))
		require.ErrorIs(t, err, host.ErrTimeout, f)
		assert.Equal(t, host.CodeTaskTimeout, host.Code(err))
		assert.Contains(t, err.Error(), "300ms")
	}
	wg.Wait()
	require.NoError(t, okErr, "a task on the other worker is untouched")

	after := waitUntil(t, m, "M", func(s host.PoolStats) bool {
		return s.Ready == 2 && s.Workers[0].Restarts+s.Workers[1].Restarts == 2
	})
	for _, w := range after.Workers {
		if w.Restarts > 0 {
			assert.Equal(t, "task_timeout", w.LastExit)
		}
	}
	for _, pid := range pids(before) {
		if !contains(pids(after), pid) {
			assert.False(t, testkit.Alive(pid), "a timed-out worker is killed")
		}
	}
}

func TestReliability_timeoutCountsQueueWait(t *testing.T) {
	pc := misbehavePool("M", 1)
	pc.TaskTimeout = time.Second
	m := newManager(t, pc)
	waitReady(t, m, "M")

	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() { _, firstErr = m.Submit(context.Background(), "M", fault("sleep", "ms", 700)) })
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 }, 5*time.Second, time.Millisecond)
	// Queued for ~700 ms, then 400 ms of work: within its 1 s only if the
	// clock started when it reached a worker.
	_, err := m.Submit(context.Background(), "M", fault("sleep", "ms", 400))
	require.ErrorIs(t, err, host.ErrTimeout)
	wg.Wait()
	require.NoError(t, firstErr)
	// The worker is kept when the plugin's own timer answered first
	// (task_timeout either way), and replaced when the host's did.
	waitUntil(t, m, "M", func(s host.PoolStats) bool { return s.Ready == 1 })
	_, err = m.Submit(context.Background(), "M", fault("echo"))
	require.NoError(t, err)
}

func TestReliability_queuedCallerGoneIsDropped(t *testing.T) {
	m := newManager(t, misbehavePool("M", 1))
	waitReady(t, m, "M")
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = m.Submit(context.Background(), "M", fault("sleep", "ms", 300)) })
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		_, err := m.Submit(ctx, "M", fault("echo"))
		queued <- err
	}()
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.QueueDepth == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	err := <-queued
	require.ErrorIs(t, err, context.Canceled)
	s, _ := m.Pool("M")
	assert.Zero(t, s.QueueDepth, "the queued task left the queue")
	wg.Wait()
	s = waitReady(t, m, "M")
	assert.Equal(t, 1, s.Workers[0].TasksDone, "the dropped task never ran")
	assert.Zero(t, s.Workers[0].Restarts, "dropping a queued task costs no worker")
}

func TestReliability_memoryLimit(t *testing.T) {
	pc := host.PoolConfig{Name: "MEM", Plugin: "memusage", Workers: 1, QueueLimit: 4, MemoryLimitMB: 64}
	m := newManager(t, pc)
	waitReady(t, m, "MEM")

	// SPEC's acceptance case: 300 MB under a 64 MB limit fails as such.
	start := time.Now()
	_, err := m.Submit(context.Background(), "MEM", []byte(`{"mb": 300, "duration": 1000}`))
	elapsed := time.Since(start)
	require.ErrorIs(t, err, host.ErrMemoryLimit)
	assert.Equal(t, host.CodeMemoryLimit, host.Code(err))
	assert.NotErrorIs(t, err, host.ErrWorkerCrashed)
	t.Logf("300 MB under 64 MB: %s after %s", host.Code(err), elapsed)
	s := waitUntil(t, m, "MEM", func(s host.PoolStats) bool { return s.Ready == 1 && s.Workers[0].Restarts == 1 })
	assert.Equal(t, "memory_limit_exceeded", s.Workers[0].LastExit)

	// Within the limit nothing is killed.
	_, err = m.Submit(context.Background(), "MEM", []byte(`{"mb": 40, "duration": 10}`))
	require.NoError(t, err)

	// One-shots: 100 MB under 256 MB succeeds, 300 MB under 64 MB does not.
	res, err := m.RunOnce(context.Background(), "memusage", []byte(`{"mb": 100, "duration": 10}`), host.RunOptions{MemoryLimitMB: 256})
	require.NoError(t, err)
	assert.Contains(t, string(res.Output), `"mb":100`)
	_, err = m.RunOnce(context.Background(), "memusage", []byte(`{"mb": 300}`), host.RunOptions{MemoryLimitMB: 64})
	require.ErrorIs(t, err, host.ErrMemoryLimit)
}

func TestReliability_memoryLeakAcrossTasks(t *testing.T) {
	pc := misbehavePool("M", 1)
	pc.MemoryLimitMB = 96
	m := newManager(t, pc)
	waitReady(t, m, "M")
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = m.Submit(context.Background(), "M", fault("leak", "mb", 30))
	}
	require.ErrorIs(t, err, host.ErrMemoryLimit, "a worker that leaks is stopped at its limit")
	waitReady(t, m, "M")
	_, err = m.Submit(context.Background(), "M", fault("echo"))
	require.NoError(t, err)
}

func TestReliability_failingStartBacksOff(t *testing.T) {
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), pluginDir, "misbehave-failstart")
	pc := host.PoolConfig{Name: "F", Plugin: "misbehave-failstart", Workers: 1, QueueLimit: 4}
	m := newManager(t, pc)

	s := waitUntil(t, m, "F", func(s host.PoolStats) bool { return s.LastError != "" })
	assert.Zero(t, s.Ready)
	assert.True(t, s.Degraded())
	assert.Contains(t, s.LastError, "failing at start on purpose")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := m.Submit(ctx, "F", fault("echo"))
	require.ErrorIs(t, err, host.ErrTimeout, "with no worker the task waits, then times out")

	// Back-off: 100 ms, 200 ms, 400 ms, 800 ms... a spinning restart loop
	// would have tried hundreds of times by now.
	time.Sleep(1200 * time.Millisecond)
	s, _ = m.Pool("F")
	assert.LessOrEqual(t, s.Workers[0].Restarts, 6, "restarts back off")
	assert.GreaterOrEqual(t, s.Workers[0].Restarts, 2)
	assert.Equal(t, "start_failed", s.Workers[0].LastExit)
}

func TestReliability_slowStart(t *testing.T) {
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), pluginDir, "misbehave-slowstart")
	m := newManager(t, host.PoolConfig{Name: "S", Plugin: "misbehave-slowstart", Workers: 1, QueueLimit: 4})
	_, err := m.Submit(context.Background(), "S", fault("echo"))
	require.NoError(t, err, "a slow worker is waited for")
}

func TestReliability_recycleAfterTasks(t *testing.T) {
	pc := misbehavePool("M", 1)
	pc.MaxTasksPerWorker = 3
	m := newManager(t, pc)
	served := map[int]int{}
	for range 12 {
		res, err := m.Submit(context.Background(), "M", fault("echo"))
		require.NoError(t, err, "recycling never fails a task")
		served[res.WorkerPID]++
	}
	assert.GreaterOrEqual(t, len(served), 3, "workers were recycled: %v", served)
	for pid, n := range served {
		assert.LessOrEqual(t, n, 4, "pid %d ran %d tasks; the limit is 3 ± 1", pid, n)
	}
	s := waitReady(t, m, "M")
	assert.Equal(t, "recycled", s.Workers[0].LastExit)
}

func TestReliability_recycleByAgeWaitsForTask(t *testing.T) {
	pc := misbehavePool("M", 1)
	pc.MaxWorkerAge = 200 * time.Millisecond
	m := newManager(t, pc)
	first := waitReady(t, m, "M").Workers[0].PID
	res, err := m.Submit(context.Background(), "M", fault("sleep", "ms", 500))
	require.NoError(t, err, "a worker past its age finishes its task first")
	assert.Equal(t, first, res.WorkerPID)
	s := waitUntil(t, m, "M", func(s host.PoolStats) bool { return s.Ready == 1 && s.Workers[0].PID != first })
	assert.Equal(t, "recycled", s.Workers[0].LastExit)
}

func TestReliability_childrenDieWithWorker(t *testing.T) {
	pc := misbehavePool("M", 1)
	pc.MaxTasksPerWorker = 1
	m := newManager(t, pc)
	res, err := m.Submit(context.Background(), "M", fault("spawn"))
	require.NoError(t, err)
	child := outputInt(t, res.Output, "childPid")
	require.NotZero(t, child)
	// The worker is recycled after its one task; the child, which ignores
	// SIGTERM, dies with its process group.
	require.Eventually(t, func() bool { return !testkit.Alive(child) }, 10*time.Second, 5*time.Millisecond,
		"a plugin's child outlived its worker")
}

func TestReliability_workerOutputReachesLog(t *testing.T) {
	var buf testkit.SyncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &buf})
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{misbehavePool("M", 1)}
	m := newManagerWith(t, cfg, logger)
	res, err := m.Submit(context.Background(), "M", fault("log", "lines", []string{"hello from the plugin"}))
	require.NoError(t, err)
	_, err = m.Submit(context.Background(), "M", fault("garbage"))
	require.NoError(t, err, "garbage on stdout and stderr does not hurt the worker")
	_, err = m.Submit(context.Background(), "M", fault("echo"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), "hello from the plugin") }, 5*time.Second, 5*time.Millisecond)
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, "hello from the plugin") {
			assert.Contains(t, line, "pool=M")
			assert.Contains(t, line, "plugin=misbehave")
			assert.Contains(t, line, "pid="+itoa(res.WorkerPID))
		}
	}
}

func TestReliability_noLitter(t *testing.T) {
	socketDir := t.TempDir()
	cfg := host.DefaultConfig()
	cfg.SocketDir = socketDir
	cfg.Pools = []host.PoolConfig{misbehavePool("M", 2)}
	m := newManagerWith(t, cfg, hclog.NewNullLogger())
	waitReady(t, m, "M")
	// Warm up once, then measure.
	_, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
	require.NoError(t, err)
	settle := func() (fds, goroutines int) {
		waitReady(t, m, "M")
		require.Eventually(t, func() bool { return len(testkit.Children()) == 2 }, 10*time.Second, 5*time.Millisecond)
		return countFDs(t), runtime.NumGoroutine()
	}
	fds0, g0 := settle()
	for i := range 20 {
		_, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
		require.NoError(t, err)
		if i%4 == 0 {
			_, err = m.Submit(context.Background(), "M", fault("sigkill"))
			require.ErrorIs(t, err, host.ErrWorkerCrashed)
			waitReady(t, m, "M")
		}
	}
	var fds1, g1 int
	require.Eventually(t, func() bool {
		fds1, g1 = settle()
		return fds1 <= fds0+2 && g1 <= g0+4
	}, 10*time.Second, 20*time.Millisecond, "fds %d→%d, goroutines %d→%d", fds0, fds1, g0, g1)
	// A one-shot's process, and its socket directory, go after its answer.
	var entries []os.DirEntry
	assert.Eventually(t, func() bool {
		entries, err = os.ReadDir(socketDir)
		return err == nil && len(entries) == 2
	}, 10*time.Second, 5*time.Millisecond, "one socket directory per live worker, none left by the dead: %v", entries)
}

func TestReliability_sigkillEveryWorkerRecovers(t *testing.T) {
	m := newManager(t, misbehavePool("M", 3))
	before := waitReady(t, m, "M")
	for _, pid := range pids(before) {
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	after := waitUntil(t, m, "M", func(s host.PoolStats) bool {
		if s.Ready != 3 {
			return false
		}
		for _, p := range pids(s) {
			if contains(pids(before), p) {
				return false
			}
		}
		return true
	})
	assert.Len(t, after.Workers, 3)
	_, err := m.Submit(context.Background(), "M", fault("echo"))
	require.NoError(t, err)
}

func countFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Issue 8 item 15: a worker killed because its task's caller went away is
// counted as canceled, not as a worker that exited on its own.
func TestReliability_callerGoneCountsCanceled(t *testing.T) {
	m := newManager(t, misbehavePool("M", 1))
	before := waitReady(t, m, "M")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Submit(ctx, "M", fault("hang"))
		done <- err
	}()
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	s := waitUntil(t, m, "M", func(s host.PoolStats) bool {
		return s.Ready == 1 && s.Workers[0].PID != before.Workers[0].PID
	})
	assert.Equal(t, "canceled", s.Workers[0].LastExit)
}

// Issue 8 item 6: idle workers that are frozen (SIGSTOP) are found by the
// health check and replaced; the pool is not ready meanwhile.
func TestReliability_frozenIdleWorkersReplaced(t *testing.T) {
	m := newManager(t, misbehavePool("M", 2))
	before := waitReady(t, m, "M")
	for _, pid := range pids(before) {
		require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	}
	s := waitUntil(t, m, "M", func(s host.PoolStats) bool {
		return s.Ready == 2 && !contains(pids(before), s.Workers[0].PID) && !contains(pids(before), s.Workers[1].PID)
	})
	assert.Equal(t, "unhealthy", s.Workers[0].LastExit)
	for _, pid := range pids(before) {
		assert.False(t, testkit.Alive(pid), "the frozen worker %d was killed", pid)
	}
	_, err := m.Submit(context.Background(), "M", fault("echo"))
	require.NoError(t, err)
}
