package host_test

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// pipelinedPool is a misbehave pool whose workers run one task at a time
// and may have prefetch more waiting at them.
func pipelinedPool(name string, workers, prefetch int) host.PoolConfig {
	p := misbehavePool(name, workers)
	p.Concurrency, p.Prefetch, p.QueueLimit = 1, prefetch, 256
	return p
}

// warmUp runs short tasks until the pool prefetches: its recent tasks
// must be known to be short.
func warmUp(t *testing.T, m *host.Manager, pool string) {
	t.Helper()
	for range 16 {
		_, err := m.Submit(context.Background(), pool, fault("echo"))
		require.NoError(t, err)
	}
}

// waitRunning waits until the pool's first worker holds n tasks, running
// or waiting at it, and returns its pid. It then lets the tasks reach the
// worker (see settle).
func waitRunning(t *testing.T, m *host.Manager, pool string, n int) int {
	t.Helper()
	s := waitUntil(t, m, pool, func(s host.PoolStats) bool { return s.Workers[0].Running == n })
	settle()
	return s.Workers[0].PID
}

// settle gives tasks just given to a worker time to be sent to it. A task
// is numbered when it is sent, not when it is given a worker, so one
// submitted right after another could otherwise reach the worker first.
func settle() { time.Sleep(100 * time.Millisecond) }

// submitAll submits n copies of input at once and returns their results
// and errors once all are done.
func submitAll(ctx context.Context, m *host.Manager, pool string, n int, input []byte) ([]host.Result, []error) {
	res, errs := make([]host.Result, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { res[i], errs[i] = m.Submit(ctx, pool, input) })
	}
	wg.Wait()
	return res, errs
}

func TestPipeline_crashSendsWaitingTasksElsewhere(t *testing.T) {
	m := newManager(t, pipelinedPool("P", 1, 4))
	m.SetStallAfter("P", time.Hour) // keep prefetching behind the long task
	waitReady(t, m, "P")
	warmUp(t, m, "P")

	var victimErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, victimErr = m.Submit(context.Background(), "P", fault("sleep", "ms", 60_000))
	}()
	victim := waitRunning(t, m, "P", 1)
	var (
		res  []host.Result
		errs []error
	)
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		res, errs = submitAll(context.Background(), m, "P", 4, fault("echo"))
	}()
	waitRunning(t, m, "P", 5) // all four wait at the worker
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))

	<-done
	require.ErrorIs(t, victimErr, host.ErrWorkerCrashed, "the task that had started fails")
	<-waited
	for i := range errs {
		require.NoError(t, errs[i], "a task that had not started is run elsewhere, not failed")
		assert.NotEqual(t, victim, res[i].WorkerPID)
	}
}

func TestPipeline_waitingTaskGivenUpKeepsWorker(t *testing.T) {
	// Known hang, about 1 run in 15 under load: the running task's answer
	// never arrives after the two waiting tasks give up (callSeq waits on
	// its call forever). Left for the pipelining issue (10), which stays
	// open; see its closing note.
	m := newManager(t, pipelinedPool("P", 1, 4))
	m.SetStallAfter("P", time.Hour)
	waitReady(t, m, "P")
	warmUp(t, m, "P")

	var longErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, longErr = m.Submit(context.Background(), "P", fault("sleep", "ms", 500))
	}()
	pid := waitRunning(t, m, "P", 1)

	// One waiting task runs past its caller's deadline, one loses its caller.
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelDeadline()
	gone, leave := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := m.Submit(deadline, "P", fault("echo")); errs <- err }()
	go func() { _, err := m.Submit(gone, "P", fault("echo")); errs <- err }()
	waitRunning(t, m, "P", 3)
	leave()
	for range 2 {
		err := <-errs
		require.Error(t, err)
		assert.Contains(t, []host.ErrorCode{host.CodeTaskTimeout, host.CodeCanceled}, host.Code(err), "%v", err)
	}
	waitRunning(t, m, "P", 1) // both left the worker at once

	<-done
	require.NoError(t, longErr, "the running task is untouched")
	res, err := m.Submit(context.Background(), "P", fault("echo"))
	require.NoError(t, err)
	assert.Equal(t, pid, res.WorkerPID, "the worker was not killed")
	s, err := m.Pool("P")
	require.NoError(t, err)
	assert.Zero(t, s.Workers[0].Restarts)
}

func TestPipeline_longTaskDoesNotHoldShortOnes(t *testing.T) {
	m := newManager(t, pipelinedPool("P", 2, 4))
	waitReady(t, m, "P")
	warmUp(t, m, "P")

	done := make(chan error, 1)
	go func() {
		_, err := m.Submit(context.Background(), "P", fault("sleep", "ms", 1500))
		done <- err
	}()
	s := waitUntil(t, m, "P", func(s host.PoolStats) bool { return s.Running == 1 })
	long := s.Workers[0].PID
	if s.Workers[1].Running == 1 {
		long = s.Workers[1].PID
	}
	settle()
	// Bursts of short tasks: whatever was sent to the busy worker before
	// it counted as stuck is taken back for the free one.
	for range 5 {
		res, errs := submitAll(context.Background(), m, "P", 8, fault("echo"))
		for i := range errs {
			require.NoError(t, errs[i])
			assert.NotEqual(t, long, res[i].WorkerPID, "a short task ran behind the long one")
		}
	}
	require.NoError(t, <-done)
}

func TestPipeline_timeoutKillsRunningTaskOnly(t *testing.T) {
	m := newManager(t, pipelinedPool("P", 1, 4))
	m.SetStallAfter("P", time.Hour)
	waitReady(t, m, "P")
	warmUp(t, m, "P")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	slowErr := make(chan error, 1)
	go func() { _, err := m.Submit(ctx, "P", fault("hang")); slowErr <- err }()
	victim := waitRunning(t, m, "P", 1)
	res, errs := submitAll(context.Background(), m, "P", 3, fault("echo"))
	require.ErrorIs(t, <-slowErr, host.ErrTimeout, "the running task times out and its worker is killed")
	for i := range errs {
		require.NoError(t, errs[i], "the tasks waiting behind it run on the replacement")
		assert.NotEqual(t, victim, res[i].WorkerPID)
	}
}
