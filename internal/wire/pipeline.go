package wire

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
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
// reports each admission ("task seq started") before the task runs, so
// that after a crash the host knows which tasks never started and can send
// them to another worker. A task the host gives up on while it waits is
// canceled with [Pipeline.Cancel] and never runs.
//
// Numbered tasks do not travel over net/rpc and go-plugin's multiplexed
// connection, which cost two system calls and several goroutine hand-offs
// per message. Plugin.Open (over net/rpc) makes the plugin listen on a unix
// socket of its own; the host dials it, proves itself with a token, and the
// two exchange frames (frame.go) over that one connection: tasks and
// cancels one way, start reports, answers and cancel answers the other, in
// order, so every start report of a worker that died has been read once
// the connection ends. Frames that meet leave in one write.
//
// A plugin built before pipelining has no Plugin.Open method, and one
// built with version 1 answers an older version; the host then sends it
// one task per free place through Plugin.Run, as before.
//
// Version 3 adds the traced task frame (frameTaskTraced); the two sides
// speak the lower of their versions, so a version 2 plugin gets plain
// task frames from a newer host and a version 3 plugin serves an older
// host as before.

// PipelineVersion is the pipelining protocol this SDK speaks.
const PipelineVersion = 3

// minPipelineVersion is the oldest version either side still speaks.
const minPipelineVersion = 2

// rpcOpen is the net/rpc name of the method that opens a pipeline.
const rpcOpen = "Plugin.Open"

// How long the plugin waits for the host to dial its pipeline socket, and
// for the token once connected.
const (
	pipelineAcceptTimeout = 10 * time.Second
	pipelineTokenTimeout  = 5 * time.Second
	pipelineTokenLen      = 16
)

// OpenArgs is the request of Plugin.Open.
type OpenArgs struct {
	// Version is the pipelining protocol the host speaks.
	Version int
}

// OpenReply is the answer of Plugin.Open.
type OpenReply struct {
	// Version is the protocol the plugin speaks.
	Version int
	// Addr is the unix socket the plugin accepts the pipeline connection
	// on, once; Token is what the host must send first on it.
	Addr  string
	Token []byte
}

// SeqRunReply is the answer of a numbered task.
type SeqRunReply struct {
	Output []byte
	// Err is nil when the task succeeded.
	Err *Error
	// Skipped is set when the task was canceled before it started.
	Skipped bool
	// Ran is how long the task ran, its wait at the worker not included.
	Ran time.Duration
}

// pipelineServer is the plugin side: the [RPCServer] plus the admission
// gate of numbered tasks.
type pipelineServer struct {
	*RPCServer
	gate   *gate
	opened atomic.Bool
}

func newPipelineServer(impl Task, b *plugin.MuxBroker) *pipelineServer {
	return &pipelineServer{RPCServer: &RPCServer{Impl: impl, progress: newProgressPlugin(b)}, gate: newGate()}
}

// Run runs an unnumbered task at once, as before pipelining; it counts
// against the concurrency of numbered ones.
func (s *pipelineServer) Run(args RunArgs, reply *RunReply) error {
	s.gate.enterNow()
	defer s.gate.leave()
	return s.RPCServer.Run(args, reply)
}

// Open listens for the host's pipeline connection and tells it where.
func (s *pipelineServer) Open(args OpenArgs, reply *OpenReply) error {
	if args.Version < minPipelineVersion {
		return fmt.Errorf("the host speaks pipelining version %d; this plugin needs %d", args.Version, minPipelineVersion)
	}
	if !s.opened.CompareAndSwap(false, true) {
		return errors.New("the pipeline is open already")
	}
	token := make([]byte, pipelineTokenLen)
	_, _ = rand.Read(token)
	l, err := listenPipeline()
	if err != nil {
		s.opened.Store(false)
		return err
	}
	go s.accept(l, token)
	reply.Version, reply.Addr, reply.Token = min(args.Version, PipelineVersion), l.Addr().String(), token
	return nil
}

// listenPipeline listens on a new unix socket in the directory go-plugin
// put the plugin's own socket in (the host's private one).
func listenPipeline() (*net.UnixListener, error) {
	dir := os.Getenv(plugin.EnvUnixSocketDir)
	if dir == "" {
		dir = os.TempDir()
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	path := filepath.Join(dir, fmt.Sprintf("pipe-%d-%x.sock", os.Getpid(), b))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen for the pipeline: %w", err)
	}
	return l, nil
}

// accept takes the first connection that brings the token, closes the
// listener (which removes its socket file) and serves the connection.
func (s *pipelineServer) accept(l *net.UnixListener, token []byte) {
	_ = l.SetDeadline(time.Now().Add(pipelineAcceptTimeout))
	for {
		conn, err := l.Accept()
		if err != nil {
			_ = l.Close()
			return // the host never came: numbered tasks never arrive
		}
		if hasToken(conn, token) {
			_ = l.Close()
			s.serve(conn)
			return
		}
		_ = conn.Close()
	}
}

func hasToken(conn net.Conn, token []byte) bool {
	got := make([]byte, len(token))
	_ = conn.SetReadDeadline(time.Now().Add(pipelineTokenTimeout))
	_, err := io.ReadFull(conn, got)
	_ = conn.SetReadDeadline(time.Time{})
	return err == nil && subtle.ConstantTimeCompare(got, token) == 1
}

// serve reads the host's frames until the connection ends. Each task runs
// in a goroutine of its own, through the gate.
func (s *pipelineServer) serve(conn net.Conn) {
	defer conn.Close()
	out := newFrameWriter(conn)
	s.gate.setOut(out)
	r := bufio.NewReaderSize(conn, 32<<10)
	for {
		kind, seq, body, err := readFrame(r)
		if err != nil {
			return // the host is gone; tasks running finish unheard
		}
		arrived := time.Now()
		switch kind {
		case frameTask:
			if len(body) < taskFields {
				return
			}
			go s.runSeq(out, seq, body, "", arrived)
		case frameTaskTraced:
			if len(body) < taskFields+1 || len(body) < taskFields+1+int(body[taskFields]) {
				return
			}
			n := int(body[taskFields])
			tp := string(body[taskFields+1 : taskFields+1+n])
			body = append(body[:taskFields:taskFields], body[taskFields+1+n:]...)
			go s.runSeq(out, seq, body, tp, arrived)
		case frameCancel:
			var started byte
			if s.gate.cancel(seq) {
				started = 1
			}
			_ = out.send(frameCanceled, seq, []byte{started}, nil, flushAuto)
		default:
			return
		}
	}
}

// runSeq runs numbered task seq once its turn comes, or skips it if the
// host canceled it before, and sends its answer. The task runs as
// [RPCServer.Run] runs it, with the host's timeout counted from the
// task's arrival. Its answer leaves with the next task's start report
// when there is one.
func (s *pipelineServer) runSeq(out *frameWriter, seq uint64, body []byte, traceParent string, arrived time.Time) {
	timeout := time.Duration(binary.LittleEndian.Uint64(body[0:]))
	concurrency := int(binary.LittleEndian.Uint32(body[8:]))
	run := RunArgs{
		Input:    body[taskFields:],
		Progress: binary.LittleEndian.Uint32(body[12:]),
		Call:     binary.LittleEndian.Uint64(body[16:]),

		TraceParent: traceParent,
	}
	var f [10]byte
	if !s.gate.enter(seq, concurrency) {
		f[8] = resultSkipped
		_ = out.send(frameResult, seq, f[:], nil, flushAuto)
		return
	}
	if timeout > 0 {
		run.Timeout = max(timeout-time.Since(arrived), time.Nanosecond)
	}
	var r RunReply
	start := time.Now()
	_ = s.RPCServer.Run(run, &r)
	binary.LittleEndian.PutUint64(f[0:], uint64(time.Since(start)))
	payload := r.Output
	if r.Err != nil {
		f[8], f[9], payload = resultErr, byte(r.Err.Kind), []byte(r.Err.Message)
	}
	_ = out.send(frameResult, seq, f[:], payload, flushLater)
	s.gate.leave()
	out.flushBuffered()
}

// PipelineClient is the host side of a plugin's [Task] with pipelining:
// an [RPCClient] that can also open a [Pipeline].
type PipelineClient struct {
	*RPCClient
}

// OpenPipeline asks the plugin for a pipeline and connects to it. An error
// means the worker can't pipeline (a plugin built before it answers that
// Plugin.Open does not exist): use Run.
func (c *PipelineClient) OpenPipeline() (*Pipeline, error) {
	var reply OpenReply
	if err := c.client.Call(rpcOpen, OpenArgs{Version: PipelineVersion}, &reply); err != nil {
		return nil, fmt.Errorf("open a pipeline: %w", err)
	}
	if reply.Version < minPipelineVersion || reply.Version > PipelineVersion || reply.Addr == "" {
		return nil, fmt.Errorf("open a pipeline: the plugin speaks version %d, the host %d", reply.Version, PipelineVersion)
	}
	conn, err := net.DialTimeout("unix", reply.Addr, pipelineTokenTimeout)
	if err != nil {
		return nil, fmt.Errorf("open a pipeline: %w", err)
	}
	if _, err := conn.Write(reply.Token); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("open a pipeline: %w", err)
	}
	p := &Pipeline{
		traced:   reply.Version >= 3,
		conn:     conn,
		out:      newFrameWriter(conn),
		progress: c.progress,
		calls:    make(map[uint64]*SeqCall),
		cancels:  make(map[uint64]chan bool),
		ended:    make(chan struct{}),
	}
	go p.read()
	return p, nil
}

// Pipeline sends numbered tasks to one worker and knows which of them
// started. It is safe for concurrent use.
type Pipeline struct {
	traced   bool // the plugin takes frameTaskTraced (version 3)
	conn     net.Conn
	out      *frameWriter
	progress *progressHost // nil: no progress reports
	seq      uint64        // the last number sent; guarded by out's lock, so numbers leave in order

	mu      sync.Mutex
	calls   map[uint64]*SeqCall  // sent, not answered
	cancels map[uint64]chan bool // cancels sent, not answered
	err     error                // why the connection ended; nil while it is up

	started atomic.Uint64 // the highest number reported started
	ended   chan struct{} // closed when the connection has ended (the worker is gone)
}

// SeqCall is one numbered task in flight.
type SeqCall struct {
	// Seq is the task's number.
	Seq uint64
	// Done is closed when the answer came or the connection ended.
	Done <-chan struct{}
	// Reply is the answer, once Done is closed and Err is nil.
	Reply SeqRunReply
	// Err, once Done is closed, is the transport failure that lost the
	// answer; it matches [ErrTransport].
	Err error
	// Release ends the task's progress reports; call it once the task is
	// over.
	Release func()

	done chan struct{}
}

// Send sends one task with its number; the answer arrives on Done. timeout
// is how long the host will wait (0: no limit); concurrency how many
// numbered tasks the worker may run at once. Progress reports go to the
// function in ctx, if any (see [WithProgressFunc]), until Release.
func (p *Pipeline) Send(ctx context.Context, input []byte, timeout time.Duration, concurrency int) *SeqCall {
	c := &SeqCall{done: make(chan struct{})}
	c.Done = c.done
	var f [taskFields]byte
	binary.LittleEndian.PutUint64(f[0:], uint64(timeout))
	binary.LittleEndian.PutUint32(f[8:], uint32(concurrency))
	var progress uint32
	var call uint64
	progress, call, c.Release = p.progress.register(ctx)
	binary.LittleEndian.PutUint32(f[12:], progress)
	binary.LittleEndian.PutUint64(f[16:], call)

	p.out.lock()
	p.seq++
	c.Seq = p.seq
	p.mu.Lock()
	err := p.err
	if err == nil {
		p.calls[c.Seq] = c
	}
	p.mu.Unlock()
	if err != nil {
		_ = p.out.unlock(flushAuto)
		c.Err = err
		close(c.done)
		return c
	}
	if tp := TraceParent(ctx); tp != "" && p.traced && len(tp) < 256 {
		p.out.put(frameTaskTraced, c.Seq, tracedFields(f, tp), input)
	} else {
		p.out.put(frameTask, c.Seq, f[:], input)
	}
	if p.out.unlock(flushAuto) != nil {
		_ = p.conn.Close() // the reader ends every call
	}
	return c
}

// read handles the worker's frames until the connection ends, then fails
// whatever is still waiting for an answer.
func (p *Pipeline) read() {
	r := bufio.NewReaderSize(p.conn, 32<<10)
	var err error
	for err == nil {
		var (
			kind byte
			seq  uint64
			body []byte
		)
		if kind, seq, body, err = readFrame(r); err == nil {
			err = p.handle(kind, seq, body)
		}
	}
	_ = p.conn.Close()
	p.mu.Lock()
	p.err = fmt.Errorf("%w: the pipeline connection ended: %w", ErrTransport, err)
	for seq, c := range p.calls {
		delete(p.calls, seq)
		c.Err = p.err
		close(c.done)
	}
	for seq, ch := range p.cancels {
		delete(p.cancels, seq)
		close(ch)
	}
	p.mu.Unlock()
	close(p.ended)
}

// handle takes one frame from the worker.
func (p *Pipeline) handle(kind byte, seq uint64, body []byte) error {
	switch kind {
	case frameStarted:
		p.started.Store(seq) // reports come in number order
		return nil
	case frameResult:
		if len(body) < 10 {
			return fmt.Errorf("%w: a result of %d bytes", errBadFrame, len(body))
		}
		p.mu.Lock()
		c := p.calls[seq]
		delete(p.calls, seq)
		p.mu.Unlock()
		if c == nil {
			return fmt.Errorf("%w: an answer to task %d, which is not waiting", errBadFrame, seq)
		}
		c.Reply.Ran = time.Duration(binary.LittleEndian.Uint64(body[0:]))
		switch payload := body[10:]; body[8] {
		case resultOK:
			c.Reply.Output = payload
		case resultErr:
			c.Reply.Err = &Error{Kind: ErrorKind(body[9]), Message: string(payload)}
		default:
			c.Reply.Skipped = true
		}
		close(c.done)
		return nil
	case frameCanceled:
		if len(body) < 1 {
			return fmt.Errorf("%w: an empty cancel answer", errBadFrame)
		}
		p.mu.Lock()
		ch := p.cancels[seq]
		delete(p.cancels, seq)
		p.mu.Unlock()
		if ch != nil {
			ch <- body[0] == 1
		}
		return nil
	}
	return fmt.Errorf("%w: kind %q", errBadFrame, kind)
}

// Started reports whether task seq was reported started. After a crash it
// is final once [Pipeline.Ended] is closed.
func (p *Pipeline) Started(seq uint64) bool { return seq <= p.started.Load() }

// Ended is closed once the connection has ended: every report the worker
// wrote has been read.
func (p *Pipeline) Ended() <-chan struct{} { return p.ended }

// Close closes the connection; tasks still waiting fail with
// [ErrTransport].
func (p *Pipeline) Close() error { return p.conn.Close() }

// Cancel drops task seq at the worker unless it started, and reports
// whether it had. It waits at most until ctx ends.
func (p *Pipeline) Cancel(ctx context.Context, seq uint64) (started bool, err error) {
	answer := make(chan bool, 1)
	p.mu.Lock()
	if err := p.err; err != nil {
		p.mu.Unlock()
		return false, fmt.Errorf("cancel task %d: %w", seq, err)
	}
	p.cancels[seq] = answer
	p.mu.Unlock()
	if p.out.send(frameCancel, seq, nil, nil, flushNow) != nil {
		_ = p.conn.Close() // the reader closes answer
	}
	select {
	case started, ok := <-answer:
		if !ok {
			p.mu.Lock()
			err := p.err
			p.mu.Unlock()
			return false, fmt.Errorf("cancel task %d: %w", seq, err)
		}
		return started, nil
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.cancels, seq)
		p.mu.Unlock()
		return false, fmt.Errorf("cancel task %d: %w", seq, context.Cause(ctx))
	}
}
