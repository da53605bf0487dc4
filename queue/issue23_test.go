package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two processes on one nats.storeDir lose each other's writes: the second
// engine is refused, naming the key and the holder's pid, and the store
// is free again once the first stops.
func TestStart_storeDirLocked(t *testing.T) {
	dir := t.TempDir()
	mgr := newManager(t, testPools())
	first := startEngine(t, mgr, testOptions(dir))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Start(ctx, mgr, testOptions(dir))
	require.ErrorIs(t, err, ErrStoreLocked)
	assert.Contains(t, err.Error(), "nats.storeDir")
	assert.Contains(t, err.Error(), "process "+strconv.Itoa(os.Getpid()))
	b, err := os.ReadFile(filepath.Join(dir, storeLockName))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(os.Getpid()), strings.TrimSpace(string(b)))

	task := submit(t, first, "M", `{"fault": "echo"}`)
	assert.Equal(t, StateSucceeded, waitFor(t, first, task.ID, ended).State, "the first engine is untouched")
	stopEngine(t, first)
	second := startEngine(t, mgr, testOptions(dir))
	got, err := second.Get(context.Background(), task.ID)
	require.NoError(t, err)
	assert.Equal(t, StateSucceeded, got.State, "the store kept the first engine's record")
}

// A result of <, > and & is stored as it is, not six times larger: a task
// whose input and result fit the server's max_payload succeeds.
func TestEngine_resultStoredWithoutEscaping(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MaxInputBytes, opts.MaxResultBytes = 300_000, 300_000 // max_payload 364 KiB
	e := startEngine(t, newManager(t, testPools()), opts)
	input := `{"fault": "rawecho", "lines": ["` + strings.Repeat("<", 250_000) + `"]}`
	task, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(input)})
	require.NoError(t, err, "the task is measured as sent, not escaped")
	got := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateSucceeded, got.State, "%+v", got.Error)
	assert.JSONEq(t, input, string(got.Result))
	assert.Equal(t, 1, got.Attempts)
}

// A result too large for a record in one message of the server (an
// external server whose max_payload, 200 KB, is below async.maxResultBytes)
// is kept beside the record: the task succeeds once and its result reads
// back whole; one over async.maxResultBytes ends result_too_large once.
func TestEngine_resultOverMaxPayloadKeptBeside(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: 200_000})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	opts := testOptions("")
	opts.URL, opts.MaxResultBytes = ns.ClientURL(), 1_500_000
	e := startEngine(t, newManager(t, testPools()), opts)
	task := submit(t, e, "M", `{"fault": "big", "mb": 1}`)
	got := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateSucceeded, got.State, "%+v", got.Error)
	assert.EqualValues(t, 1<<20+len(`{"pid":,"data":""}`)+len(fmt.Sprint(got.WorkerPID)), got.ResultSize)
	whole, err := e.Get(context.Background(), task.ID)
	require.NoError(t, err)
	var out struct{ Data string }
	require.NoError(t, json.Unmarshal(whole.Result, &out))
	assert.Equal(t, strings.Repeat("x", 1<<20), out.Data)
	assert.Equal(t, 1, whole.Attempts)

	over := submit(t, e, "M", `{"fault": "big", "mb": 2}`)
	got = waitFor(t, e, over.ID, ended)
	require.Equal(t, StateFailed, got.State)
	assert.Equal(t, CodeResultTooLarge, got.Error.Code)
	time.Sleep(2 * opts.AckWait) // a task handed out again would show it by now
	for _, id := range []string{task.ID, over.ID} {
		again, err := e.Get(context.Background(), id)
		require.NoError(t, err)
		assert.Equal(t, 1, again.Attempts, "the task ran once")
	}
}

// Retention counts from a task's end: a task queued, then running, for
// longer than async.retention keeps its record, runs once, and its record
// goes retention after it ended.
func TestEngine_retentionCountsFromTheEnd(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.Retention = time.Second
	e := startEngine(t, newManager(t, testPools()), opts)
	ahead := submit(t, e, "M", `{"fault": "sleep", "ms": 1500}`)
	task := submit(t, e, "M", `{"fault": "sleep", "ms": 1500}`)

	time.Sleep(1200 * time.Millisecond) // task is still queued behind ahead
	got, err := e.Get(context.Background(), task.ID)
	require.NoError(t, err, "a queued task outlives retention")
	assert.Equal(t, StateQueued, got.State)
	got = waitFor(t, e, task.ID, inState(StateRunning))
	time.Sleep(1200 * time.Millisecond) // running longer than retention
	got, err = e.Get(context.Background(), task.ID)
	require.NoError(t, err, "a running task outlives retention")
	got = waitFor(t, e, task.ID, ended)
	assert.Equal(t, StateSucceeded, got.State)
	assert.Equal(t, 1, got.Attempts, "it ran once")

	require.Eventually(t, func() bool {
		_, err := e.Get(context.Background(), ahead.ID)
		return errors.Is(err, ErrUnknownTask)
	}, 10*time.Second, 100*time.Millisecond, "an ended record goes after retention")
	time.Sleep(opts.AckWait + time.Second) // a second run would show by now
	_, err = e.Get(context.Background(), task.ID)
	if err == nil {
		got, _ = e.Get(context.Background(), task.ID)
		assert.Equal(t, 1, got.Attempts)
	}
}

// A store made by an older wpm (a bucket-wide TTL, no per-message TTLs)
// is updated at start, and its records stay readable.
func TestStart_updatesAnOlderBucket(t *testing.T) {
	opts := testOptions(t.TempDir())
	srv, err := startServer(opts.withDefaults())
	require.NoError(t, err)
	nc, err := nats.Connect("", nats.InProcessServer(srv.srv))
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucketName, TTL: 24 * time.Hour, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	_, err = kv.Put(ctx, "0123456789abcdef", []byte(`{"id": "0123456789abcdef", "state": "succeeded", "attempts": 1}`))
	require.NoError(t, err)
	nc.Close()
	srv.stop()

	e := startEngine(t, newManager(t, testPools()), opts)
	old, err := e.Get(ctx, "0123456789abcdef")
	require.NoError(t, err)
	assert.Equal(t, StateSucceeded, old.State)
	task := submit(t, e, "M", `{"fault": "echo"}`)
	assert.Equal(t, StateSucceeded, waitFor(t, e, task.ID, ended).State)
}

// The listening embedded server takes only clients with its credentials:
// without them nothing is read or written; without any credentials set
// the engine does not start, unless told to.
func TestStart_listenNeedsCredentials(t *testing.T) {
	opts, addr := listenOptions(t)
	mgr := newManager(t, testPools())
	e := startEngine(t, mgr, opts)
	task := submit(t, e, "M", `{"fault": "echo"}`)
	waitFor(t, e, task.ID, ended)

	_, err := nats.Connect("nats://" + addr)
	require.Error(t, err, "no credentials, no connection")
	assert.Contains(t, strings.ToLower(err.Error()), "authorization")
	_, err = nats.Connect("nats://wrong@" + addr)
	require.Error(t, err, "a wrong token, no connection")
	nc, err := nats.Connect("nats://" + testToken + "@" + addr)
	require.NoError(t, err)
	nc.Close()

	open := testOptions(t.TempDir())
	open.Listen = addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Start(ctx, mgr, open)
	require.ErrorIs(t, err, ErrInsecureListen)
	assert.Contains(t, err.Error(), "nats.listenAuth")
}

// A full disk under the store: submits answer ErrStorageFull (503
// storage_full) at once instead of NATS's text, and once there is room
// again the engine recovers by itself: new submits are taken, and the
// tasks accepted before the disk filled and while it was full run.
func TestEngine_diskFullRecovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs for the store: run it as root (CI does)")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mount a tmpfs: %s", out)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	opts := testOptions(dir)
	opts.MaxInputBytes = 100_000
	e := startEngine(t, newManager(t, testPools()), opts)
	first := submit(t, e, "M", `{"fault": "sleep", "ms": 10}`)
	waitFor(t, e, first.ID, ended)

	filler := filepath.Join(dir, "filler")
	out, _ = exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=1M", "count=100").CombinedOutput()
	require.Contains(t, string(out), "No space left", "the disk is full")
	var fullErr error
	for range 3 { // the first writes may still fit in what NATS holds
		_, fullErr = e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "echo", "lines": ["` + strings.Repeat("x", 50_000) + `"]}`)})
		if fullErr != nil {
			break
		}
	}
	require.ErrorIs(t, fullErr, ErrStorageFull)
	assert.Contains(t, fullErr.Error(), "nats.storeDir")
	start := time.Now()
	_, err = e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{}`)})
	require.ErrorIs(t, err, ErrStorageFull)
	assert.Less(t, time.Since(start), time.Second, "refused at once while full")
	_, err = e.List(context.Background(), Filter{})
	require.NoError(t, err, "reads go on")

	require.NoError(t, os.Remove(filler))
	var task Task
	require.Eventually(t, func() bool {
		task, err = e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "echo"}`)})
		return err == nil
	}, 30*time.Second, 250*time.Millisecond, "submits are taken again once the disk has room")
	assert.Equal(t, StateSucceeded, waitFor(t, e, task.ID, ended).State)
}
