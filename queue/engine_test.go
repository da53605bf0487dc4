package queue

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// A pool task is queued, runs, and its record says how it went; Wait
// returns once it ended.
func TestEngine_poolTaskSucceeds(t *testing.T) {
	e := newEngine(t)
	queued := submit(t, e, "M", `{"fault": "echo"}`)
	assert.Len(t, queued.ID, 16)
	assert.Equal(t, "M", queued.Pool)
	assert.Equal(t, "misbehave", queued.Plugin)

	got, err := e.Wait(context.Background(), queued.ID, 15*time.Second)
	require.NoError(t, err)
	require.Equal(t, StateSucceeded, got.State, "%+v", got)
	assert.Equal(t, 1, got.Attempts)
	assert.NotNil(t, got.StartedAt)
	assert.NotNil(t, got.FinishedAt)
	assert.Nil(t, got.Error)
	var out map[string]any
	require.NoError(t, json.Unmarshal(got.Result, &out))
	assert.Equal(t, float64(got.WorkerPID), out["pid"])

	again, err := e.Get(context.Background(), queued.ID)
	require.NoError(t, err)
	assert.Equal(t, got.State, again.State)
}

// A one-shot runs in its own process.
func TestEngine_oneShot(t *testing.T) {
	e := newEngine(t)
	task, err := e.Submit(context.Background(), Request{Plugin: "cpuload", Input: []byte(`{"duration": 1}`)})
	require.NoError(t, err)
	assert.Empty(t, task.Pool)
	got := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateSucceeded, got.State, "%+v", got)
	assert.Equal(t, "cpuload", got.Plugin)
}

// Input judged bad without running is refused at once, with host's codes.
func TestEngine_Submit_refusesAtOnce(t *testing.T) {
	e := newEngine(t)
	_, err := e.Submit(context.Background(), Request{Pool: "nope", Input: []byte(`{}`)})
	assert.Equal(t, host.CodeUnknownPool, host.Code(err), "%v", err)
	_, err = e.Submit(context.Background(), Request{Plugin: "nope", Input: []byte(`{}`)})
	assert.Equal(t, host.CodeUnknownPlugin, host.Code(err), "%v", err)
	_, err = e.Get(context.Background(), "0123456789abcdef")
	assert.ErrorIs(t, err, ErrUnknownTask)
	_, err = e.Get(context.Background(), "../x")
	assert.ErrorIs(t, err, ErrUnknownTask)
}

// A task that fails for good ends failed with SPEC §3's error; a plugin
// error is not retried even on a pool with retries.
func TestEngine_failedTask(t *testing.T) {
	e := newEngine(t)
	task := submit(t, e, "M", `{"fault": "fail"}`)
	got := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateFailed, got.State)
	require.NotNil(t, got.Error)
	assert.Equal(t, host.CodeTaskFailed, got.Error.Code)
	assert.NotEmpty(t, got.Error.Message)
	assert.Equal(t, 1, got.Attempts)

	task = submit(t, e, "F", `{"bad": `+"1"+`, "ms": "x"}`)
	got = waitFor(t, e, task.ID, ended)
	assert.Equal(t, host.CodeInvalidTask, got.Error.Code)
	assert.Equal(t, 1, got.Attempts, "invalid_task is never retried")
}

// A worker that crashes on the first attempt only: the pool's retries run
// the task again, and the record shows both attempts.
func TestEngine_retriesAfterCrash(t *testing.T) {
	e := newEngine(t)
	marker := filepath.Join(t.TempDir(), "crash-once")
	require.NoError(t, os.WriteFile(marker, nil, 0o600))
	input, _ := json.Marshal(map[string]any{"once": marker})
	task := submit(t, e, "F", string(input))
	queuedAgain := waitFor(t, e, task.ID, func(t Task) bool { return t.State == StateQueued && t.Attempts == 1 })
	require.NotNil(t, queuedAgain.Error, "a task waiting for its retry shows the last error")
	assert.Equal(t, host.CodeWorkerCrashed, queuedAgain.Error.Code)
	got := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateSucceeded, got.State, "%+v", got)
	assert.Equal(t, 2, got.Attempts)
	assert.Nil(t, got.Error)
}

// Retries run out: a worker that always crashes ends failed after 1 + max
// attempts; a pool without retries fails at the first.
func TestEngine_retriesRunOut(t *testing.T) {
	e := newEngine(t)
	always := submit(t, e, "R", `{"fault": "crash"}`)
	got := waitFor(t, e, always.ID, ended)
	assert.Equal(t, StateFailed, got.State)
	assert.Equal(t, host.CodeWorkerCrashed, got.Error.Code)
	assert.Equal(t, 2, got.Attempts, "pool R retries once")

	failed := submit(t, e, "R", `{"fault": "fail"}`)
	got = waitFor(t, e, failed.ID, ended)
	assert.Equal(t, host.CodeTaskFailed, got.Error.Code)
	assert.Equal(t, 2, got.Attempts, "pool R retries task_failed too")
	invalid := submit(t, e, "R", `{"fault": "nope"}`)
	got = waitFor(t, e, invalid.ID, ended)
	assert.Equal(t, host.CodeInvalidTask, got.Error.Code)
	assert.Equal(t, 1, got.Attempts, "invalid_task is never retried")

	crash := submit(t, e, "M", `{"fault": "crash"}`)
	got = waitFor(t, e, crash.ID, ended)
	assert.Equal(t, StateFailed, got.State)
	assert.Equal(t, host.CodeWorkerCrashed, got.Error.Code)
	assert.Equal(t, 1, got.Attempts, "pool M has no retries")
}

// Canceling a queued task means it never runs; canceling a running one
// kills its worker, which is replaced; an ended one is 409 material.
func TestEngine_cancel(t *testing.T) {
	e := newEngine(t)
	mgr := e.mgr
	long := submit(t, e, "M", `{"fault": "sleep", "ms": 1900}`)
	running := waitFor(t, e, long.ID, inState(StateRunning))
	queued := submit(t, e, "M", `{"fault": "echo"}`)
	before, err := mgr.Pool("M")
	require.NoError(t, err)

	got, err := e.Cancel(context.Background(), queued.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCanceled, got.State)
	got, err = e.Cancel(context.Background(), running.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCanceled, got.State)
	assert.Equal(t, host.CodeCanceled, got.Error.Code)

	// The pool's one worker was killed and replaced at once, long before
	// the sleep would have ended; the next task runs on the new one.
	next := submit(t, e, "M", `{"fault": "echo"}`)
	done := waitFor(t, e, next.ID, ended)
	require.Equal(t, StateSucceeded, done.State, "%+v", done)
	assert.NotEqual(t, before.Workers[0].PID, done.WorkerPID)
	assert.Less(t, time.Since(*running.StartedAt), 1900*time.Millisecond)

	q, err := e.Get(context.Background(), queued.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCanceled, q.State)
	assert.Equal(t, 0, q.Attempts, "a canceled queued task never runs")
	_, err = e.Cancel(context.Background(), next.ID)
	assert.ErrorIs(t, err, ErrTaskEnded)
}

// Wait returns the live record when the wait runs out first.
func TestEngine_Wait_timesOut(t *testing.T) {
	e := newEngine(t)
	task := submit(t, e, "M", `{"fault": "sleep", "ms": 1000}`)
	start := time.Now()
	got, err := e.Wait(context.Background(), task.ID, 100*time.Millisecond)
	require.NoError(t, err)
	assert.False(t, got.State.Ended())
	assert.Less(t, time.Since(start), 900*time.Millisecond)
	got, err = e.Wait(context.Background(), task.ID, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, StateSucceeded, got.State)
}

// An idempotency key returns the first task within the window.
func TestEngine_idempotency(t *testing.T) {
	e := newEngine(t)
	req := Request{Pool: "M", Input: []byte(`{"fault": "echo"}`), IdempotencyKey: "order-42"}
	first, err := e.Submit(context.Background(), req)
	require.NoError(t, err)
	second, err := e.Submit(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, first.ID, second.ID)
	req.IdempotencyKey = "order-43"
	other, err := e.Submit(context.Background(), req)
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, other.ID)
	waitFor(t, e, first.ID, ended)
	waitFor(t, e, other.ID, ended)
	list, err := e.List(context.Background(), Filter{Pool: "M"})
	require.NoError(t, err)
	assert.Len(t, list, 2, "the repeat made no task")
}

// A result over async.maxResultBytes ends the task failed.
func TestEngine_resultTooLarge(t *testing.T) {
	e := newEngine(t)
	task := submit(t, e, "F", `{"bytes": 2000}`)
	got := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateFailed, got.State)
	assert.Equal(t, CodeResultTooLarge, got.Error.Code)
	assert.Contains(t, got.Error.Message, "async.maxResultBytes")
	assert.Empty(t, got.Result)
}

// List filters by state and pool and returns the newest first.
func TestEngine_List(t *testing.T) {
	e := newEngine(t)
	var ids []string
	for range 3 {
		task := submit(t, e, "M", `{"fault": "echo"}`)
		ids = append(ids, task.ID)
		waitFor(t, e, task.ID, ended)
	}
	failed := submit(t, e, "F", `{"ms": "x"}`)
	waitFor(t, e, failed.ID, ended)

	all, err := e.List(context.Background(), Filter{})
	require.NoError(t, err)
	require.Len(t, all, 4)
	assert.Equal(t, failed.ID, all[0].ID)
	ok, err := e.List(context.Background(), Filter{State: StateSucceeded, Limit: 2})
	require.NoError(t, err)
	require.Len(t, ok, 2)
	assert.Equal(t, []string{ids[2], ids[1]}, []string{ok[0].ID, ok[1].ID})
	m, err := e.List(context.Background(), Filter{Pool: "F"})
	require.NoError(t, err)
	require.Len(t, m, 1)
}

// Tasks survive a stop and a start on the same store: those queued at the
// stop run after the start.
func TestEngine_restartKeepsQueuedTasks(t *testing.T) {
	dir := t.TempDir()
	mgr := newManager(t, testPools())
	opts := testOptions(dir)
	e := startEngine(t, mgr, opts)
	long := submit(t, e, "M", `{"fault": "sleep", "ms": 300}`)
	waitFor(t, e, long.ID, inState(StateRunning))
	var queued []string
	for range 3 {
		queued = append(queued, submit(t, e, "M", `{"fault": "echo"}`).ID)
	}
	stopEngine(t, e)

	e = startEngine(t, mgr, opts)
	for _, id := range append(queued, long.ID) {
		got := waitFor(t, e, id, ended)
		assert.Equal(t, StateSucceeded, got.State, "%+v", got)
	}
}

// A store directory that can not be made gives a clear error at start.
func TestStart_storeDirNotWritable(t *testing.T) {
	mgr := newManager(t, nil)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err := Start(context.Background(), mgr, Options{StoreDir: filepath.Join(file, "nats")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nats.storeDir")
	assert.Contains(t, err.Error(), "point nats.storeDir elsewhere")

	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(t.TempDir(), "ro")
		require.NoError(t, os.Mkdir(ro, 0o500))
		_, err = Start(context.Background(), mgr, Options{StoreDir: ro})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "can not write in")
	}
	testkit.RequireNoChildren(t)
}

// nats.listen opens a port on which other NATS clients reach the
// embedded server; without it there is none.
func TestStart_listen(t *testing.T) {
	opts, addr := listenOptions(t)
	e := startEngine(t, newManager(t, testPools()), opts)
	nc, err := nats.Connect("nats://" + testToken + "@" + addr)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.Stream(context.Background(), streamName)
	require.NoError(t, err, "the task stream is visible from outside")
	task := submit(t, e, "M", `{"fault": "echo"}`)
	waitFor(t, e, task.ID, ended)
}

// nats.url connects to another server instead of embedding one: here a
// second wpm's engine on the first one's server, sharing its queue.
func TestStart_externalURL(t *testing.T) {
	opts, addr := listenOptions(t)
	first := startEngine(t, newManager(t, testPools()), opts)

	second, _ := secondHost(t, addr, "second", testPools())
	assert.Nil(t, second.srv, "nothing is embedded")
	task := submit(t, second, "M", `{"fault": "echo"}`)
	got := waitFor(t, first, task.ID, ended)
	assert.Equal(t, StateSucceeded, got.State, "the record is shared")
	stopEngine(t, second) // before the server it uses
}

// secondHost starts another host, named name, with its own manager over
// pools and an engine on the NATS server of listenOptions at addr. Its
// manager shuts down at the end without the leftover-worker check, which
// the first manager's cleanup makes.
func secondHost(t *testing.T, addr, name string, pools []host.PoolConfig) (*Engine, *host.Manager) {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.PluginDir, cfg.Pools = pluginDir, pools
	mgr, err := host.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, mgr.Shutdown(ctx))
	})
	e := startEngine(t, mgr, Options{Name: name, URL: "nats://" + testToken + "@" + addr, AckWait: 2 * time.Second, PollInterval: 50 * time.Millisecond})
	return e, mgr
}

// testToken is the token of listenOptions' server.
const testToken = "s3cret-token"

// listenOptions are testOptions with nats.listen on a free loopback port
// and nats.listenAuth.token testToken,
// which it returns.
func listenOptions(t *testing.T) (Options, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	opts := testOptions(t.TempDir())
	opts.Listen, opts.ListenToken = addr, testToken
	return opts, addr
}

// A task larger than the server's max_payload is refused at once.
func TestEngine_Submit_tooLarge(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MaxInputBytes = 1000
	e := startEngine(t, newManager(t, testPools()), opts)
	big := `{"fault": "echo", "lines": ["` + strings.Repeat("x", 100_000) + `"]}`
	_, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(big)})
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "max_payload")
	submit(t, e, "M", `{"fault": "echo"}`)
}
