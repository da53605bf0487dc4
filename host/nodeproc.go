package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wpmdev/wpm/internal/wire"
	"github.com/wpmdev/wpm/shared"
)

// A Node.js worker is a script that node runs with the IPC channel
// child_process.fork gives it (NODE_CHANNEL_FD, one JSON document per
// line), speaking the Node.js WorkerPoolManager's protocol: wpm sends
// {type:"init"} and waits for initDone; each task is {type:"work", id,
// data} answered by workDone with the result in data, or by error with
// ok:false and the message in data; {type:"progress", id, data:{fraction,
// message}} reports progress; {type:"terminate"} asks it to exit. No Go
// process sits between wpm and node: the script's process is the worker,
// with the same memory watchdog, timeouts, recycling and crash tails as a
// plugin's (the process type is shared; only the task channel differs).

// nodeNotFound is the start error of a script worker when node is not on
// wpm's PATH.
const nodeNotFound = "Node.js is needed to run worker scripts, and node is not on wpm's PATH; " +
	"install Node.js 18 or later (Debian: apt-get install nodejs) or put its folder on PATH"

// nodeChannelFD is the descriptor of the IPC channel in the node process:
// the first of exec.Cmd's ExtraFiles.
const nodeChannelFD = 3

// maxNodeMessage is the longest message a script may send; a longer one
// ends the worker.
const maxNodeMessage = 256 << 20

// errorReplyHold is how long a script that answered a task with an error
// takes no task, unless its process ends first (holdAfter).
const errorReplyHold = 500 * time.Millisecond

// nodeProc is a Node.js script's process behind the proc interface: a
// plugin process whose task goes over node's IPC channel.
type nodeProc struct {
	pluginProc
}

var _ proc = (*nodeProc)(nil)

// startNode is the startFunc of Node.js worker scripts: it starts node on
// the script at l.path with an IPC channel and waits for its initDone.
func startNode(ctx context.Context, l launch) (proc, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("start %s: %w", l.path, err)
	}
	if l.verify != nil {
		if err := l.verify(); err != nil {
			return nil, err
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, &startFailure{errors.New(nodeNotFound)}
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, fmt.Errorf("start %s: IPC channel: %w", l.path, err)
	}
	syscall.CloseOnExec(fds[0])
	ours, theirs := os.NewFile(uintptr(fds[0]), "ipc"), os.NewFile(uintptr(fds[1]), "ipc")
	conn, err := net.FileConn(ours)
	_ = ours.Close()
	if err != nil {
		_ = theirs.Close()
		return nil, fmt.Errorf("start %s: IPC channel: %w", l.path, err)
	}
	env := append(workerEnv(nil, l.memoryLimitMB),
		"NODE_CHANNEL_FD="+strconv.Itoa(nodeChannelFD), "NODE_CHANNEL_SERIALIZATION_MODE=json")
	r := newProcRunner(ctx, node, env, l.logger)
	r.cmd.Args = append([]string{node}, nodeArgs(l.memoryLimitMB)...)
	r.cmd.Args = append(r.cmd.Args, l.path)
	r.cmd.ExtraFiles = []*os.File{theirs}
	err = r.Start(ctx)
	_ = theirs.Close()
	if err != nil {
		_ = conn.Close()
		return nil, &startFailure{err}
	}
	defer r.startDone()
	go logLines(r.stdout, r.logger, "stdout")
	p := &process{runner: r, logger: r.logger, pid: r.pid, memoryLimitMB: l.memoryLimitMB}
	ch := newNodeChannel(conn, r.logger, l.pool)
	go func() {
		<-r.exited
		_ = conn.Close()
	}()
	p.task = ch
	p.quit = func() {
		ch.send([]byte(`{"type":"terminate"}`))
		closedWithin(r.exited, 500*time.Millisecond)
	}
	if err := ch.init(ctx, l.startTimeout, r.exited); err != nil {
		return nil, p.startFailed(ctx, l.path, err)
	}
	p.startedAt = time.Now()
	if rss, err := openRSS(p.pid); err == nil {
		p.rss = rss
	}
	return &nodeProc{pluginProc{p: p}}, nil
}

// nodeArgs are node's flags for a worker under memoryLimitMB: the
// Node.js project's (--expose-gc, and the heap limit), which V8 alone
// keeps; the resident memory, ArrayBuffers included, is wpm's watchdog's.
func nodeArgs(memoryLimitMB int) []string {
	args := []string{"--expose-gc"}
	if memoryLimitMB > 0 {
		args = append(args, "--max-old-space-size="+strconv.Itoa(memoryLimitMB))
	}
	return args
}

// holdAfter holds the worker after an error reply: the Node.js project's
// scripts rethrow after replying, which ends the process, and a worker
// about to end must not be handed the next task. The hold ends when the
// process ends (then Done is closed, and the pool stops handing it tasks
// for good; its slot replaces it) or after errorReplyHold (it lives on).
// The caller has its answer meanwhile.
func (w *nodeProc) holdAfter(err error) <-chan struct{} {
	ch, ok := w.p.task.(*nodeChannel)
	if !ok || !errors.Is(err, shared.ErrTaskFailed) {
		return nil
	}
	until := make(chan struct{})
	go func() {
		if closedWithin(ch.done, errorReplyHold) {
			closedWithin(w.p.exited(), reapTimeout) // the pool sees it gone
		}
		close(until)
	}()
	return until
}

// Ping reports whether the process still runs: the protocol has no ping.
func (w *nodeProc) Ping(context.Context) error {
	if w.exitedYet() {
		return errors.New("the process exited")
	}
	return nil
}

// LowerMemoryLimit lowers the limit the watchdog keeps (V8's heap flag
// stays as the process was started with).
func (w *nodeProc) LowerMemoryLimit(mb int) error {
	w.p.memoryLimitMB = mb
	return nil
}

// logLines logs each line read from f until it ends.
func logLines(f *os.File, logger hclog.Logger, stream string) {
	br := bufio.NewReaderSize(f, 4096)
	for {
		line, err := readLine(br, maxStderrLine)
		if line != "" {
			logger.Info(line, "stream", stream)
		}
		if err != nil {
			return
		}
	}
}

// nodeChannel is wpm's end of a script's IPC channel: a shared.Task whose
// tasks are messages matched to their replies by id, so several may run
// at once on one process.
type nodeChannel struct {
	conn   net.Conn
	logger hclog.Logger
	pool   string // sent with each task as poolName, as the Node.js project does

	wmu sync.Mutex // one writer at a time: a message is one write

	mu      sync.Mutex
	pending map[string]*nodeCall
	initted chan struct{} // closed at initDone
	done    chan struct{} // closed when the channel ended
	err     error         // why it ended; set before done is closed

	seq atomic.Uint64
}

// nodeCall is a task waiting for its reply.
type nodeCall struct {
	reply    chan nodeMessage
	progress func(fraction float64, msg string) // nil when nobody listens
	lastSent time.Time                          // the last progress report passed on
}

// nodeMessage is a message from a script.
type nodeMessage struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id"`
	OK   *bool           `json:"ok"`
	Data json.RawMessage `json:"data"`
}

var _ shared.Task = (*nodeChannel)(nil)

func newNodeChannel(conn net.Conn, logger hclog.Logger, pool string) *nodeChannel {
	c := &nodeChannel{conn: conn, logger: logger, pool: pool, pending: make(map[string]*nodeCall),
		initted: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	return c
}

// init sends init and waits for initDone, within timeout and ctx.
func (c *nodeChannel) init(ctx context.Context, timeout time.Duration, exited <-chan struct{}) error {
	if err := c.send([]byte(`{"type":"init"}`)); err != nil {
		return err
	}
	if timeout <= 0 {
		timeout = time.Minute
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.initted:
		return nil
	case <-t.C:
		return fmt.Errorf("the script did not answer init with initDone within %v; it must call process.send({type: \"initDone\"}) on {type: \"init\"}", timeout)
	case <-c.done:
		return fmt.Errorf("the script ended its IPC channel before initDone: %w", c.err)
	case <-exited:
		return errors.New("the script exited before initDone")
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// send writes one message, which must be JSON without newlines.
func (c *nodeChannel) send(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(append(msg, '\n'))
	if err != nil {
		return fmt.Errorf("%w: write to the script: %w", wire.ErrTransport, err)
	}
	return nil
}

// Run sends input as a work message and waits for its reply.
func (c *nodeChannel) Run(ctx context.Context, input []byte) ([]byte, error) {
	var data bytes.Buffer
	if err := json.Compact(&data, input); err != nil {
		return nil, shared.InvalidInput("the task input is not valid JSON: %v", err)
	}
	id, _ := ctx.Value(taskIDKey{}).(string) // set by track
	if id == "" {
		id = "t" + strconv.FormatUint(c.seq.Add(1), 10)
	}
	call := &nodeCall{reply: make(chan nodeMessage, 1)}
	if t, ok := ctx.Value(trackerKey{}).(*tracker); ok {
		call.progress = t.progress
	}
	c.mu.Lock()
	if _, dup := c.pending[id]; dup {
		id += "." + strconv.FormatUint(c.seq.Add(1), 10)
	}
	c.pending[id] = call
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	// The Node.js project's work message: data, id, type, poolName.
	msg := make([]byte, 0, data.Len()+len(id)+len(c.pool)+48)
	msg = append(msg, `{"data":`...)
	msg = append(msg, data.Bytes()...)
	msg = append(msg, `,"id":`...)
	msg = strconv.AppendQuote(msg, id)
	msg = append(msg, `,"type":"work"`...)
	if c.pool != "" {
		msg = append(msg, `,"poolName":`...)
		msg = strconv.AppendQuote(msg, c.pool)
	}
	msg = append(msg, '}')
	if err := c.send(msg); err != nil {
		return nil, err
	}
	select {
	case m := <-call.reply:
		return answer(m)
	case <-c.done:
		select {
		case m := <-call.reply: // it came with the channel's last messages
			return answer(m)
		default:
		}
		return nil, fmt.Errorf("%w: %w", wire.ErrTransport, c.err)
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// answer turns a script's reply into Run's result: workDone's data, or
// error's message as a failed task.
func answer(m nodeMessage) ([]byte, error) {
	failed := m.Type == "error" || (m.OK != nil && !*m.OK)
	if !failed {
		if len(m.Data) == 0 {
			return []byte("null"), nil
		}
		return m.Data, nil
	}
	msg := string(m.Data)
	var s string
	if json.Unmarshal(m.Data, &s) == nil {
		msg = s
	}
	if msg == "" {
		msg = "the script answered the task with an error and no message"
	}
	return nil, &wire.Error{Kind: wire.KindFailed, Message: msg}
}

// read routes the script's messages until the channel ends.
func (c *nodeChannel) read() {
	br := bufio.NewReaderSize(c.conn, 64<<10)
	var err error
	for {
		var line []byte
		if line, err = readMessage(br); err != nil {
			break
		}
		if len(line) > 0 {
			c.route(line)
		}
	}
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
}

// readMessage reads one newline-ended message of at most maxNodeMessage
// bytes.
func readMessage(br *bufio.Reader) ([]byte, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(b)+len(chunk) > maxNodeMessage {
			return nil, fmt.Errorf("the script sent a message over %d MiB", maxNodeMessage>>20)
		}
		if err == bufio.ErrBufferFull {
			b = append(b, chunk...)
			continue
		}
		if err != nil {
			return nil, err
		}
		if b == nil {
			return chunk[:len(chunk)-1], nil // valid until the next read
		}
		return append(b, chunk[:len(chunk)-1]...), nil
	}
}

// route hands one message to whoever waits for it.
func (c *nodeChannel) route(line []byte) {
	var m nodeMessage
	if err := json.Unmarshal(line, &m); err != nil {
		c.logger.Warn("the script sent a message that is not JSON; ignored", "error", err)
		return
	}
	switch m.Type {
	case "initDone":
		select {
		case <-c.initted:
		default:
			close(c.initted)
		}
		return
	case "workDone", "error", "progress":
	default:
		c.logger.Debug("the script sent a message of an unknown type; ignored", "type", m.Type)
		return
	}
	var id string
	if json.Unmarshal(m.ID, &id) != nil {
		id = string(m.ID)
	}
	c.mu.Lock()
	call := c.pending[id]
	c.mu.Unlock()
	if call == nil {
		c.logger.Debug("the script answered a task that is not waiting; ignored", "type", m.Type, "id", id)
		return
	}
	if m.Type == "progress" {
		c.progress(call, m.Data)
		return
	}
	m.Data = append(json.RawMessage(nil), m.Data...) // line is reused
	select {
	case call.reply <- m:
	default: // a second reply to one task
	}
}

// progress passes on a progress report, at most one per
// shared.ProgressInterval (the first and a final one always).
func (c *nodeChannel) progress(call *nodeCall, data json.RawMessage) {
	if call.progress == nil {
		return
	}
	var p struct {
		Fraction *float64 `json:"fraction"`
		Message  string   `json:"message"`
	}
	if json.Unmarshal(data, &p) != nil || p.Fraction == nil {
		return
	}
	now := time.Now()
	if *p.Fraction < 1 && !call.lastSent.IsZero() && now.Sub(call.lastSent) < shared.ProgressInterval {
		return
	}
	call.lastSent = now
	call.progress(*p.Fraction, p.Message)
}
