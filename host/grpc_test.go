package host_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
	"github.com/wpmdev/wpm/shared"
)

// Plugins that speak go-plugin's gRPC protocol: the Python example
// wordcount and the Python test plugin pyfaults (internal/testplugins),
// zipapps with sdk/python built in TestMain.

// pyfaults builds a pyfaults input.
func pyfaults(mode string, kv ...any) []byte {
	in := map[string]any{"mode": mode}
	for i := 0; i+1 < len(kv); i += 2 {
		in[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(in)
	return b
}

func pyfaultsPool(name string, workers int) host.PoolConfig {
	return host.PoolConfig{Name: name, Plugin: "pyfaults", Workers: workers, QueueLimit: 16}
}

func TestGRPC_wordcountPool(t *testing.T) {
	testkit.RequirePython(t)
	m := newManager(t, host.PoolConfig{Name: "WC", Plugin: "wordcount", Workers: 1, QueueLimit: 16})
	before := waitReady(t, m, "WC")

	text := strings.Repeat("the quick brown fox\njumps over\n", 3000)
	in, _ := json.Marshal(map[string]string{"text": text})
	var mu sync.Mutex
	var events []host.Event
	listen := host.TaskEvents(func(e host.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	res, err := m.Submit(context.Background(), "WC", in, listen)
	require.NoError(t, err)
	assert.JSONEq(t, `{"words": 18000, "lines": 6000}`, string(res.Output))
	assert.Equal(t, before.Workers[0].PID, res.WorkerPID)

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(events), 4, "%v", events)
	assert.Equal(t, host.EventTaskQueued, events[0].Type)
	assert.Equal(t, host.EventTaskStarted, events[1].Type)
	assert.Equal(t, res.WorkerPID, events[1].PID)
	progress := events[2 : len(events)-1]
	require.NotEmpty(t, progress)
	for _, e := range progress {
		assert.Equal(t, host.EventTaskProgress, e.Type)
		assert.Equal(t, res.TaskID, e.TaskID)
	}
	last := progress[len(progress)-1]
	assert.Equal(t, 1.0, last.Fraction, "the last report reaches 1 before the answer")
	assert.Equal(t, "counted", last.Message)
	assert.Equal(t, host.EventTaskFinished, events[len(events)-1].Type)
	assert.Equal(t, "ok", events[len(events)-1].Code)

	// More tasks on the same worker.
	for range 20 {
		res, err := m.Submit(context.Background(), "WC", []byte(`{"text": "a b c"}`))
		require.NoError(t, err)
		assert.JSONEq(t, `{"words": 3, "lines": 1}`, string(res.Output))
	}
}

func TestGRPC_oneShot(t *testing.T) {
	testkit.RequirePython(t)
	m := newManager(t)
	res, err := m.RunOnce(context.Background(), "wordcount", []byte(`{"text": "one two\nthree"}`), host.RunOptions{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"words": 3, "lines": 2}`, string(res.Output))
	require.Eventually(t, func() bool { return !testkit.Alive(res.WorkerPID) }, 5*time.Second, time.Millisecond,
		"a one-shot process is killed after its task")

	_, err = m.RunOnce(context.Background(), "wordcount", []byte(`{"words": 1}`), host.RunOptions{})
	require.ErrorIs(t, err, shared.ErrInvalidInput)
	assert.Equal(t, host.CodeInvalidTask, host.Code(err))
}

func TestGRPC_oneShotOnWarmSpare(t *testing.T) {
	testkit.RequirePython(t)
	m := newSpareManager(t, 1, 4)
	_, err := m.RunOnce(context.Background(), "pyfaults", pyfaults("pid"), host.RunOptions{})
	require.NoError(t, err)
	spares := waitSpares(t, m, "pyfaults", 1)
	res, err := m.RunOnce(context.Background(), "pyfaults", pyfaults("pid"), host.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, spares[0], res.WorkerPID, "the run took the warm spare")
	assert.Equal(t, res.WorkerPID, outputPID(t, res.Output))
}

func TestGRPC_invalidInputKeepsWorker(t *testing.T) {
	testkit.RequirePython(t)
	m := newManager(t, pyfaultsPool("P", 1))
	before := waitReady(t, m, "P")
	for _, in := range [][]byte{[]byte(`[1, 2]`), []byte(`not json`), []byte(`"a string"`), pyfaults("invalid")} {
		_, err := m.Submit(context.Background(), "P", in)
		require.ErrorIs(t, err, shared.ErrInvalidInput, "%s", in)
		assert.Equal(t, host.CodeInvalidTask, host.Code(err), "%s", in)
	}
	_, err := m.Submit(context.Background(), "P", pyfaults("fail"))
	require.ErrorIs(t, err, shared.ErrTaskFailed)
	assert.Equal(t, host.CodeTaskFailed, host.Code(err))
	assert.Contains(t, err.Error(), "pyfaults: failed on request")

	res, err := m.Submit(context.Background(), "P", pyfaults("echo", "x", 1))
	require.NoError(t, err)
	assert.JSONEq(t, `{"mode": "echo", "x": 1}`, string(res.Output))
	after := waitReady(t, m, "P")
	assert.Equal(t, pids(before), pids(after), "the worker stays")
	assert.Zero(t, after.Workers[0].Restarts)
}

func TestGRPC_memoryLimit(t *testing.T) {
	testkit.RequirePython(t)
	pc := pyfaultsPool("P", 1)
	pc.MemoryLimitMB = 64
	m := newManager(t, pc)
	before := waitReady(t, m, "P")

	res, err := m.Submit(context.Background(), "P", pyfaults("alloc", "mb", 8))
	require.NoError(t, err, "within the limit nothing is killed")
	assert.Equal(t, before.Workers[0].PID, res.WorkerPID)

	_, err = m.Submit(context.Background(), "P", pyfaults("alloc", "mb", 300))
	require.ErrorIs(t, err, host.ErrMemoryLimit)
	assert.Equal(t, host.CodeMemoryLimit, host.Code(err))
	s := waitUntil(t, m, "P", func(s host.PoolStats) bool { return s.Ready == 1 && s.Workers[0].Restarts == 1 })
	assert.Equal(t, "memory_limit_exceeded", s.Workers[0].LastExit)
	assert.NotEqual(t, before.Workers[0].PID, s.Workers[0].PID, "the worker was replaced")
	assert.False(t, testkit.Alive(before.Workers[0].PID))

	// One allocation over the limit: refused under RLIMIT_DATA before it
	// is resident; the SDK exits on the MemoryError.
	_, err = m.Submit(context.Background(), "P", pyfaults("alloc", "mb", 300, "once", true))
	require.ErrorIs(t, err, host.ErrMemoryLimit)
	var te *host.TaskError
	require.ErrorAs(t, err, &te)
	assert.Contains(t, te.Detail, "MemoryError")
	waitUntil(t, m, "P", func(s host.PoolStats) bool { return s.Ready == 1 && s.Workers[0].Restarts == 2 })

	_, err = m.Submit(context.Background(), "P", pyfaults("echo"))
	require.NoError(t, err)
}

func TestGRPC_crashKeepsStderrTail(t *testing.T) {
	testkit.RequirePython(t)
	m := newManager(t, pyfaultsPool("P", 1))
	before := waitReady(t, m, "P")
	_, err := m.Submit(context.Background(), "P", pyfaults("crash", "message", "last words of pyfaults"))
	require.ErrorIs(t, err, host.ErrWorkerCrashed)
	assert.Equal(t, host.CodeWorkerCrashed, host.Code(err))
	var te *host.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, before.Workers[0].PID, te.WorkerPID)
	assert.Contains(t, te.Detail, "last words of pyfaults")
	assert.Contains(t, err.Error(), "exit status 3")

	s := waitUntil(t, m, "P", func(s host.PoolStats) bool { return s.Ready == 1 && s.Workers[0].Restarts == 1 })
	assert.Equal(t, "exited", s.Workers[0].LastExit)
	_, err = m.Submit(context.Background(), "P", pyfaults("echo"))
	require.NoError(t, err)
}

func TestGRPC_timeoutKillsAndReplaces(t *testing.T) {
	testkit.RequirePython(t)
	pc := pyfaultsPool("P", 1)
	pc.TaskTimeout = 300 * time.Millisecond
	m := newManager(t, pc)
	before := waitReady(t, m, "P")
	_, err := m.Submit(context.Background(), "P", pyfaults("hang"))
	require.ErrorIs(t, err, host.ErrTimeout)
	assert.Equal(t, host.CodeTaskTimeout, host.Code(err))
	s := waitUntil(t, m, "P", func(s host.PoolStats) bool { return s.Ready == 1 && s.Workers[0].Restarts == 1 })
	assert.Equal(t, "task_timeout", s.Workers[0].LastExit)
	assert.False(t, testkit.Alive(before.Workers[0].PID), "the timed-out worker is killed")
	_, err = m.Submit(context.Background(), "P", pyfaults("echo"))
	require.NoError(t, err)
}

// pyfaults runs 2 tasks at once (its Info says so): a pool of concurrency
// 8 sends it no more.
func TestGRPC_concurrencyCappedByPlugin(t *testing.T) {
	testkit.RequirePython(t)
	pc := pyfaultsPool("P", 1)
	pc.Concurrency = 8
	m := newManager(t, pc)
	waitReady(t, m, "P")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, err := m.Submit(context.Background(), "P", pyfaults("progress", "steps", 1, "sleep_ms", 300))
			assert.NoError(t, err)
		})
	}
	require.Eventually(t, func() bool { s, _ := m.Pool("P"); return s.Running == 2 && s.QueueDepth == 2 },
		5*time.Second, time.Millisecond, "two run, two wait")
	wg.Wait()
}

func TestGRPC_catalogProtocol(t *testing.T) {
	m := newManager(t)
	infos, err := m.Plugins()
	require.NoError(t, err)
	got := map[string]string{}
	for _, p := range infos {
		got[p.Name] = p.Protocol
	}
	assert.Equal(t, host.ProtocolNetRPC, got["cpuload"])
	assert.Equal(t, host.ProtocolNetRPC, got["misbehave"])
	assert.Equal(t, host.ProtocolGRPC, got["wordcount"])
	assert.Equal(t, host.ProtocolGRPC, got["pyfaults"])
}

func TestGRPC_recycledAfterItsTasks(t *testing.T) {
	testkit.RequirePython(t)
	pc := pyfaultsPool("P", 1)
	pc.MaxTasksPerWorker = 1 // jitter leaves 1 alone
	m := newManager(t, pc)
	first := waitReady(t, m, "P").Workers[0].PID
	res, err := m.Submit(context.Background(), "P", pyfaults("pid"))
	require.NoError(t, err)
	assert.Equal(t, first, outputPID(t, res.Output))
	s := waitUntil(t, m, "P", func(s host.PoolStats) bool { return s.Ready == 1 && s.Workers[0].PID != first })
	assert.Equal(t, "recycled", s.Workers[0].LastExit)
	res, err = m.Submit(context.Background(), "P", pyfaults("pid"))
	require.NoError(t, err)
	assert.Equal(t, s.Workers[0].PID, outputPID(t, res.Output))
}
