package host

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// proc is one started worker process, as the slot that owns it sees it.
// The go-plugin implementation is pluginProc; tests drive the slots with a
// fake one. Whoever starts a proc owns it and must Stop it on every path.
type proc interface {
	// PID is the process id.
	PID() int
	// StartedAt is when the process completed its handshake.
	StartedAt() time.Time
	// MemoryLimitMB is the memory limit the process runs under; 0 is none.
	MemoryLimitMB() int
	// LowerMemoryLimit brings the process's limit down to mb before a task.
	LowerMemoryLimit(mb int) error
	// Run runs one task. healthy reports whether the process can take
	// another one. When ctx ends first, the process is stopped with the
	// context's cause: a net/rpc call can not be canceled.
	// doomed, if not nil, runs as soon as the process is known to be lost,
	// so its owner stops handing it tasks.
	Run(ctx context.Context, input []byte, doomed func()) (out []byte, err error, healthy bool)
	// Ping checks that an idle process still answers, within ctx.
	Ping(ctx context.Context) error
	// Stop ends the process. A nil err is an orderly stop of an idle
	// process; otherwise err, matching one of the package's sentinels, is
	// why wpm ended it, and only the first such reason counts. Stop blocks
	// until the process is gone; it may be called any number of times.
	Stop(err error)
	// Done is closed once the process has exited and been reaped.
	Done() <-chan struct{}
	// Exit says how the process ended; valid once Done is closed.
	Exit() Exit
	// RSS reads the resident memory: 0 once the process is gone; ok is
	// false where the platform can't tell.
	RSS() (bytes uint64, ok bool)
}

// startFunc starts a process as l describes. ctx bounds the start: when
// it ends, the process is killed and the error wraps the context's cause.
type startFunc func(ctx context.Context, l launch) (proc, error)

// Exit is how a process ended: its cause, decided where the kill or exit
// was decided, the error a task on it answers, and its last stderr lines.
type Exit struct {
	Cause  Cause
	Err    error
	Detail string
}

// Cause is why a worker process ended, or, for [CauseScaledUp], why it
// started. It is kept typed from where it is decided to the edges (events,
// stats, the observer, logs), which use its String.
type Cause uint8

// The causes of a process's end, and of its start.
const (
	causeNone        Cause = iota // no worker ended, or one started for no particular reason
	CauseStopped                  // an orderly stop by its owner
	CauseCrashed                  // it died on its own, or stopped answering
	CauseOutOfMemory              // it went over its memory limit
	CauseTimeout                  // a task on it ran past its timeout
	CauseCanceled                 // the caller of a task on it went away
	CauseShutdown                 // the manager stopped it at shutdown
	CauseRecycled                 // it served its share of tasks or time
	CauseStartFailed              // it never completed its start
	CauseUnhealthy                // it did not answer a health check while idle
	CauseScaledDown               // its pool stopped it, idle above its MinWorkers
	CauseScaledUp                 // (a start) its pool added it for waiting tasks
)

// causeNames are the causes' names. Events, metrics labels, the API and
// their tests depend on them: they never change. Those of the causes a
// task's error stands for are that error's code.
var causeNames = [...]string{
	causeNone:        "",
	CauseStopped:     "stopped",
	CauseCrashed:     "exited",
	CauseOutOfMemory: string(CodeMemoryLimit),
	CauseTimeout:     string(CodeTaskTimeout),
	CauseCanceled:    string(CodeCanceled),
	CauseShutdown:    string(CodeShuttingDown),
	CauseRecycled:    "recycled",
	CauseStartFailed: "start_failed",
	CauseUnhealthy:   "unhealthy",
	CauseScaledDown:  "scaled_down",
	CauseScaledUp:    "scaled_up",
}

// String is the cause's name, as used in events, stats, metrics and logs;
// "" for no cause.
func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("Cause(%d)", c)
}

// counts reports whether a worker that went for c counts among its slot's
// restarts (and its replacement is reported): any end but an orderly stop.
func (c Cause) counts() bool { return c != causeNone && c != CauseStopped }

// causeOf names the cause an error that ends a process stands for. It is
// called where the kill is decided, on an error made there.
func causeOf(err error) Cause {
	switch {
	case err == nil:
		return CauseStopped
	case errors.Is(err, ErrMemoryLimit):
		return CauseOutOfMemory
	case errors.Is(err, ErrShuttingDown):
		return CauseShutdown
	case errors.Is(err, ErrTimeout):
		return CauseTimeout
	case errors.Is(err, context.Canceled):
		return CauseCanceled
	}
	return CauseCrashed
}

// pluginProc is a go-plugin process behind the proc interface.
type pluginProc struct {
	p       *process
	orderly atomic.Bool // stopped by its owner with no reason, before any other end
	pipe    pipeState   // numbered tasks, opened on first use (pipeline.go)
}

var _ proc = (*pluginProc)(nil)

// startPlugin is the startFunc of real plugin processes, and of Node.js
// worker scripts.
func startPlugin(ctx context.Context, l launch) (proc, error) {
	if l.script {
		return startNode(ctx, l)
	}
	p, err := startProcess(ctx, l)
	if err != nil {
		return nil, err
	}
	return &pluginProc{p: p}, nil
}

func (w *pluginProc) PID() int              { return w.p.pid }
func (w *pluginProc) StartedAt() time.Time  { return w.p.startedAt }
func (w *pluginProc) MemoryLimitMB() int    { return w.p.memoryLimitMB }
func (w *pluginProc) Done() <-chan struct{} { return w.p.exited() }

func (w *pluginProc) Stop(err error) {
	if err == nil && w.p.killReason() == nil && !w.exitedYet() {
		w.orderly.Store(true)
	}
	w.p.kill(err)
	<-w.p.exited()
}

func (w *pluginProc) exitedYet() bool {
	select {
	case <-w.p.exited():
		return true
	default:
		return false
	}
}

func (w *pluginProc) RSS() (uint64, bool) {
	if w.p.rss == nil {
		return 0, false
	}
	rss, err := w.p.rss.read()
	if err != nil {
		return 0, true // gone
	}
	return rss, true
}

func (w *pluginProc) LowerMemoryLimit(mb int) error {
	if err := limitData(w.p.pid, uint64(mb)<<20); err != nil {
		return err
	}
	w.p.memoryLimitMB = mb
	return nil
}

func (w *pluginProc) Run(ctx context.Context, input []byte, doomed func()) ([]byte, error, bool) {
	taskStarted(ctx, w.p.pid)
	return call(ctx, w.p, input, doomed)
}

// Ping asks the plugin's go-plugin control server (net/rpc) or its gRPC
// health service for an answer. A process that does not answer within ctx
// is of no use; the caller stops it.
func (w *pluginProc) Ping(ctx context.Context) error {
	if w.p.gconn != nil {
		return w.p.pingGRPC(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- w.p.rpc.Ping() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-w.p.exited():
		return errors.New("the process exited")
	}
}

// maxConcurrency is the most tasks the plugin runs at once, by its own
// account (a gRPC plugin's Info); 0 is no limit of its own.
func (w *pluginProc) maxConcurrency() int { return w.p.maxTasks }

func (w *pluginProc) Exit() Exit {
	if w.orderly.Load() && w.p.killReason() == nil {
		return Exit{Cause: CauseStopped}
	}
	err := w.p.deathCause()
	return Exit{Cause: causeOf(err), Err: err, Detail: w.p.runner.stderrText()}
}
