package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/cmd/wpm/internal/events"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// sseEvent is one event read from a stream.
type sseEvent struct {
	ID   string
	Type string
	Data map[string]any
}

// eventStream is an open Server-Sent Events response, read by a goroutine
// that ends when the response is closed.
type eventStream struct {
	resp   *http.Response
	events chan sseEvent // closed at the end of the stream
}

// openStream sends method path with the token and headers, checks the
// answer's status and content type against the OpenAPI document, and
// returns the stream of a 200 (nil for other statuses, with the answer).
func (s *server) openStream(t *testing.T, method, path, body, token string, header map[string]string) (*eventStream, answer) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.Raw = string(raw)
		checkDocumented(t, s.seen, method, path, a)
		return nil, a
	}
	checkDocumented(t, s.seen, method, path, a)
	es := &eventStream{resp: resp, events: make(chan sseEvent, 1024)}
	go es.read()
	t.Cleanup(func() { resp.Body.Close() })
	return es, a
}

func (es *eventStream) read() {
	defer close(es.events)
	sc := bufio.NewScanner(es.resp.Body)
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if e.Type != "" {
				es.events <- e
			}
			e = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			e.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.Type = line[7:]
		case strings.HasPrefix(line, "data: "):
			_ = json.Unmarshal([]byte(line[6:]), &e.Data)
		}
	}
}

// next returns the next event, failing t if none comes within 20 s; ok is
// false at the end of the stream.
func (es *eventStream) next(t *testing.T) (sseEvent, bool) {
	t.Helper()
	select {
	case e, ok := <-es.events:
		return e, ok
	case <-time.After(20 * time.Second):
		require.FailNow(t, "no event within 20 s")
		return sseEvent{}, false
	}
}

// until reads events until one matches stop, and returns them all.
func (es *eventStream) until(t *testing.T, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var got []sseEvent
	for {
		e, ok := es.next(t)
		require.True(t, ok, "the stream ended after %v", types(got))
		got = append(got, e)
		if stop(e) {
			return got
		}
	}
}

func types(evs []sseEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// postAsync posts body to path off the test goroutine; the answer's status
// arrives on the channel.
func (s *server) postAsync(path, body string) <-chan int {
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post(s.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}

// runWhileStreaming runs body on pool CPU and returns es's events up to a
// task.finished, checking that the task's answer was 200.
func (s *server) runWhileStreaming(t *testing.T, es *eventStream, body string) []sseEvent {
	t.Helper()
	answered := s.postAsync("/v1/pools/CPU/tasks", body)
	evs := es.until(t, func(e sseEvent) bool { return e.Type == "task.finished" })
	require.Equal(t, http.StatusOK, <-answered)
	return evs
}

// requireTaskLifecycle checks that evs, one task's events, are queued,
// started, progress rising, finished with code.
func requireTaskLifecycle(t *testing.T, evs []sseEvent, code string) {
	t.Helper()
	require.GreaterOrEqual(t, len(evs), 3, "%v", types(evs))
	assert.Equal(t, "task.queued", evs[0].Type)
	assert.Equal(t, "task.started", evs[1].Type)
	assert.NotZero(t, evs[1].Data["pid"])
	last := evs[len(evs)-1]
	assert.Equal(t, "task.finished", last.Type)
	assert.Equal(t, code, last.Data["code"])
	prev, n := -1.0, 0
	for _, e := range evs[2 : len(evs)-1] {
		require.Equal(t, "task.progress", e.Type)
		f, _ := e.Data["fraction"].(float64)
		assert.GreaterOrEqual(t, f, prev, "progress rises")
		prev = f
		n++
	}
	assert.Positive(t, n, "progress was reported: %v", types(evs))
}

func TestEvents_taskLifecycleAndResume(t *testing.T) {
	s := newServer(t)
	all, _ := s.openStream(t, "GET", "/v1/events", "", "", nil)
	require.NotNil(t, all)
	evs := s.runWhileStreaming(t, all, `{"duration": 400}`)
	var mine []sseEvent
	for _, e := range evs {
		if e.Data["task"] != nil {
			mine = append(mine, e)
		}
	}
	requireTaskLifecycle(t, mine, "ok")
	for i := 1; i < len(mine); i++ {
		assert.Less(t, idOf(t, mine[i-1]), idOf(t, mine[i]), "ids rise")
	}
	task, _ := mine[0].Data["task"].(string)

	// Resume after the first event: the rest come again, in order.
	resumed, _ := s.openStream(t, "GET", "/v1/events", "", "", map[string]string{"Last-Event-ID": mine[0].ID})
	require.NotNil(t, resumed)
	again := resumed.until(t, func(e sseEvent) bool { return e.Type == "task.finished" })
	assert.Equal(t, mine[1].ID, again[0].ID)

	// One task's stream: its kept events, ending with task.finished.
	one, _ := s.openStream(t, "GET", "/v1/tasks/"+task+"/events", "", "", nil)
	require.NotNil(t, one)
	got := one.until(t, func(e sseEvent) bool { return e.Type == "task.finished" })
	requireTaskLifecycle(t, got, "ok")
	_, more := one.next(t)
	assert.False(t, more, "the stream ends after task.finished")
}

func idOf(t *testing.T, e sseEvent) int {
	t.Helper()
	var id int
	_, err := fmt.Sscan(e.ID, &id)
	require.NoError(t, err, "event id %q", e.ID)
	return id
}

// requireStreamedTask runs a pool task with Accept: text/event-stream,
// checks its events and result, and returns the task's id.
func (s *server) requireStreamedTask(t *testing.T, token string) string {
	t.Helper()
	es, a := s.openStream(t, "POST", "/v1/pools/CPU/tasks", `{"duration": 400}`, token, nil)
	require.NotNil(t, es, "status %d: %s", a.Status, a.Raw)
	evs := es.until(t, func(e sseEvent) bool { return e.Type == "result" || e.Type == "error" })
	last := evs[len(evs)-1]
	require.Equal(t, "result", last.Type, "%v", last.Data)
	assert.Equal(t, true, last.Data["ok"])
	assert.Equal(t, "CPU", last.Data["pool"])
	result, _ := last.Data["result"].(map[string]any)
	assert.EqualValues(t, 400, result["requestedMs"])
	finished := sseEvent{Type: "task.finished", Data: map[string]any{"code": "ok"}}
	requireTaskLifecycle(t, append(evs[:len(evs)-1:len(evs)-1], finished), "ok")
	_, more := es.next(t)
	assert.False(t, more, "the stream ends with the result")
	for i, e := range evs { // numbered from 1, the result last
		assert.Equal(t, strconv.Itoa(i+1), e.ID, "event %d (%s)", i, e.Type)
	}
	id, _ := last.Data["id"].(string)
	return id
}

func TestEvents_syncTaskStream(t *testing.T) {
	s := newServer(t)
	s.requireStreamedTask(t, "")
	// A task error is the stream's last event; an unknown pool is a plain 404.
	es, _ := s.openStream(t, "POST", "/v1/pools/M/tasks", `{"fault": "fail"}`, "", nil)
	require.NotNil(t, es)
	evs := es.until(t, func(e sseEvent) bool { return e.Type == "error" })
	errBody, _ := evs[len(evs)-1].Data["error"].(map[string]any)
	assert.Equal(t, "task_failed", errBody["code"])
	es, a := s.openStream(t, "POST", "/v1/pools/nope/tasks", `{}`, "", nil)
	assert.Nil(t, es)
	assert.Equal(t, http.StatusNotFound, a.Status)
}

func TestEvents_workerReplaced(t *testing.T) {
	s := newServer(t)
	all, _ := s.openStream(t, "GET", "/v1/events", "", "", nil)
	require.NotNil(t, all)
	answered := s.postAsync("/v1/pools/M/tasks", `{"fault": "crash"}`)
	// The pool's first worker.started may come after the stream opened:
	// what counts starts at the exit.
	var seen []string
	all.until(t, func(e sseEvent) bool {
		if e.Data["pool"] != "M" || !strings.HasPrefix(e.Type, "worker.") || (len(seen) == 0 && e.Type != "worker.exited") {
			return false
		}
		seen = append(seen, e.Type)
		if e.Type == "worker.exited" {
			assert.NotEmpty(t, e.Data["reason"])
			assert.NotZero(t, e.Data["pid"])
		}
		return e.Type == "worker.started"
	})
	assert.Equal(t, http.StatusBadGateway, <-answered)
	assert.Equal(t, []string{"worker.exited", "worker.replaced", "worker.started"}, seen)
}

func TestEvents_authAndShutdown(t *testing.T) {
	const token = "s3cret"
	s := newServer(t, withAuth(token, false))
	es, a := s.openStream(t, "GET", "/v1/events", "", "", nil)
	assert.Nil(t, es)
	assert.Equal(t, http.StatusUnauthorized, a.Status)
	es, a = s.openStream(t, "GET", "/v1/events", "", token, map[string]string{"Last-Event-ID": "x"})
	assert.Nil(t, es)
	assert.Equal(t, http.StatusBadRequest, a.Status)
	es, _ = s.openStream(t, "GET", "/v1/events", "", token, nil)
	require.NotNil(t, es)
	s.api.StartShutdown()
	_, more := es.next(t)
	assert.False(t, more, "shutdown ends the stream")
}

// withKeepAlive sets how often idle event streams send a comment.
func withKeepAlive(d time.Duration) serverOption {
	return func(_ *host.Config, o *api.Options) { o.KeepAlive = d }
}

func TestEvents_keepAlive(t *testing.T) {
	s := newServer(t, withKeepAlive(20*time.Millisecond))
	req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == ": keep-alive" {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		assert.True(t, ok, "the stream ended without a keep-alive")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no keep-alive within 10 s")
	}
}

// An asynchronous task's events carry its own id, so its stream can be
// followed from the moment it is accepted: a pool task and a one-shot.
func TestEvents_asyncTaskStreamsByItsID(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{"/v1/pools/CPU/tasks?async=true", "/v1/plugins/cpuload/run?async=true"} {
		id := s.submitAsync(t, path, `{"duration": 300}`)
		one, a := s.openStream(t, "GET", "/v1/tasks/"+id+"/events", "", "", nil)
		require.NotNil(t, one, "%s: status %d: %s", path, a.Status, a.Raw)
		got := one.until(t, func(e sseEvent) bool { return e.Type == "task.finished" })
		for _, e := range got {
			assert.Equal(t, id, e.Data["task"], "%s: every event names the async id", path)
		}
		assert.Equal(t, "task.finished", got[len(got)-1].Type)
		assert.Equal(t, "ok", got[len(got)-1].Data["code"])
		_, more := one.next(t)
		assert.False(t, more, "the stream ends after task.finished")
		rec := s.do(t, "GET", "/v1/tasks/"+id, nil)
		assert.Equal(t, id, rec.Body["id"])
	}
	// An id no task has is still a 404.
	_, a := s.openStream(t, "GET", "/v1/tasks/0123456789abcdef/events", "", "", nil)
	assert.Equal(t, http.StatusNotFound, a.Status)
}

// Resuming with a Last-Event-ID this process never gave is a stream.gap,
// then the live events: one from before a restart (it sent nothing at
// all) and 2^64-1 (it replayed everything). A task's stream opened
// without Last-Event-ID has no gap, however many events went before.
func TestEvents_resumeGaps(t *testing.T) {
	var old string
	t.Run("before the restart", func(t *testing.T) { // its server stops at its end
		before := newServer(t)
		all, _ := before.openStream(t, "GET", "/v1/events", "", "", nil)
		require.NotNil(t, all)
		evs := before.runWhileStreaming(t, all, `{"duration": 1}`)
		old = evs[len(evs)-1].ID
	})
	require.NotEmpty(t, old)

	s := newServer(t) // the process after a restart
	for _, lastID := range []string{old, "18446744073709551615"} {
		es, _ := s.openStream(t, "GET", "/v1/events", "", "", map[string]string{"Last-Event-ID": lastID})
		require.NotNil(t, es)
		first, ok := es.next(t)
		require.True(t, ok)
		assert.Equal(t, "stream.gap", first.Type, "Last-Event-ID %s", lastID)
		got := s.runWhileStreaming(t, es, `{"duration": 1}`)
		if lastID != old {
			assert.Equal(t, "task.queued", got[0].Type, "after the gap the live events, no replay: %v", types(got))
		}
	}

	for i := range events.DefaultSize + 10 {
		s.bus.Publish(host.Event{Type: host.EventTaskProgress, TaskID: "other", Fraction: float64(i) / 1e4, Time: time.Now()})
	}
	id := s.submitAsync(t, "/v1/pools/CPU/tasks?async=true", `{"duration": 1}`)
	one, a := s.openStream(t, "GET", "/v1/tasks/"+id+"/events", "", "", nil)
	require.NotNil(t, one, "status %d: %s", a.Status, a.Raw)
	got := one.until(t, func(e sseEvent) bool { return e.Type == "task.finished" })
	assert.NotContains(t, types(got), "stream.gap")
}

// An asynchronous task that is retried streams every attempt's events,
// and its stream ends once its record ended, after the last attempt's
// task.finished; opened after the end, it replays them all.
func TestEvents_asyncTaskStreamsEveryAttempt(t *testing.T) {
	s := newServer(t)
	s.tasks.SetRetries(map[string]queue.Retries{"M": {Max: 2, Backoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}})
	id := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "crash"}`)
	count := func(got []sseEvent, typ string) int {
		n := 0
		for _, e := range got {
			if e.Type == typ {
				n++
			}
		}
		return n
	}
	for _, when := range []string{"while it runs", "after it ended"} {
		one, a := s.openStream(t, "GET", "/v1/tasks/"+id+"/events", "", "", nil)
		require.NotNil(t, one, "%s: status %d: %s", when, a.Status, a.Raw)
		var got []sseEvent
		for {
			e, more := one.next(t)
			if !more {
				break
			}
			got = append(got, e)
		}
		require.NotEmpty(t, got, when)
		assert.Equal(t, 3, count(got, "task.started"), "%s: three attempts", when)
		assert.Equal(t, 3, count(got, "task.finished"), "%s: each ends", when)
		last := got[len(got)-1]
		assert.Equal(t, "task.finished", last.Type, when)
		assert.Equal(t, "worker_crashed", last.Data["code"], when)
		rec := s.do(t, "GET", "/v1/tasks/"+id, nil)
		assert.Equal(t, "failed", rec.Body["state"], "%s: the stream ended with the record", when)
	}
}
