package wire

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/rpc"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a task that records the order its inputs ran in and the
// most that ran at once; an input "block" waits until release is closed.
type recorder struct {
	mu       sync.Mutex
	order    []string
	running  int
	most     int
	release  chan struct{}
	blocking chan struct{} // receives when a "block" task runs
}

func newRecorder() *recorder {
	return &recorder{release: make(chan struct{}), blocking: make(chan struct{}, 16)}
}

func (r *recorder) Run(_ context.Context, input []byte) ([]byte, error) {
	r.mu.Lock()
	r.order = append(r.order, string(input))
	r.running++
	r.most = max(r.most, r.running)
	r.mu.Unlock()
	if string(input) == "block" {
		r.blocking <- struct{}{}
		<-r.release
	}
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
	return input, nil
}

// openPipeline dispenses impl in-process and opens its pipeline.
func openPipeline(t *testing.T, impl Task) *Pipeline {
	t.Helper()
	client, _ := plugin.TestPluginRPCConn(t, PluginSet(impl), nil)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	require.NoError(t, err)
	pc, ok := raw.(*PipelineClient)
	require.True(t, ok, "dispensed %T", raw)
	pl, err := pc.OpenPipeline()
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = pl.Close()
		<-pl.Ended()
	})
	return pl
}

// answer waits, bounded, for a numbered task's answer.
func answer(t *testing.T, c *SeqCall) *SeqRunReply {
	t.Helper()
	select {
	case <-c.Done:
		require.NoError(t, c.Err)
		return &c.Reply
	case <-time.After(10 * time.Second):
		t.Fatalf("task %d never answered", c.Seq)
		return nil
	}
}

func TestPipeline_runsInOrderAtMostConcurrency(t *testing.T) {
	for _, concurrency := range []int{1, 3} {
		t.Run("concurrency="+strconv.Itoa(concurrency), func(t *testing.T) {
			r := newRecorder()
			pl := openPipeline(t, r)
			first := pl.Send(context.Background(), []byte("block"), 0, concurrency)
			<-r.blocking
			var calls []*SeqCall
			for i := range 20 {
				calls = append(calls, pl.Send(context.Background(), []byte(strconv.Itoa(i)), time.Minute, concurrency))
			}
			close(r.release)
			answer(t, first)
			for i, c := range calls {
				reply := answer(t, c)
				assert.Equal(t, strconv.Itoa(i), string(reply.Output))
			}
			last := calls[len(calls)-1].Seq
			require.Eventually(t, func() bool { return pl.Started(last) }, 10*time.Second, time.Millisecond,
				"every start is reported")
			r.mu.Lock()
			defer r.mu.Unlock()
			want := []string{"block"}
			for i := range 20 {
				want = append(want, strconv.Itoa(i))
			}
			if concurrency == 1 {
				assert.Equal(t, want, r.order, "tasks start in the order sent")
			} else {
				assert.ElementsMatch(t, want, r.order)
			}
			assert.LessOrEqual(t, r.most, concurrency)
		})
	}
}

func TestPipeline_canceledWaitingTaskNeverRuns(t *testing.T) {
	r := newRecorder()
	pl := openPipeline(t, r)
	first := pl.Send(context.Background(), []byte("block"), 0, 1)
	<-r.blocking
	dropped := pl.Send(context.Background(), []byte("dropped"), 0, 1)
	kept := pl.Send(context.Background(), []byte("kept"), 0, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	started, err := pl.Cancel(ctx, dropped.Seq)
	require.NoError(t, err)
	assert.False(t, started)
	assert.True(t, answer(t, dropped).Skipped)

	started, err = pl.Cancel(ctx, first.Seq)
	require.NoError(t, err)
	assert.True(t, started, "the running task had started")

	close(r.release)
	answer(t, first)
	assert.Equal(t, "kept", string(answer(t, kept).Output))
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Equal(t, []string{"block", "kept"}, r.order)
}

func TestPipeline_cancelBeforeArrival(t *testing.T) {
	g := newGate()
	assert.False(t, g.cancel(1), "not started")
	assert.False(t, g.enter(1, 1), "a task canceled before it arrived is skipped")
	assert.True(t, g.enter(2, 1), "the next one runs")
	g.leave()
	assert.Empty(t, g.canceled)
	assert.Empty(t, g.waiting)
}

// legacyPlugin serves a Task the way an SDK built before pipelining did:
// an RPCServer with Run only.
type legacyPlugin struct{ impl Task }

func (p legacyPlugin) Server(*plugin.MuxBroker) (any, error) { return &RPCServer{Impl: p.impl}, nil }
func (p legacyPlugin) Client(b *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return (&TaskPlugin{}).Client(b, c)
}

func TestPipeline_olderPluginKeepsRun(t *testing.T) {
	client, _ := plugin.TestPluginRPCConn(t, plugin.PluginSet{PluginName: legacyPlugin{impl: newRecorder()}}, nil)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	require.NoError(t, err)
	pc := raw.(*PipelineClient)
	_, err = pc.OpenPipeline()
	require.Error(t, err, "a plugin without Plugin.Open can't pipeline")
	out, err := pc.Run(context.Background(), []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, "x", string(out))
}

// A task canceled before it arrived, which then arrives while an earlier
// task still waits, must stay skipped: the gate passes its number later
// and admits what follows.
func TestGate_lateArrivalOfCanceledTaskKeepsItsSkip(t *testing.T) {
	g := newGate()
	require.True(t, g.enter(1, 1)) // runs
	second := make(chan bool, 1)
	go func() { second <- g.enter(2, 1) }() // waits behind 1
	require.Eventually(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiting) == 1 }, 5*time.Second, time.Millisecond)

	assert.False(t, g.cancel(3), "3 has not arrived")
	assert.False(t, g.enter(3, 1), "3 arrives canceled")
	assert.False(t, g.cancel(3), "a second cancel changes nothing")
	assert.False(t, g.cancel(2))
	assert.False(t, <-second)

	g.leave() // 1 ends
	fourth := make(chan bool, 1)
	go func() { fourth <- g.enter(4, 1) }()
	select {
	case ok := <-fourth:
		assert.True(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("task 4 was never admitted: the gate stopped at a skipped number")
	}
	g.leave()
	g.mu.Lock()
	defer g.mu.Unlock()
	assert.Empty(t, g.canceled, "no skip markers are left behind")
	assert.Empty(t, g.waiting)
}

// The pipeline socket serves only a connection that brings the token.
func TestPipeline_socketWantsToken(t *testing.T) {
	s := newPipelineServer(newRecorder(), nil)
	var reply OpenReply
	require.NoError(t, s.Open(OpenArgs{Version: PipelineVersion}, &reply))
	require.Error(t, s.Open(OpenArgs{Version: PipelineVersion}, &OpenReply{}), "one pipeline per worker")

	stranger, err := net.Dial("unix", reply.Addr)
	require.NoError(t, err)
	_, err = stranger.Write(make([]byte, pipelineTokenLen))
	require.NoError(t, err)
	_ = stranger.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = stranger.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "a wrong token is hung up on")
	_ = stranger.Close()

	conn, err := net.Dial("unix", reply.Addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(reply.Token)
	require.NoError(t, err)
	out := newFrameWriter(conn)
	require.NoError(t, out.send(frameTask, 1, make([]byte, taskFields), []byte("hello"), flushNow))
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	kind, seq, _, err := readFrame(r)
	require.NoError(t, err)
	assert.Equal(t, []any{frameStarted, uint64(1)}, []any{kind, seq}, "the start report comes first")
	kind, seq, body, err := readFrame(r)
	require.NoError(t, err)
	assert.Equal(t, []any{frameResult, uint64(1), resultOK, "hello"}, []any{kind, seq, body[8], string(body[10:])})

	_, err = net.Dial("unix", reply.Addr)
	assert.Error(t, err, "the socket is gone once the host is connected")
}

// A connection that ends fails every task waiting for its answer with
// ErrTransport, and later sends and cancels fail at once.
func TestPipeline_connectionEndFailsWaitingTasks(t *testing.T) {
	rec := newRecorder()
	pl := openPipeline(t, rec)
	first := pl.Send(context.Background(), []byte("block"), 0, 1)
	<-rec.blocking
	waiting := pl.Send(context.Background(), []byte("after"), 0, 1)
	require.Eventually(t, func() bool { return pl.Started(first.Seq) }, 10*time.Second, time.Millisecond)

	require.NoError(t, pl.Close())
	for _, c := range []*SeqCall{first, waiting} {
		select {
		case <-c.Done:
			require.ErrorIs(t, c.Err, ErrTransport)
		case <-time.After(10 * time.Second):
			t.Fatalf("task %d never failed", c.Seq)
		}
	}
	<-pl.Ended()
	assert.True(t, pl.Started(first.Seq))
	assert.False(t, pl.Started(waiting.Seq), "the waiting task never started")
	late := pl.Send(context.Background(), []byte("late"), 0, 1)
	<-late.Done
	assert.ErrorIs(t, late.Err, ErrTransport)
	_, err := pl.Cancel(context.Background(), waiting.Seq)
	assert.ErrorIs(t, err, ErrTransport)
	close(rec.release)
}
