package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
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

// dropScript writes an executable shell script into the plugins directory
// under a name unique to the test, and removes it when the test ends.
func dropScript(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(pluginDir, name)
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755))
	t.Cleanup(func() { _ = os.Remove(path) })
	return name
}

// requireGone fails the test unless every process whose pid a script
// added to path has exited within bound: a descendant that left the
// plugin's process group must not outlive the plugin. One that lives on
// is killed.
func requireGone(t *testing.T, path string, bound time.Duration) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err, "no descendant of the plugin wrote its pid")
	for _, field := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(field)
		require.NoError(t, err)
		require.Positive(t, pid)
		if !waitGone(pid, bound) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			assert.Fail(t, "a descendant outlived its plugin", "pid %d, which left the plugin's process group, still runs %s later", pid, bound)
		}
	}
}

// runBounded runs a one-shot and fails the test if it does not answer
// within bound.
func runBounded(t *testing.T, m *host.Manager, name string, bound time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := m.RunOnce(context.Background(), name, []byte(`{}`), host.RunOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		require.FailNow(t, "the one-shot did not answer", "%s after %s", name, bound)
		return nil
	}
}

func TestProcess_childHoldingStdioDoesNotWedge(t *testing.T) {
	cfg := host.DefaultConfig()
	cfg.OneShot.StartTimeout = 2 * time.Second
	cfg.OneShot.Spares = 0
	m := newManagerWith(t, cfg, testLogger(t))
	dir := t.TempDir()
	// Each run's descendant adds its pid to a file and tells the plugin
	// through a fifo, so the plugin goes on only once it has.
	descendant := func(pids string) string {
		return "[ -p " + pids + ".fifo ] || mkfifo " + pids + ".fifo\n" +
			"setsid sh -c 'echo $$ >> " + pids + "; echo > " + pids + ".fifo; exec sleep 60' &\n" +
			"read ready < " + pids + ".fifo\n"
	}
	exits := dropScript(t, "holdexit-"+strconv.Itoa(os.Getpid()), descendant(dir+"/a")+"exit 1\n")
	garbles := dropScript(t, "holdgarble-"+strconv.Itoa(os.Getpid()), descendant(dir+"/b")+"echo garbage\nexec sleep 60\n")

	// More runs than one-shot places: a slot kept would turn into 429s.
	for i := range cfg.OneShot.MaxConcurrent + 1 {
		name := exits
		if i%2 == 1 {
			name = garbles
		}
		start := time.Now()
		err := runBounded(t, m, name, cfg.OneShot.StartTimeout+2*time.Second)
		require.Error(t, err)
		assert.Equal(t, host.CodeWorkerCrashed, host.Code(err), "run %d: %v", i, err)
		t.Logf("%s failed after %s", name, time.Since(start))
	}
	// Nothing a plugin starts outlives it, not even a descendant that
	// called setsid: wpm, their subreaper, kills them when the plugin goes.
	requireGone(t, dir+"/a", 5*time.Second)
	requireGone(t, dir+"/b", 5*time.Second)
}

func TestProcess_longStderrLineIsCut(t *testing.T) {
	var log testkit.SyncBuffer
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{misbehavePool("M", 1)}
	m := newManagerWith(t, cfg, hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Info}))
	before := waitReady(t, m, "M")

	long := strings.Repeat("x", 200*1024)
	_, err := m.Submit(context.Background(), "M", fault("log", "lines", []string{long, "after the long line"}))
	require.NoError(t, err)
	out, err := m.Submit(context.Background(), "M", fault("echo"))
	require.NoError(t, err)
	assert.Equal(t, before.Workers[0].PID, out.WorkerPID, "the worker lives on")
	require.Eventually(t, func() bool { return strings.Contains(log.String(), "after the long line") }, 5*time.Second, 5*time.Millisecond)
	assert.Contains(t, log.String(), "line cut: 139264 more bytes dropped")
}

func TestProcess_oneShotFDsClosedWhenReaped(t *testing.T) {
	// Without the garbage collector, an fd left to a finalizer stays open.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	cfg := host.DefaultConfig()
	cfg.OneShot.Spares = 0
	m := newManagerWith(t, cfg, hclog.NewNullLogger())
	run := func() {
		_, err := m.RunOnce(context.Background(), "misbehave", fault("echo"), host.RunOptions{})
		require.NoError(t, err)
	}
	run() // what wpm keeps open for good (sockets dir, catalog) is open now
	before := countFDs(t)
	for range 50 {
		run()
	}
	require.Eventually(t, func() bool { return countFDs(t) <= before }, 5*time.Second, 5*time.Millisecond,
		"fds: %d before 50 one-shots, %d after", before, countFDs(t))
}

func TestProcess_fatalErrorUnderMemoryLimitIsACrash(t *testing.T) {
	pc := misbehavePool("M", 1)
	pc.MemoryLimitMB = 64
	m := newManager(t, pc)
	waitReady(t, m, "M")
	_, err := m.Submit(context.Background(), "M", fault("mapwrite"))
	require.Error(t, err)
	assert.Equal(t, host.CodeWorkerCrashed, host.Code(err), "%v", err)
	assert.Contains(t, err.Error()+detailOf(err), "concurrent map")
}

// detailOf returns a task error's detail, if it has one.
func detailOf(err error) string {
	var te *host.TaskError
	if errors.As(err, &te) {
		return te.Detail
	}
	return ""
}

func TestProcess_otherTasksOfATimedOutWorkerCrashed(t *testing.T) {
	pc := misbehavePool("M", 1)
	pc.Concurrency = 2
	m := newManager(t, pc)
	waitReady(t, m, "M")

	var wg sync.WaitGroup
	var otherErr error
	wg.Go(func() { _, otherErr = m.Submit(context.Background(), "M", fault("sleep", "ms", 10_000)) })
	require.Eventually(t, func() bool { s, _ := m.Pool("M"); return s.Running == 1 }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := m.Submit(ctx, "M", fault("hang"))
	require.ErrorIs(t, err, host.ErrTimeout)
	wg.Wait()
	require.Error(t, otherErr)
	assert.Equal(t, host.CodeWorkerCrashed, host.Code(otherErr), "%v", otherErr)
	assert.NotErrorIs(t, otherErr, host.ErrTimeout)
}

func TestProcess_oneShotStartEndsWithItsContext(t *testing.T) {
	path := testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), pluginDir, "slowstart-ctx")
	t.Cleanup(func() { _ = os.Remove(path) })
	cfg := host.DefaultConfig()
	cfg.OneShot.Spares = 0
	m := newManagerWith(t, cfg, testLogger(t))
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, host.ErrTimeout)
	defer cancel()
	start := time.Now()
	_, err := m.RunOnce(ctx, "slowstart-ctx", fault("echo"), host.RunOptions{})
	require.Error(t, err)
	assert.Less(t, time.Since(start), time.Second, "the start does not outlast its context")
	assert.Equal(t, host.CodeTaskTimeout, host.Code(err), "%v", err)
}

func TestCode_nil(t *testing.T) {
	assert.Empty(t, host.Code(nil))
}
