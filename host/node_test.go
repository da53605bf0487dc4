package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// Node.js worker scripts: real node processes on the scripts in
// testdata/node, which speak the Node.js WorkerPoolManager's protocol, and
// on that project's own scripts when they are beside the repository.

// packageDir is this package's source folder: the tests run elsewhere.
var packageDir, _ = os.Getwd()

// nodeScripts is the folder of the test scripts.
func nodeScripts(*testing.T) string { return filepath.Join(packageDir, "testdata", "node") }

// nodePool is a one-worker pool of script.
func nodePool(t *testing.T, name, script string) host.PoolConfig {
	pc := host.DefaultPoolConfig()
	pc.Name, pc.Plugin, pc.Script, pc.Workers = name, "", script, 1
	return pc
}

func submitJSON(t *testing.T, m *host.Manager, pool string, input any) (host.Result, error) {
	t.Helper()
	b, err := json.Marshal(input)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return m.Submit(ctx, pool, b)
}

func TestNode_poolAnswersAsTheNodeProjectDoes(t *testing.T) {
	m := newManager(t, nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js")))
	res, err := submitJSON(t, m, "js", map[string]any{"n": 1})
	require.NoError(t, err)
	var echo map[string]any
	require.NoError(t, json.Unmarshal(res.Output, &echo))
	// The script returns the work message it was sent: the Node.js
	// project's message, with the task's id.
	assert.Equal(t, map[string]any{"data": map[string]any{"n": 1.0}, "id": res.TaskID, "type": "work", "poolName": "js"}, echo)
	assert.Equal(t, "worker.js", res.Plugin)
	s := waitReady(t, m, "js")
	assert.Equal(t, res.WorkerPID, s.Workers[0].PID)
}

func TestNode_tasksInterleaveUpToConcurrency(t *testing.T) {
	pc := nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js"))
	pc.Concurrency = 4
	m := newManager(t, pc)
	waitReady(t, m, "js")
	type span struct{ PID, Start, End int64 }
	spans := make([]span, 4)
	var wg sync.WaitGroup
	for i := range spans {
		wg.Go(func() {
			res, err := submitJSON(t, m, "js", map[string]any{"mode": "sleep", "ms": 300})
			if assert.NoError(t, err) {
				assert.NoError(t, json.Unmarshal(res.Output, &spans[i]))
			}
		})
	}
	wg.Wait()
	for _, s := range spans[1:] {
		assert.Equal(t, spans[0].PID, s.PID, "one process runs them all")
		assert.Less(t, s.Start, spans[0].End, "the tasks ran at the same time in one process")
		assert.Less(t, spans[0].Start, s.End, "the tasks ran at the same time in one process")
	}
}

func TestNode_errorReplyIsTaskFailedAndWorkerStays(t *testing.T) {
	m := newManager(t, nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js")))
	first, err := submitJSON(t, m, "js", map[string]any{})
	require.NoError(t, err)
	_, err = submitJSON(t, m, "js", map[string]any{"mode": "fail"})
	require.Error(t, err)
	assert.Equal(t, host.CodeTaskFailed, host.Code(err))
	assert.Contains(t, err.Error(), "the task failed on purpose")
	again, err := submitJSON(t, m, "js", map[string]any{})
	require.NoError(t, err)
	assert.Equal(t, first.WorkerPID, again.WorkerPID)
}

func TestNode_scriptThatThrowsAfterReplyingIsReplaced(t *testing.T) {
	m := newManager(t, nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js")))
	first, err := submitJSON(t, m, "js", map[string]any{})
	require.NoError(t, err)
	_, err = submitJSON(t, m, "js", map[string]any{"mode": "throw"})
	require.Error(t, err)
	assert.Equal(t, host.CodeTaskFailed, host.Code(err), "the task gets the script's answer: %v", err)
	assert.Contains(t, err.Error(), "thrown on purpose")
	next, err := submitJSON(t, m, "js", map[string]any{})
	require.NoError(t, err, "the next task is not handed to the dying worker")
	assert.NotEqual(t, first.WorkerPID, next.WorkerPID)
}

func TestNode_crashIsWorkerCrashedWithStderr(t *testing.T) {
	m := newManager(t, nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js")))
	_, err := submitJSON(t, m, "js", map[string]any{"mode": "crash"})
	require.Error(t, err)
	assert.Equal(t, host.CodeWorkerCrashed, host.Code(err))
	te, ok := errors.AsType[*host.TaskError](err)
	require.True(t, ok)
	assert.Contains(t, te.Detail, "about to crash on purpose")
	_, err = submitJSON(t, m, "js", map[string]any{})
	require.NoError(t, err, "a replacement takes the next task")
}

func TestNode_timeoutKillsAndReplaces(t *testing.T) {
	pc := nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js"))
	pc.TaskTimeout = 300 * time.Millisecond
	m := newManager(t, pc)
	first := waitReady(t, m, "js").Workers[0].PID
	_, err := submitJSON(t, m, "js", map[string]any{"mode": "hang"})
	require.Error(t, err)
	assert.Equal(t, host.CodeTaskTimeout, host.Code(err))
	res, err := submitJSON(t, m, "js", map[string]any{})
	require.NoError(t, err)
	assert.NotEqual(t, first, res.WorkerPID)
}

func TestNode_memoryLimitCoversArrayBuffers(t *testing.T) {
	pc := nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js"))
	pc.MemoryLimitMB = 128
	m := newManager(t, pc)
	res, err := submitJSON(t, m, "js", map[string]any{"mode": "alloc", "mb": 16})
	require.NoError(t, err, "a task under the limit runs")
	_, err = submitJSON(t, m, "js", map[string]any{"mode": "alloc", "mb": 400})
	require.Error(t, err)
	assert.Equal(t, host.CodeMemoryLimit, host.Code(err), "%v", err)
	next, err := submitJSON(t, m, "js", map[string]any{})
	require.NoError(t, err)
	assert.NotEqual(t, res.WorkerPID, next.WorkerPID)
}

func TestNode_progressReachesTheCaller(t *testing.T) {
	m := newManager(t, nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js")))
	var mu sync.Mutex
	var got []host.Event
	listen := host.TaskEvents(func(e host.Event) {
		if e.Type == host.EventTaskProgress {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		}
	})
	_, err := m.Submit(context.Background(), "js", []byte(`{"mode":"progress"}`), listen)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2)
	assert.Equal(t, 0.5, got[0].Fraction)
	assert.Equal(t, "half", got[0].Message)
	assert.Equal(t, 1.0, got[1].Fraction)
}

func TestNode_scriptThatNeverAnswersInitFailsToStart(t *testing.T) {
	pc := nodePool(t, "js", filepath.Join(nodeScripts(t), "noinit.js"))
	pc.StartTimeout = 2 * time.Second
	m := newManager(t, pc)
	s := waitUntil(t, m, "js", func(s host.PoolStats) bool { return s.LastError != "" })
	assert.Contains(t, s.LastError, "initDone")
	assert.Contains(t, s.LastError, "starting, but never ready", "the error carries the script's stderr")
	assert.Zero(t, s.Ready)
}

func TestNode_nodeMissingSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	m := newManager(t, nodePool(t, "js", filepath.Join(nodeScripts(t), "worker.js")))
	s := waitUntil(t, m, "js", func(s host.PoolStats) bool { return s.LastError != "" })
	assert.Contains(t, s.LastError, "Node.js is needed")
	assert.Contains(t, s.LastError, "apt-get install nodejs")
}

func TestNode_poolConfigNamesPluginOrScript(t *testing.T) {
	both := nodePool(t, "both", "x.js")
	both.Plugin = "cpuload"
	neither := nodePool(t, "neither", "")
	for _, pc := range []host.PoolConfig{both, neither} {
		cfg := host.DefaultConfig()
		cfg.Pools = []host.PoolConfig{pc}
		err := cfg.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), `pool "`+pc.Name+`"`)
	}
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{nodePool(t, "gone", filepath.Join(t.TempDir(), "missing.js"))}
	_, err := host.New(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pools[0].script")
}

func TestNode_oneShotsRunOnlyScriptsInTheirFolder(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "evil.js"), []byte(`require("fs").writeFileSync(process.argv[1] + ".ran", "")`), 0o644))
	dir := t.TempDir()
	for _, f := range []string{"worker.js", "notes.txt"} {
		b, err := os.ReadFile(filepath.Join(nodeScripts(t), f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	require.NoError(t, os.Symlink(filepath.Join(outside, "evil.js"), filepath.Join(dir, "link.js")))
	cfg := host.DefaultConfig()
	cfg.ScriptsDir = dir
	m := newManagerWith(t, cfg, testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	res, err := m.RunOnce(ctx, "./workers/worker.js", []byte(`{"n":2}`), host.RunOptions{MemoryLimitMB: 256})
	require.NoError(t, err)
	assert.Equal(t, "worker.js", res.Plugin)
	assert.Contains(t, string(res.Output), `"data":{"n":2}`)

	for _, name := range []string{"link.js", "../" + filepath.Base(outside) + "/evil.js", filepath.Join(outside, "evil.js"), "evil.js", "notes.txt"} {
		_, err := m.RunOnce(ctx, name, []byte(`{}`), host.RunOptions{})
		require.Error(t, err, name)
		assert.Equal(t, host.CodeUnknownPlugin, host.Code(err), name)
	}
	_, err = os.Stat(filepath.Join(outside, "evil.js.ran"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing outside the folder ran")

	plugins, err := m.Plugins()
	require.NoError(t, err)
	var names []string
	for _, p := range plugins {
		names = append(names, p.Name)
		if p.Name == "worker.js" {
			assert.Equal(t, host.ProtocolNode, p.Protocol)
		}
	}
	assert.Contains(t, names, "worker.js")
	assert.Contains(t, names, "cpuload")
	assert.NotContains(t, names, "notes.txt")
	assert.NotContains(t, names, "link.js")
}

// seedWorkers is the Node.js project's workers folder beside the
// repository (../shared/seed/node/workers), read as it is.
func seedWorkers(t *testing.T) string {
	t.Helper()
	for _, up := range []string{"..", filepath.Join("..", "..")} {
		dir := filepath.Join(packageDir, "..", up, "shared", "seed", "node", "workers")
		if _, err := os.Stat(filepath.Join(dir, "exampleWorker_CPULoad.js")); err == nil {
			return dir
		}
	}
	t.Skip("the Node.js project's scripts are not beside the repository (../shared/seed/node/workers)")
	return ""
}

func TestNode_theNodeProjectsScriptsRunUnchanged(t *testing.T) {
	dir := seedWorkers(t)
	cpu := nodePool(t, "CPU", filepath.Join(dir, "exampleWorker_CPULoad.js"))
	mem := nodePool(t, "MEM", filepath.Join(dir, "exampleWorker_MemoryUsage.js"))
	mem.MemoryLimitMB = 200
	m := newManager(t, cpu, mem)

	res, err := submitJSON(t, m, "CPU", map[string]any{"duration": 20})
	require.NoError(t, err)
	var echo map[string]any
	require.NoError(t, json.Unmarshal(res.Output, &echo))
	assert.Equal(t, map[string]any{"data": map[string]any{"duration": 20.0}, "id": res.TaskID, "type": "work", "poolName": "CPU"}, echo)

	_, err = submitJSON(t, m, "MEM", map[string]any{"mb": 20, "duration": 10})
	require.NoError(t, err)
	_, err = submitJSON(t, m, "MEM", map[string]any{"mb": 600, "duration": 10})
	require.Error(t, err)
	assert.Equal(t, host.CodeMemoryLimit, host.Code(err), "%v", err)
	_, err = submitJSON(t, m, "MEM", map[string]any{"mb": 20, "duration": 10})
	require.NoError(t, err, "the worker was replaced")
	assert.False(t, strings.Contains(res.Plugin, "/"))
}

func TestNode_oneShotSparesOfAScript(t *testing.T) {
	m := newSpareManager(t, 1, 4, func(c *host.Config) { c.ScriptsDir = nodeScripts(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := m.RunOnce(ctx, "worker.js", []byte(`{}`), host.RunOptions{})
	require.NoError(t, err)
	spare := waitSpares(t, m, "worker.js", 1)[0]
	res, err := m.RunOnce(ctx, "worker.js", []byte(`{"mode":"alloc","mb":300}`), host.RunOptions{MemoryLimitMB: 100})
	require.Error(t, err)
	assert.Equal(t, host.CodeMemoryLimit, host.Code(err), "the run's own limit applies to the spare: %v", err)
	te, ok := errors.AsType[*host.TaskError](err)
	require.True(t, ok)
	assert.Equal(t, spare, te.WorkerPID, "the run got the warm spare")
	res, err = m.RunOnce(ctx, "worker.js", []byte(`{"mode":"sleep","ms":1}`), host.RunOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, first.WorkerPID, res.WorkerPID)
	assert.NotEqual(t, spare, res.WorkerPID)
}
