package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// receiver is a local server that records the callbacks it receives; it
// answers 500 while down is set.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	down  bool
	calls []receivedCall
	got   chan receivedCall
}

// receivedCall is one callback a receiver got.
type receivedCall struct {
	path, signature string
	body            []byte
	status          int
}

// newReceiver starts a receiver, answering 500 when down, and closes it at
// the end.
func newReceiver(t *testing.T, down bool) *receiver {
	t.Helper()
	r := &receiver{down: down, got: make(chan receivedCall, 16)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		call := receivedCall{path: req.URL.Path, signature: req.Header.Get("X-Wpm-Signature"), body: body, status: http.StatusOK}
		r.mu.Lock()
		if r.down {
			call.status = http.StatusInternalServerError
		}
		r.calls = append(r.calls, call)
		r.mu.Unlock()
		w.WriteHeader(call.status)
		if call.status == http.StatusOK {
			r.got <- call
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// received returns the calls so far.
func (r *receiver) received() []receivedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedCall(nil), r.calls...)
}

// setDown makes the receiver answer 500 (true) or 200 (false).
func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// next waits for the next callback answered 200.
func (r *receiver) next(t *testing.T, within time.Duration) receivedCall {
	t.Helper()
	select {
	case call := <-r.got:
		return call
	case <-time.After(within):
		t.Fatalf("no callback arrived within %s", within)
		return receivedCall{}
	}
}

// Issue 23, item 1: with callbackAllow ["http://127.0.0.1:A"], a
// callbackUrl http://127.0.0.1:A@127.0.0.1:B/x (user information) or one
// leaving an allowed path with encoded dots is refused at submit with 400
// naming callbackUrl, and the listener on B receives nothing; an allowed
// one still calls back.
func TestServe_callbackAllowBypass(t *testing.T) {
	allowed, other := newReceiver(t, false), newReceiver(t, false)
	config := fmt.Sprintf("async: {callbackAllow: [%q, %q]}\npools:\n  - {name: M, plugin: misbehave, workers: 1}\n", allowed.URL, other.URL+"/cb/")
	s := startServeConfig(t, config)
	aHost, bHost := strings.TrimPrefix(allowed.URL, "http://"), strings.TrimPrefix(other.URL, "http://")
	for _, bad := range []string{
		"http://" + aHost + "@" + bHost + "/x",
		"http://" + bHost + "/cb/%2e%2e/x",
		"http://" + bHost + "/cb/../x",
		"http://" + bHost + "/cbx",
		"http://" + aHost + "\\@" + bHost + "/x",
	} {
		status, body := postJSON(t, s.url+"/v1/pools/M/tasks?async=true&callbackUrl="+url.QueryEscape(bad), `{"fault": "echo"}`)
		require.Equal(t, http.StatusBadRequest, status, "%s: %v", bad, body)
		e, _ := body["error"].(map[string]any)
		assert.Equal(t, "bad_request", e["code"], bad)
		assert.Contains(t, e["message"], "callbackUrl", bad)
	}
	status, body := postJSON(t, s.url+"/v1/pools/M/tasks?async=true&callbackUrl="+url.QueryEscape(other.URL+"/cb/./ok"), `{"fault": "echo"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "/cb/ok", other.next(t, 15*time.Second).path, "the POST goes to the normalised URL")
	assert.Len(t, other.received(), 1, "only the allowed callback reached the second listener")
	assert.Empty(t, allowed.received())
}

// Issue 23: a pending callback survives a SIGKILL. The receiver answers
// 500 to the first attempt, wpm is killed, and after a restart on the same
// store the callback arrives, signed, with the task's final record.
func TestServe_callbackSurvivesSIGKILL(t *testing.T) {
	recv := newReceiver(t, true)
	config := fmt.Sprintf("async: {ackWait: 2s, callbackAllow: [%q], callbackSecret: s3cret}\npools:\n  - {name: M, plugin: misbehave, workers: 1}\n", recv.URL+"/hooks/")
	env := "WPM_NATS_STOREDIR=" + t.TempDir()
	s := startServeConfig(t, config, env)
	status, body := postJSON(t, s.url+"/v1/pools/M/tasks?async=true&callbackUrl="+url.QueryEscape(recv.URL+"/hooks/done"), `{"fault": "echo"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	id := body["id"].(string)
	require.Eventually(t, func() bool { return len(recv.received()) > 0 }, 15*time.Second, 5*time.Millisecond, "no first attempt")
	require.NoError(t, s.cmd.Process.Kill())
	s.done <- <-s.done // wait for the exit; leave it for the cleanup

	recv.setDown(false)
	s = startServeConfig(t, config, env)
	call := recv.next(t, 20*time.Second)
	resp, err := http.Get(s.url + "/v1/tasks/" + id)
	require.NoError(t, err)
	record, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.JSONEq(t, string(record), string(call.body), "the callback is the task's final record")
	assert.Contains(t, string(call.body), `"state":"succeeded"`)
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(call.body)
	assert.Equal(t, "sha256="+hex.EncodeToString(mac.Sum(nil)), call.signature)
	attempts := recv.received()
	assert.Equal(t, http.StatusInternalServerError, attempts[0].status)
	t.Logf("%d attempts: the first before the kill, answered 500; the callback arrived after the restart", len(attempts))
}
