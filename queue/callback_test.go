package queue

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callbackSink is a local server that records the callbacks it receives
// and answers 500 to the first fail of them.
type callbackSink struct {
	*httptest.Server
	fail  atomic.Int32
	calls atomic.Int32
	got   chan callbackCall
}

type callbackCall struct {
	body      []byte
	signature string
}

func newCallbackSink(t *testing.T, fail int32) *callbackSink {
	t.Helper()
	s := &callbackSink{got: make(chan callbackCall, 8)}
	s.fail.Store(fail)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.calls.Add(1) <= s.fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		s.got <- callbackCall{body: body, signature: r.Header.Get(SignatureHeader)}
	}))
	t.Cleanup(s.Close)
	return s
}

// requireEmpty waits up to 10 s for the work-queue stream s to hold no
// message: all were acknowledged.
func requireEmpty(t *testing.T, s jetstream.Stream) {
	t.Helper()
	require.Eventually(t, func() bool {
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	}, 10*time.Second, 10*time.Millisecond, "stream %s still holds messages", s.CachedInfo().Config.Name)
}

// A task's final record is posted to its callback URL, signed, after a
// failed first attempt; a URL outside callbackAllow is refused at submit.
func TestEngine_callback(t *testing.T) {
	sink := newCallbackSink(t, 1)
	opts := testOptions(t.TempDir())
	opts.CallbackAllow = []string{sink.URL + "/hooks/"}
	opts.CallbackSecret = "s3cret"
	opts.CallbackBackoff = 20 * time.Millisecond
	e := startEngine(t, newManager(t, testPools()), opts)

	task, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "echo"}`), CallbackURL: sink.URL + "/hooks/done"})
	require.NoError(t, err)
	var call callbackCall
	select {
	case call = <-sink.got:
	case <-time.After(15 * time.Second):
		t.Fatal("no callback arrived")
	}
	var rec Task
	require.NoError(t, json.Unmarshal(call.body, &rec))
	assert.Equal(t, task.ID, rec.ID)
	assert.Equal(t, StateSucceeded, rec.State)
	assert.Equal(t, sign("s3cret", call.body), call.signature)
	assert.Equal(t, int32(2), sink.calls.Load(), "the first attempt got 500 and was retried")

	for _, bad := range []string{sink.URL + "/elsewhere", "ftp://x/hooks/", "http://10.0.0.1/hooks/"} {
		_, err = e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{}`), CallbackURL: bad})
		assert.ErrorIs(t, err, ErrCallbackRefused, bad)
	}
}

// Issue 23: a pending callback is stored, not held in memory: a task
// ends, its callback fails, wpm stops at once (no grace), and the next
// engine on the same store sends it, signed, the task's final record.
func TestEngine_callbackSurvivesRestart(t *testing.T) {
	sink := newCallbackSink(t, 1000)
	opts := testOptions(t.TempDir())
	opts.CallbackAllow = []string{sink.URL + "/hooks/"}
	opts.CallbackSecret = "s3cret"
	opts.CallbackBackoff = time.Second
	mgr := newManager(t, testPools())
	e := startEngine(t, mgr, opts)
	task, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "echo"}`), CallbackURL: sink.URL + "/hooks/done"})
	require.NoError(t, err)
	rec := waitFor(t, e, task.ID, ended)
	require.Eventually(t, func() bool { return sink.calls.Load() >= 1 }, 15*time.Second, 10*time.Millisecond, "no first attempt")
	now, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.Stop(now) // no grace: the callback is still pending
	select {
	case <-sink.got:
		t.Fatal("the callback was sent before the restart")
	default:
	}

	sink.fail.Store(0)
	opts.CallbackBackoff = 20 * time.Millisecond
	e = startEngine(t, mgr, opts)
	var call callbackCall
	select {
	case call = <-sink.got:
	case <-time.After(15 * time.Second):
		t.Fatal("the callback stored before the stop was never sent")
	}
	want, err := json.Marshal(rec)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(call.body), "the callback is the task's final record")
	assert.Equal(t, sign("s3cret", call.body), call.signature)
	requireEmpty(t, e.cbStream)
	e.mu.Lock()
	e.cbPending["sent-elsewhere"] = struct{}{}
	e.mu.Unlock()
	assert.Zero(t, e.forgetSent(context.Background(), -1), "a callback another host sent is no longer pending")
}

// A task canceled while queued calls back once, canceled: Cancel stores
// the callback, and the runner that later takes the task's message and
// finds it ended stores it again, which the stream drops.
func TestEngine_callbackOfCanceledTask(t *testing.T) {
	sink := newCallbackSink(t, 0)
	opts := testOptions(t.TempDir())
	opts.CallbackAllow = []string{sink.URL}
	e := startEngine(t, newManager(t, testPools()), opts)
	busy := submit(t, e, "M", `{"fault": "sleep", "ms": 500}`)
	waitFor(t, e, busy.ID, inState(StateRunning))
	task, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "echo"}`), CallbackURL: sink.URL + "/x"})
	require.NoError(t, err)
	_, err = e.Cancel(context.Background(), task.ID)
	require.NoError(t, err)
	select {
	case call := <-sink.got:
		var rec Task
		require.NoError(t, json.Unmarshal(call.body, &rec))
		assert.Equal(t, task.ID, rec.ID)
		assert.Equal(t, StateCanceled, rec.State)
	case <-time.After(15 * time.Second):
		t.Fatal("no callback for the canceled task")
	}
	waitFor(t, e, busy.ID, ended)
	requireEmpty(t, e.stream) // the runner took the canceled task's message
	requireEmpty(t, e.cbStream)
	assert.Equal(t, int32(1), sink.calls.Load(), "one callback")
}

// A stored callback this host's allowlist refuses (changed since the
// submit) is never posted: each refusal counts as an attempt, and after the
// last it leaves the stream.
func TestEngine_callbackRefusedAtDelivery(t *testing.T) {
	sink := newCallbackSink(t, 0)
	opts := testOptions(t.TempDir())
	opts.CallbackAllow = []string{sink.URL + "/hooks/"}
	opts.CallbackBackoff = 10 * time.Millisecond
	e := startEngine(t, newManager(t, testPools()), opts)
	ctx := context.Background()
	require.NoError(t, e.storeCallback(ctx, Task{ID: "refused", State: StateSucceeded, CallbackURL: sink.URL + "/elsewhere"}))
	requireEmpty(t, e.cbStream)
	cons, err := e.cbCons.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(callbackAttempts), cons.Delivered.Consumer, "one delivery per attempt")
	assert.Zero(t, sink.calls.Load())
}

// Without async.callbackAllow every callback URL is refused.
func TestEngine_callbackOff(t *testing.T) {
	e := newEngine(t)
	_, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{}`), CallbackURL: "http://127.0.0.1:1/x"})
	require.ErrorIs(t, err, ErrCallbackRefused)
	assert.Contains(t, err.Error(), "async.callbackAllow is empty")
}

// A task that ends while the engine drains still calls back before Stop
// returns.
func TestEngine_callbackDuringStop(t *testing.T) {
	sink := newCallbackSink(t, 0)
	opts := testOptions(t.TempDir())
	opts.CallbackAllow = []string{sink.URL}
	e := startEngine(t, newManager(t, testPools()), opts)
	task, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "sleep", "ms": 300}`), CallbackURL: sink.URL + "/x"})
	require.NoError(t, err)
	waitFor(t, e, task.ID, inState(StateRunning))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.Stop(ctx))
	select {
	case call := <-sink.got:
		var rec Task
		require.NoError(t, json.Unmarshal(call.body, &rec))
		assert.Equal(t, StateSucceeded, rec.State)
	default:
		t.Fatal("the callback of a task that ended during the drain was not sent")
	}
}

// The allowlist compares parsed, normalised URLs: every trick that passed
// the old text prefix is refused, and spellings of an allowed URL pass,
// posted to one normalised URL.
func TestCheckCallback_tricks(t *testing.T) {
	e := &Engine{}
	var err error
	e.opts.CallbackAllow = []string{"http://127.0.0.1:9999", "http://hooks.example/cb/", "https://Secure.Example/cb", "http://[::1]:8080/v6/"}
	e.allow, err = parseAllow(e.opts.CallbackAllow, hclog.NewNullLogger())
	require.NoError(t, err)
	for raw, want := range map[string]string{
		"http://127.0.0.1:9999/x":                "http://127.0.0.1:9999/x",
		"http://127.0.0.1:9999":                  "http://127.0.0.1:9999/",
		"HTTP://127.0.0.1:09999/a/./b/../c":      "http://127.0.0.1:9999/a/c",
		"http://hooks.example/cb/done":           "http://hooks.example/cb/done",
		"http://HOOKS.Example.:80/cb/done?x=1":   "http://hooks.example/cb/done?x=1",
		"http://hooks.example/%63b/%7e%41%3f":    "http://hooks.example/cb/~A%3F",
		"http://hooks.example/cb/x/%2e%2e/y":     "http://hooks.example/cb/y",
		"http://hooks.example/cb/@evil":          "http://hooks.example/cb/@evil",
		"https://secure.example:443/cb":          "https://secure.example/cb",
		"https://secure.example/cb/":             "https://secure.example/cb/",
		"https://secure.example/cb/deeper/still": "https://secure.example/cb/deeper/still",
		"http://[0:0::1]:8080/v6/x":              "http://[::1]:8080/v6/x",
		"http://[::1]:8080/v6/x/..":              "http://[::1]:8080/v6/",
	} {
		got, err := e.checkCallback(raw)
		if assert.NoError(t, err, raw) {
			assert.Equal(t, want, got, raw)
		}
	}
	for _, raw := range []string{
		"http://127.0.0.1:9999@127.0.0.1:9998/x",     // userinfo
		"http://user:pw@127.0.0.1:9999/x",            // userinfo
		"http://127.0.0.1:9999;@127.0.0.1:9998/x",    // userinfo
		"http://127.0.0.1:9999 @127.0.0.1:9998/x",    // space
		"http://2130706433:9999/x",                   // 127.0.0.1 as a number
		"http://\uff45xample:9999/x",                 // a fullwidth letter
		"http://127.0.0.1:9999%40127.0.0.1:9998/x",   // encoded @ in the host
		"http://127.0.0.1:99990/x",                   // longer port
		"http://127.0.0.1:9998/x",                    // other port
		"http://127.0.0.1/x",                         // default port is 80
		"https://127.0.0.1:9999/x",                   // other scheme
		"http://127.0.0.1.evil.example:9999/x",       // host prefix
		"http://127.0.0.1:9999\\@127.0.0.1:9998/x",   // backslash
		"http://hooks.example\\@127.0.0.1:9998/cb/x", // backslash
		"http://hooks.example/cb\\..\\x",             // backslash path
		"http://hooks.example/cb/../x",               // dot segment out
		"http://hooks.example/cb/%2e%2e/x",           // encoded dots
		"http://hooks.example/cb/%2E%2e",             // encoded dots, last
		"http://hooks.example/cb/.%2e/x",             // half-encoded dots
		"http://hooks.example/cb%2f..%2fx",           // encoded slash
		"http://hooks.example/cb/%2F",                // encoded slash
		"http://hooks.example/cb/a%5cb",              // encoded backslash
		"http://hooks.example/cb",                    // "/cb/" needs more
		"http://hooks.example/cbx",                   // prefix of a segment
		"http://hooks.example:8080/cb/x",             // other port
		"http://hooks.example/cb/x#frag",             // fragment
		"https://secure.example/cbx",                 // prefix of a segment
		"https://secure.example:8443/cb",             // other port
		"http://secure.example/cb",                   // other scheme
		"http://[::1]:8081/v6/x",                     // other port
		"http://[::2]:8080/v6/x",                     // other host
		"http://[::ffff:127.0.0.1]:9999/x",           // a mapped address is another host
		"http://[fe80::1%25eth0]:8080/v6/x",          // zone
		"http://127.0.0.1:9999/%zz",                  // broken escape
		"ftp://127.0.0.1:9999/x",                     // scheme
		"http:127.0.0.1:9999/x",                      // opaque
		"//127.0.0.1:9999/x",                         // no scheme
		"/x",                                         // relative
	} {
		_, err := e.checkCallback(raw)
		if assert.ErrorIs(t, err, ErrCallbackRefused, raw) {
			assert.Contains(t, err.Error(), "callbackUrl", raw)
		}
	}
}

// Entries of async.callbackAllow are URLs without user information, query
// or fragment; one with no path warns that it allows a whole origin.
func TestParseAllow(t *testing.T) {
	for _, bad := range []string{"ftp://x/", "http://u@x/", "http://x/?a=1", "http://x/#a", "/cb/", "http://x\\y/", "http://x/%2f/"} {
		_, err := parseAllow([]string{"http://ok/", bad}, hclog.NewNullLogger())
		if assert.Error(t, err, bad) {
			assert.Contains(t, err.Error(), "async.callbackAllow[1]", bad)
			assert.NoError(t, CheckCallbackAllow("http://ok/"))
			assert.Error(t, CheckCallbackAllow(bad), bad)
		}
	}
	var log strings.Builder
	logger := hclog.New(&hclog.LoggerOptions{Output: &log})
	_, err := parseAllow([]string{"http://127.0.0.1:9999/", "http://127.0.0.1:9998/cb"}, logger)
	require.NoError(t, err)
	assert.Empty(t, log.String())
	_, err = parseAllow([]string{"http://127.0.0.1:9999"}, logger)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "allows every URL of its scheme, host and port")
}
