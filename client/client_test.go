package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/client"
)

// testCtx bounds a test's requests.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClient_Run(t *testing.T) {
	c, ctx := newClient(t), testCtx(t)
	in := json.RawMessage(`{"fault":"rawecho","mark":""}`)
	res, err := c.Run(ctx, "M", in)
	require.NoError(t, err)
	assert.JSONEq(t, string(in), string(res.Output))
	assert.Equal(t, "M", res.Pool)
	assert.Equal(t, "misbehave", res.Plugin)
	assert.NotEmpty(t, res.ID)
	assert.Positive(t, res.WorkerPID)

	res, err = c.RunOnce(ctx, "misbehave", in, client.RunOptions{MemoryLimitMB: 64, Timeout: 5 * time.Second})
	require.NoError(t, err)
	assert.JSONEq(t, string(in), string(res.Output))
	assert.Empty(t, res.Pool)
	assert.Equal(t, "misbehave", res.Plugin)
}

// Error answers are *client.Error values with the API's code, message,
// detail, task id and status, matched by the sentinels.
func TestClient_errors(t *testing.T) {
	c, ctx := newClient(t), testCtx(t)
	for _, tc := range []struct {
		name     string
		call     func() error
		sentinel error
		status   int
	}{
		{"unknown pool", func() error { _, err := c.Run(ctx, "NOPE", json.RawMessage(`{}`)); return err }, client.ErrUnknownPool, 404},
		{"unknown plugin", func() error { _, err := c.RunOnce(ctx, "nope", json.RawMessage(`{}`), client.RunOptions{}); return err }, client.ErrUnknownPlugin, 404},
		{"bad body", func() error { _, err := c.Run(ctx, "M", json.RawMessage(`{not json`)); return err }, client.ErrBadRequest, 400},
		{"bad option", func() error {
			_, err := c.RunOnce(ctx, "misbehave", json.RawMessage(`{}`), client.RunOptions{MemoryLimitMB: -1})
			return err
		}, client.ErrBadRequest, 400},
		{"unknown task", func() error { _, err := c.Task(ctx, "0123456789abcdef"); return err }, client.ErrUnknownTask, 404},
		{"unknown pool, async", func() error {
			_, err := c.Submit(ctx, client.SubmitRequest{Pool: "NOPE", Input: json.RawMessage(`{}`)})
			return err
		}, client.ErrUnknownPool, 404},
	} {
		err := tc.call()
		require.ErrorIs(t, err, tc.sentinel, tc.name)
		var e *client.Error
		require.ErrorAs(t, err, &e, tc.name)
		assert.Equal(t, tc.status, e.StatusCode, tc.name)
		assert.NotEmpty(t, e.Message, tc.name)
		assert.NotErrorIs(t, err, client.ErrQueueFull, tc.name)
	}

	_, err := c.Run(ctx, "NOPE", json.RawMessage(`{}`))
	assert.Contains(t, err.Error(), "404 unknown_pool: ")
	assert.Contains(t, err.Error(), "M", "the message lists the known pools")

	// The plugin's judgement comes with the task's id; a dead worker's
	// last words in Detail.
	_, err = c.Run(ctx, "M", json.RawMessage(`{"fault":"invalid"}`))
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, client.CodeInvalidTask, e.Code)
	assert.NotEmpty(t, e.TaskID)
	_, err = c.Run(ctx, "M", json.RawMessage(`{"fault":"exit","lines":["last words"]}`))
	require.ErrorIs(t, err, client.ErrWorkerCrashed)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusBadGateway, e.StatusCode)
	assert.Contains(t, e.Detail, "last words")

	// A request that never reached a server is the transport's error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	gone, err := client.New(closed)
	require.NoError(t, err)
	_, err = gone.Pools(ctx)
	require.Error(t, err)
	assert.False(t, errorAs[*client.Error](err))

	_, err = client.New("localhost:3000")
	assert.Error(t, err, "no scheme")
	_, err = c.Submit(ctx, client.SubmitRequest{Input: json.RawMessage(`{}`)})
	assert.Error(t, err, "neither pool nor plugin")
	_, err = c.Submit(ctx, client.SubmitRequest{Pool: "M", Input: json.RawMessage(`{}`), RunOptions: client.RunOptions{Timeout: time.Second}})
	assert.Error(t, err, "one-shot options on a pool")
}

func errorAs[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

// countingTransport counts the requests it sends.
type countingTransport struct{ n atomic.Int32 }

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// cuttingTransport breaks the first event stream it opens after one
// event, and notes each request's Last-Event-ID.
type cuttingTransport struct {
	lastEventIDs []string
}

func (ct *cuttingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.lastEventIDs = append(ct.lastEventIDs, r.Header.Get("Last-Event-ID"))
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && len(ct.lastEventIDs) == 1 {
		resp.Body = &cutBody{ReadCloser: resp.Body}
	}
	return resp, err
}

// cutBody reads up to the end of the first event, then fails.
type cutBody struct {
	io.ReadCloser
	seen []byte
}

func (b *cutBody) Read(p []byte) (int, error) {
	if bytes.Contains(b.seen, []byte("\n\n")) {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.ReadCloser.Read(p[:1])
	b.seen = append(b.seen, p[:n]...)
	return n, err
}

// A full queue answers 429 queue_full with Retry-After; the client waits
// that long and sends the task again, within its bounds.
func TestClient_queueFullRetryAfter(t *testing.T) {
	ctx := testCtx(t)
	busy := make(chan error, 1)
	go func() {
		_, err := newClient(t).Run(ctx, "ONE", json.RawMessage(`{"fault":"sleep","ms":1500}`))
		busy <- err
	}()
	require.Eventually(t, func() bool {
		p, err := newClient(t).Pool(ctx, "ONE")
		return err == nil && p.Running == 1
	}, 10*time.Second, 10*time.Millisecond)

	_, err := newClient(t, client.WithRetries(0, time.Minute)).Run(ctx, "ONE", json.RawMessage(`{}`))
	require.ErrorIs(t, err, client.ErrQueueFull)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusTooManyRequests, e.StatusCode)
	assert.Equal(t, time.Second, e.RetryAfter)

	// A deadline sooner than Retry-After: no wait, the error at once.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = newClient(t).Run(short, "ONE", json.RawMessage(`{}`))
	require.ErrorIs(t, err, client.ErrQueueFull)
	require.NoError(t, short.Err(), "returned before the deadline")

	// Retried after Retry-After until the worker is free.
	ct := &countingTransport{}
	start := time.Now()
	res, err := newClient(t, client.WithHTTPClient(&http.Client{Transport: ct})).Run(ctx, "ONE", json.RawMessage(`{"fault":"rawecho"}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"fault":"rawecho"}`, string(res.Output))
	assert.GreaterOrEqual(t, ct.n.Load(), int32(2), "sent again")
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "waited for Retry-After")
	require.NoError(t, <-busy)
}

// Asynchronous tasks: submit with an Idempotency-Key and a callback, wait,
// list, repeat, reuse the key wrongly, cancel.
func TestClient_async(t *testing.T) {
	c, ctx := newClient(t), testCtx(t)
	key := "client-test-" + time.Now().Format(time.RFC3339Nano)
	req := client.SubmitRequest{Pool: "M", Input: json.RawMessage(`{"fault":"rawecho","ms":1}`), IdempotencyKey: key, CallbackURL: callbackBase + "/cb"}
	acc, err := c.Submit(ctx, req)
	require.NoError(t, err)
	require.NotEmpty(t, acc.ID)
	assert.Equal(t, client.StateQueued, acc.State)

	task, err := c.Wait(ctx, acc.ID, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, client.StateSucceeded, task.State)
	assert.JSONEq(t, `{"fault":"rawecho","ms":1}`, string(task.Result))
	assert.Equal(t, "M", task.Pool)
	assert.Equal(t, 1, task.Attempts)
	assert.NoError(t, task.Err())
	assert.Contains(t, string(task.Raw), `"state":"succeeded"`)

	select {
	case body := <-callbacks:
		var rec client.Task
		require.NoError(t, json.Unmarshal(body, &rec))
		assert.Equal(t, acc.ID, rec.ID)
		assert.Equal(t, client.StateSucceeded, rec.State)
	case <-ctx.Done():
		t.Fatal("no callback")
	}

	again, err := c.Submit(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, acc.ID, again.ID, "the same key answers the first task")
	assert.Equal(t, client.StateSucceeded, again.State)
	other := req
	other.Input = json.RawMessage(`{"fault":"rawecho","ms":2}`)
	_, err = c.Submit(ctx, other)
	require.ErrorIs(t, err, client.ErrIdempotencyKeyReused)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusUnprocessableEntity, e.StatusCode)

	list, err := c.ListTasks(ctx, client.ListOptions{State: client.StateSucceeded, Pool: "M", Limit: 1000})
	require.NoError(t, err)
	assert.True(t, containsTask(list, acc.ID))

	// A failed task's error compares with the sentinels.
	failed, err := c.Submit(ctx, client.SubmitRequest{Pool: "M", Input: json.RawMessage(`{"fault":"fail"}`)})
	require.NoError(t, err)
	task, err = c.Wait(ctx, failed.ID, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, client.StateFailed, task.State)
	assert.ErrorIs(t, task.Err(), client.ErrTaskFailed)

	// A one-shot, then a slow task: Wait returns it unended when its wait
	// passes; canceled, it ends canceled; canceled again, task_ended.
	once, err := c.Submit(ctx, client.SubmitRequest{Plugin: "misbehave", Input: json.RawMessage(`{}`), RunOptions: client.RunOptions{Timeout: 10 * time.Second}})
	require.NoError(t, err)
	slow, err := c.Submit(ctx, client.SubmitRequest{Pool: "M", Input: json.RawMessage(`{"fault":"sleep","ms":20000}`)})
	require.NoError(t, err)
	task, err = c.Wait(ctx, slow.ID, 100*time.Millisecond)
	require.NoError(t, err)
	assert.False(t, task.State.Ended(), task.State)
	task, err = c.Cancel(ctx, slow.ID)
	require.NoError(t, err)
	assert.Equal(t, client.StateCanceled, task.State)
	_, err = c.Cancel(ctx, slow.ID)
	require.ErrorIs(t, err, client.ErrTaskEnded)
	task, err = c.Wait(ctx, once.ID, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, client.StateSucceeded, task.State)
	assert.Empty(t, task.Pool)
}

func containsTask(list []client.Task, id string) bool {
	for _, t := range list {
		if t.ID == id {
			return true
		}
	}
	return false
}

// A task's events end with its task.finished; the server's stream resumes
// after a Last-Event-ID without a gap.
func TestClient_events(t *testing.T) {
	c, ctx := newClient(t), testCtx(t)
	acc, err := c.Submit(ctx, client.SubmitRequest{Pool: "CPU", Input: json.RawMessage(`{"duration": 300}`)})
	require.NoError(t, err)
	var seen []client.Event
	for e, err := range c.TaskEvents(ctx, acc.ID, client.EventsOptions{}) {
		require.NoError(t, err)
		assert.Equal(t, acc.ID, e.TaskID)
		seen = append(seen, e)
	}
	require.NotEmpty(t, seen)
	last := seen[len(seen)-1]
	assert.Equal(t, client.EventTaskFinished, last.Type, "the iterator ends at task.finished")
	assert.Equal(t, client.Code("ok"), last.Code)
	types := map[client.EventType]bool{}
	for _, e := range seen {
		types[e.Type] = true
		assert.Positive(t, e.ID)
	}
	assert.True(t, types[client.EventTaskStarted])
	assert.True(t, types[client.EventTaskProgress], "cpuload reports progress")

	// Resume the task's stream after its first event: the rest, no gap.
	var resumed []client.Event
	for e, err := range c.TaskEvents(ctx, acc.ID, client.EventsOptions{LastEventID: seen[0].ID}) {
		require.NoError(t, err)
		resumed = append(resumed, e)
	}
	assert.Equal(t, seen[1:], resumed)

	// The server's whole stream: a sync task's events pass by; stop
	// ranging, and the stream is closed.
	streamCtx, stop := context.WithCancel(ctx)
	defer stop()
	events := c.Events(streamCtx, client.EventsOptions{LastEventID: seen[0].ID})
	var finished bool
	for e, err := range events {
		require.NoError(t, err)
		require.NotEqual(t, client.EventStreamGap, e.Type)
		if e.TaskID == acc.ID && e.Type == client.EventTaskFinished {
			finished = true
			break
		}
	}
	assert.True(t, finished)

	// A canceled context ends the iterator with its error.
	stop()
	n := 0
	for _, err := range events {
		require.ErrorIs(t, err, context.Canceled)
		n++
	}
	assert.Equal(t, 1, n)

	// A stream broken after its first event is opened again after it.
	cut := &cuttingTransport{}
	var again []client.Event
	for e, err := range newClient(t, client.WithHTTPClient(&http.Client{Transport: cut})).TaskEvents(ctx, acc.ID, client.EventsOptions{}) {
		require.NoError(t, err)
		again = append(again, e)
	}
	assert.Equal(t, seen, again)
	assert.Equal(t, []string{"", strconv.FormatUint(seen[0].ID, 10)}, cut.lastEventIDs)

	for _, err := range newClient(t, client.WithToken("wrong")).TaskEvents(ctx, acc.ID, client.EventsOptions{}) {
		require.ErrorIs(t, err, client.ErrUnauthorized)
	}
	for _, err := range c.TaskEvents(ctx, "0123456789abcdef", client.EventsOptions{}) {
		require.ErrorIs(t, err, client.ErrUnknownTask)
	}
}

// Without the token, or with a wrong one, only the probes answer.
func TestClient_auth(t *testing.T) {
	ctx := testCtx(t)
	for _, c := range []*client.Client{mustNew(t, serverURL), mustNew(t, serverURL, client.WithToken("wrong"))} {
		_, err := c.Pools(ctx)
		require.ErrorIs(t, err, client.ErrUnauthorized)
		var e *client.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, http.StatusUnauthorized, e.StatusCode)
		_, err = c.Run(ctx, "M", json.RawMessage(`{}`))
		assert.ErrorIs(t, err, client.ErrUnauthorized)
		assert.NoError(t, c.Health(ctx))
		rd, err := c.Ready(ctx)
		require.NoError(t, err)
		assert.True(t, rd.Ready)
	}
}

func mustNew(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	require.NoError(t, err)
	return c
}

// Pools, plugins, the cluster, readiness and reload.
func TestClient_status(t *testing.T) {
	c, ctx := newClient(t), testCtx(t)
	list, err := c.Pools(ctx)
	require.NoError(t, err)
	names := []string{}
	for _, p := range list.Pools {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"CPU", "M", "ONE"}, names)
	p, err := c.Pool(ctx, "M")
	require.NoError(t, err)
	assert.Equal(t, "misbehave", p.Plugin)
	assert.Equal(t, 2, p.Size)
	require.Len(t, p.Workers, 2)
	_, err = c.Pool(ctx, "NOPE")
	assert.ErrorIs(t, err, client.ErrUnknownPool)

	plugins, err := c.Plugins(ctx)
	require.NoError(t, err)
	byName := map[string]client.Plugin{}
	for _, pl := range plugins {
		byName[pl.Name] = pl
	}
	assert.Equal(t, []string{"CPU"}, byName["cpuload"].Pools)
	assert.Len(t, byName["cpuload"].SHA256, 64)

	hosts, err := c.Cluster(ctx)
	require.NoError(t, err)
	require.Len(t, hosts, 1)
	assert.True(t, hosts[0].Self)

	rd, err := c.Ready(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ready", rd.Pools["M"])

	pools, err := c.Reload(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"CPU", "M", "ONE"}, pools)
}

// A failed task is retried, linked both ways; a running one is
// task_not_ended, an unknown one unknown_task; pages of M's tasks go
// newest first with a cursor, the input shown.
func TestClient_retryAndPages(t *testing.T) {
	c, ctx := newClient(t), testCtx(t)
	failed, err := c.Submit(ctx, client.SubmitRequest{Pool: "M", Input: json.RawMessage(`{"fault":"fail"}`)})
	require.NoError(t, err)
	task, err := c.Wait(ctx, failed.ID, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, client.StateFailed, task.State)
	assert.JSONEq(t, `{"fault":"fail"}`, string(task.Input))

	again, err := c.Retry(ctx, failed.ID)
	require.NoError(t, err)
	assert.Equal(t, failed.ID, again.RetryOf)
	old, err := c.Task(ctx, failed.ID)
	require.NoError(t, err)
	assert.Equal(t, again.ID, old.RetriedBy)
	end, err := c.Wait(ctx, again.ID, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, client.StateFailed, end.State, "failed again")

	slow, err := c.Submit(ctx, client.SubmitRequest{Pool: "M", Input: json.RawMessage(`{"fault":"sleep","ms":20000}`)})
	require.NoError(t, err)
	_, err = c.Retry(ctx, slow.ID)
	require.ErrorIs(t, err, client.ErrTaskNotEnded)
	_, err = c.Retry(ctx, "0123456789abcdef")
	require.ErrorIs(t, err, client.ErrUnknownTask)

	// Newest first: slow, the retry, the failed one.
	var ids []string
	opts := client.ListOptions{Pool: "M", Plugin: "misbehave", Limit: 1}
	for {
		p, err := c.TaskPage(ctx, opts)
		require.NoError(t, err)
		for _, task := range p.Tasks {
			ids = append(ids, task.ID)
		}
		if p.Next == "" || len(ids) == 3 {
			break
		}
		opts.Cursor = p.Next
	}
	assert.Equal(t, []string{slow.ID, again.ID, failed.ID}, ids[:3])
	_, err = c.Cancel(ctx, slow.ID)
	require.NoError(t, err)
}
