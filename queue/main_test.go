package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

var pluginDir string

func TestMain(m *testing.M) {
	os.Exit(testkit.RunMain(m, func(root string) error {
		pluginDir = filepath.Join(root, "plugins")
		if err := testkit.BuildPlugins(pluginDir); err != nil {
			return err
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "flaky"), "./queue/testdata/flaky")
		cmd.Dir = testkit.ModuleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build flaky: %w\n%s", err, stderr.String())
		}
		return nil
	}))
}

// testPools are the pools of newEngine: F (flaky, one worker, two
// retries), M (misbehave, one worker, 2 s task timeout, no retries) and R
// (misbehave, one retry, task_failed included).
func testPools() []host.PoolConfig {
	return []host.PoolConfig{
		{Name: "F", Plugin: "flaky", Workers: 1},
		{Name: "M", Plugin: "misbehave", Workers: 1, TaskTimeout: 2 * time.Second},
		{Name: "R", Plugin: "misbehave", Workers: 1},
	}
}

// testRetries are the retry policies of testPools.
func testRetries() map[string]Retries {
	return map[string]Retries{
		"F": {Max: 2, Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		"R": {Max: 1, Backoff: 10 * time.Millisecond, OnTaskFailed: true},
	}
}

// newManager starts a manager over pools and shuts it down at the end.
func newManager(t testing.TB, pools []host.PoolConfig) *host.Manager {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.Pools = pools
	mgr, err := host.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, mgr.Shutdown(ctx))
		testkit.RequireNoChildren(t)
	})
	return mgr
}

// testOptions are fast settings for tests, with a store in dir.
func testOptions(dir string) Options {
	return Options{StoreDir: dir, AckWait: 2 * time.Second, PollInterval: 50 * time.Millisecond, MaxResultBytes: 1000, Logger: testLogger(), Retries: testRetries()}
}

// startEngine starts an engine over mgr and stops it at the end, before
// the manager shuts down.
func startEngine(t testing.TB, mgr *host.Manager, opts Options) *Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := Start(ctx, mgr, opts)
	require.NoError(t, err)
	t.Cleanup(func() { stopEngine(t, e) })
	return e
}

// stopEngine stops e with a short grace period; a second call does nothing.
func stopEngine(t testing.TB, e *Engine) {
	t.Helper()
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.Stop(ctx)
}

// newEngine is an engine over testPools with a store in a temporary
// directory.
func newEngine(t *testing.T) *Engine {
	t.Helper()
	return startEngine(t, newManager(t, testPools()), testOptions(t.TempDir()))
}

// submit submits input to pool and returns the queued record.
func submit(t *testing.T, e *Engine, pool, input string) Task {
	t.Helper()
	task, err := e.Submit(context.Background(), Request{Pool: pool, Input: []byte(input)})
	require.NoError(t, err)
	require.Equal(t, StateQueued, task.State)
	return task
}

// waitFor watches the task's record until ok accepts it, for at most 15 s,
// and returns it.
func waitFor(t *testing.T, e *Engine, id string, ok func(Task) bool) Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	w, err := e.kv.Watch(ctx, id)
	require.NoError(t, err)
	defer func() { _ = w.Stop() }()
	var last Task
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("task %s never reached the awaited state; last %+v", id, last)
		case entry := <-w.Updates():
			if entry == nil || entry.Operation() != jetstream.KeyValuePut {
				continue
			}
			var next Task
			require.NoError(t, json.Unmarshal(entry.Value(), &next))
			last = next
			if ok(last) {
				return last
			}
		}
	}
}

// inState is a waitFor condition.
func inState(s State) func(Task) bool { return func(t Task) bool { return t.State == s } }

// ended is a waitFor condition.
func ended(t Task) bool { return t.State.Ended() }

// testLogger is a debug logger on stderr when WPMTEST_LOG is set, else
// nil (no log).
func testLogger() hclog.Logger {
	if os.Getenv("WPMTEST_LOG") == "" {
		return nil
	}
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Debug})
}
