package async

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callbackSink is a local server that records the callbacks it receives
// and answers 500 to the first fail of them.
type callbackSink struct {
	*httptest.Server
	fail  int32
	calls atomic.Int32
	got   chan callbackCall
}

type callbackCall struct {
	body      []byte
	signature string
}

func newCallbackSink(t *testing.T, fail int32) *callbackSink {
	t.Helper()
	s := &callbackSink{fail: fail, got: make(chan callbackCall, 8)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.calls.Add(1) <= s.fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		s.got <- callbackCall{body: body, signature: r.Header.Get(SignatureHeader)}
	}))
	t.Cleanup(s.Close)
	return s
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
