package shared

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
)

// Pipelining lets the host send a worker more tasks than it runs at once:
// the extra ones wait at the worker, so it never idles while an answer
// travels back and the next task travels out. The host numbers each task it
// sends to one worker (1, 2, 3, … in the order sent); the plugin admits them
// strictly in that order, at most the pool's concurrency at a time, and
// reports each admission ("task seq started") on a go-plugin broker stream
// before the task runs, so that after a crash the host knows which tasks
// never started and can send them to another worker. A task the host gives
// up on while it waits is cancelled with [PipelineClient.Cancel] and never
// runs. A plugin built before pipelining has no Plugin.Open method; the host
// then sends it one task per free place, as before.

// PipelineVersion is the pipelining protocol this SDK speaks, reported by
// Plugin.Open.
const PipelineVersion = 1

// The net/rpc names of the pipelining methods.
const (
	rpcOpen   = "Plugin.Open"
	rpcRunSeq = "Plugin.RunSeq"
	rpcCancel = "Plugin.Cancel"
)

// OpenArgs is the request of Plugin.Open. It has no fields yet.
type OpenArgs struct{}

// OpenReply is the answer of Plugin.Open: the broker stream the plugin
// accepts for its start reports, and its protocol version.
type OpenReply struct {
	Stream  uint32
	Version int
}

// SeqRunArgs is the request of one numbered task, Plugin.RunSeq.
type SeqRunArgs struct {
	// Input is the task's JSON input.
	Input []byte
	// Timeout is how long the host will wait for the answer, counted from
	// when the plugin receives the task (waiting included); zero means no
	// limit.
	Timeout time.Duration
	// Seq is the task's number on this worker: 1 for the first, then one
	// more for each task sent.
	Seq uint64
	// Concurrency is how many numbered tasks the plugin may run at once;
	// the latest task's value counts, so a reload applies at once.
	Concurrency int
	// Progress and Call are as in [RunArgs]: where the task's progress
	// reports go, if anyone listens.
	Progress uint32
	Call     uint64
}

// SeqRunReply is the answer of Plugin.RunSeq.
type SeqRunReply struct {
	Output []byte
	// Err is nil when the task succeeded.
	Err *WireError
	// Skipped is set when the task was cancelled before it started.
	Skipped bool
	// Ran is how long the task ran, its wait at the worker not included.
	Ran time.Duration
}

// CancelArgs is the request of Plugin.Cancel.
type CancelArgs struct {
	Seq uint64
}

// CancelReply is the answer of Plugin.Cancel: Started is set when the task
// had started already (it then runs on; the host decides what to do).
type CancelReply struct {
	Started bool
}

// pipelineServer is the plugin side: the [RPCServer] plus the admission
// gate of numbered tasks and the broker to open the report stream on.
type pipelineServer struct {
	*RPCServer
	broker *plugin.MuxBroker
	gate   *gate
}

func newPipelineServer(impl Task, b *plugin.MuxBroker) *pipelineServer {
	return &pipelineServer{RPCServer: &RPCServer{Impl: impl, progress: newProgressPlugin(b)}, broker: b, gate: newGate()}
}

// Run runs an unnumbered task at once, as before pipelining; it counts
// against the concurrency of numbered ones.
func (s *pipelineServer) Run(args RunArgs, reply *RunReply) error {
	s.gate.enterNow()
	defer s.gate.leave()
	return s.RPCServer.Run(args, reply)
}

// Open starts accepting the host's report stream and returns its id. The
// stream is ready once the host has dialled it; numbered tasks wait for
// that (bounded by the broker's accept timeout).
func (s *pipelineServer) Open(_ OpenArgs, reply *OpenReply) error {
	if s.broker == nil {
		return errors.New("pipelining needs a go-plugin broker")
	}
	id := s.broker.NextId()
	go func() {
		conn, err := s.broker.Accept(id)
		if err != nil {
			conn = nil // start reports are dropped; the host saw the dial fail
		}
		s.gate.setReports(conn)
	}()
	reply.Stream, reply.Version = id, PipelineVersion
	return nil
}

// RunSeq runs a numbered task once its turn comes, or skips it if the host
// cancelled it before. The task runs as [RPCServer.Run] runs it, with the
// host's timeout counted from the task's arrival. Like Run it always
// returns nil.
func (s *pipelineServer) RunSeq(args SeqRunArgs, reply *SeqRunReply) error {
	arrived := time.Now()
	if !s.gate.enter(args.Seq, args.Concurrency) {
		reply.Skipped = true
		return nil
	}
	defer s.gate.leave()
	run := RunArgs{Input: args.Input, Progress: args.Progress, Call: args.Call}
	if args.Timeout > 0 {
		run.Timeout = max(args.Timeout-time.Since(arrived), time.Nanosecond)
	}
	var r RunReply
	start := time.Now()
	err := s.RPCServer.Run(run, &r)
	reply.Ran = time.Since(start)
	reply.Output, reply.Err = r.Output, r.Err
	return err
}

// Cancel drops a numbered task that has not started.
func (s *pipelineServer) Cancel(args CancelArgs, reply *CancelReply) error {
	reply.Started = s.gate.cancel(args.Seq)
	return nil
}

// gate admits numbered tasks strictly in order, at most limit running at
// once (unnumbered tasks count as running too), and writes each admitted
// number to the report stream before the task is released.
type gate struct {
	mu        sync.Mutex
	next      uint64 // the lowest number not yet admitted or skipped
	running   int
	limit     int
	waiting   map[uint64]chan bool // arrived, not yet admitted: true admits, false skips
	cancelled map[uint64]bool      // cancelled before admission; true once the task arrived

	ready   chan struct{} // closed once the report stream is set (or failed)
	reports net.Conn      // nil when it failed
	buf     [8]byte
}

func newGate() *gate {
	return &gate{next: 1, limit: 1, waiting: map[uint64]chan bool{}, cancelled: map[uint64]bool{}, ready: make(chan struct{})}
}

// setReports sets the report stream, once.
func (g *gate) setReports(c net.Conn) {
	g.mu.Lock()
	g.reports = c
	g.mu.Unlock()
	close(g.ready)
}

// enterNow counts an unnumbered task as running.
func (g *gate) enterNow() {
	g.mu.Lock()
	g.running++
	g.mu.Unlock()
}

// enter waits for task seq's turn and reports whether it may run (false:
// it was cancelled). limit, if positive, becomes the gate's limit.
func (g *gate) enter(seq uint64, limit int) bool {
	<-g.ready
	g.mu.Lock()
	if limit > 0 {
		g.limit = limit
	}
	if _, ok := g.cancelled[seq]; ok { // cancelled before it arrived
		if seq < g.next {
			delete(g.cancelled, seq) // admit has passed its number
		} else {
			g.cancelled[seq] = true // admit must still skip it
		}
		g.mu.Unlock()
		return false
	}
	if seq < g.next { // a number sent twice: never done by wpm's host
		g.running++
		g.mu.Unlock()
		return true
	}
	turn := make(chan bool, 1)
	g.waiting[seq] = turn
	g.admit()
	g.mu.Unlock()
	return <-turn
}

// leave marks a running task done and admits the next ones.
func (g *gate) leave() {
	g.mu.Lock()
	g.running--
	g.admit()
	g.mu.Unlock()
}

// cancel drops task seq unless it started, and reports whether it had. The
// host cancels a task at most once; a number the gate has passed counts as
// started.
func (g *gate) cancel(seq uint64) (started bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if seq < g.next {
		return true
	}
	if _, ok := g.cancelled[seq]; ok {
		return false // cancelled before
	}
	turn, arrived := g.waiting[seq]
	if arrived {
		delete(g.waiting, seq)
		turn <- false
	}
	g.cancelled[seq] = arrived // its number is skipped; an unarrived task is told on arrival
	g.admit()
	return false
}

// admit admits the tasks whose turn it is while places are free, skipping
// cancelled numbers. g.mu must be held: reports go out in number order.
func (g *gate) admit() {
	for {
		if arrived, ok := g.cancelled[g.next]; ok {
			if arrived {
				delete(g.cancelled, g.next)
			}
			g.next++
			continue
		}
		turn, ok := g.waiting[g.next]
		if !ok || g.running >= g.limit {
			return
		}
		delete(g.waiting, g.next)
		g.report(g.next)
		g.next++
		g.running++
		turn <- true
	}
}

// report writes seq to the report stream. yamux's Stream.Write returns
// once the frame is written to the socket, so the host reads the report
// even if the process dies right after.
func (g *gate) report(seq uint64) {
	if g.reports == nil {
		return
	}
	binary.LittleEndian.PutUint64(g.buf[:], seq)
	if _, err := g.reports.Write(g.buf[:]); err != nil {
		g.reports = nil // the host is gone; nobody reads reports any more
	}
}

// PipelineClient is the host side of a plugin's [Task] with pipelining:
// an [RPCClient] that can also open a [Pipeline].
type PipelineClient struct {
	*RPCClient
	broker *plugin.MuxBroker
}

// OpenPipeline asks the plugin for its report stream and dials it. An
// error means the worker can't pipeline (a plugin built before it answers
// that Plugin.Open does not exist): use Run.
func (c *PipelineClient) OpenPipeline() (*Pipeline, error) {
	var reply OpenReply
	if err := c.client.Call(rpcOpen, OpenArgs{}, &reply); err != nil {
		return nil, fmt.Errorf("open a pipeline: %w", err)
	}
	if reply.Version < 1 {
		return nil, fmt.Errorf("open a pipeline: the plugin speaks version %d", reply.Version)
	}
	conn, err := c.broker.Dial(reply.Stream)
	if err != nil {
		return nil, fmt.Errorf("open a pipeline: dial its report stream: %w", err)
	}
	p := &Pipeline{client: c.client, progress: c.progress, ended: make(chan struct{})}
	go p.readReports(conn)
	return p, nil
}

// Pipeline sends numbered tasks to one worker and knows which of them
// started. It is safe for concurrent use.
type Pipeline struct {
	client   *rpc.Client
	progress *progressHost // nil: no progress reports

	mu  sync.Mutex // numbers are sent in order
	seq uint64

	started atomic.Uint64 // the highest number reported started
	ended   chan struct{} // closed when the report stream ends (the worker is gone)
}

// readReports records start reports until the stream ends.
func (p *Pipeline) readReports(r io.ReadCloser) {
	defer close(p.ended)
	defer r.Close()
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return
		}
		p.started.Store(binary.LittleEndian.Uint64(b[:]))
	}
}

// SeqCall is one numbered task in flight.
type SeqCall struct {
	// Seq is the task's number.
	Seq uint64
	// Done receives the call when its answer (or a transport error) came.
	Done  <-chan *rpc.Call
	Reply *SeqRunReply
	// Release ends the task's progress reports; call it once the task is
	// over.
	Release func()
}

// Send sends one task with its number; the answer arrives on Done. timeout
// is how long the host will wait (0: no limit); concurrency how many
// numbered tasks the worker may run at once. Progress reports go to the
// function in ctx, if any (see [WithProgressFunc]), until Release.
func (p *Pipeline) Send(ctx context.Context, input []byte, timeout time.Duration, concurrency int) *SeqCall {
	reply := new(SeqRunReply)
	done := make(chan *rpc.Call, 1)
	args := SeqRunArgs{Input: input, Timeout: timeout, Concurrency: concurrency}
	var release func()
	args.Progress, args.Call, release = p.progress.register(ctx)
	p.mu.Lock()
	p.seq++
	args.Seq = p.seq
	p.client.Go(rpcRunSeq, args, reply, done)
	p.mu.Unlock()
	return &SeqCall{Seq: args.Seq, Done: done, Reply: reply, Release: release}
}

// Started reports whether task seq was reported started. After a crash it
// is final once [Pipeline.Ended] is closed.
func (p *Pipeline) Started(seq uint64) bool { return seq <= p.started.Load() }

// Ended is closed once the report stream has ended: every report the
// worker wrote has been read.
func (p *Pipeline) Ended() <-chan struct{} { return p.ended }

// Cancel drops task seq at the worker unless it started, and reports
// whether it had. It waits at most until ctx ends.
func (p *Pipeline) Cancel(ctx context.Context, seq uint64) (started bool, err error) {
	reply := new(CancelReply)
	call := p.client.Go(rpcCancel, CancelArgs{Seq: seq}, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return false, fmt.Errorf("cancel task %d: %w", seq, context.Cause(ctx))
	}
	if call.Error != nil {
		return false, fmt.Errorf("%w: cancel task %d: %w", ErrTransport, seq, call.Error)
	}
	return reply.Started, nil
}
