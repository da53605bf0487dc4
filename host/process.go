package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/wpmdev/wpm/internal/wire"
	"github.com/wpmdev/wpm/shared"
)

// launch describes how to start one plugin process.
type launch struct {
	path          string // absolute path of the binary, inside the plugins directory
	socketDir     string
	memoryLimitMB int
	startTimeout  time.Duration
	logger        hclog.Logger // tagged with pool or plugin
	verify        func() error // checks the binary before each start; may be nil
	script        bool         // path is a Node.js worker script that node runs (nodeproc.go)
	pool          string       // the pool's name; empty for a one-shot
}

// process is one started, handshaken plugin process. Whoever starts it owns
// it and must call kill on every path.
type process struct {
	pid           int
	task          shared.Task       // net/rpc: wire's client; gRPC: grpcTask (grpcproc.go)
	client        *plugin.Client    // go-plugin's: starts the process and reads its handshake
	protocol      plugin.Protocol   // what the handshake named: net/rpc (Go plugins) or gRPC
	rpc           *plugin.RPCClient // net/rpc: wpm's own session with the process; nil until dialled
	conn          *sessionConn      // net/rpc: what rpc's yamux session runs on
	gconn         *grpc.ClientConn  // gRPC: wpm's connection to the process
	maxTasks      int               // gRPC: the most tasks the plugin runs at once (its Info); 0 is no limit
	runner        *procRunner
	rss           *rssReader // nil where resident memory can not be read
	memoryLimitMB int
	startedAt     time.Time
	logger        hclog.Logger
	quit          func() // asks an idle process to exit before an orderly kill; may be nil

	watchOnce sync.Once
	wake      chan struct{} // set once by enter; wakes the watchdog
	busy      atomic.Int32  // tasks running, for the watchdog
	peakRSS   atomic.Uint64 // the highest resident memory the watchdog read

	killOnce sync.Once
	mu       sync.Mutex
	reason   error // why wpm killed it, if it did
}

// startProcess starts the plugin binary, handshakes, dispenses its Task and
// applies its memory limit. The handshake decides the protocol: net/rpc
// (Go plugins built with shared.Serve) or gRPC (plugins in any other
// language, speaking proto/wpm/task/v1/task.proto; grpcproc.go). On any
// error the process is already gone. When ctx ends before the process is
// ready, the process is killed at once and the error wraps ctx's cause.
func startProcess(ctx context.Context, l launch) (*process, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("start %s: %w", l.path, err)
	}
	if l.verify != nil {
		if err := l.verify(); err != nil {
			return nil, err
		}
	}
	var r *procRunner
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		Plugins:          hostPluginSet(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC, plugin.ProtocolGRPC},
		StartTimeout:     l.startTimeout,
		SkipHostEnv:      true,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: l.socketDir},
		// go-plugin's own messages are about mechanics wpm reports itself
		// (start errors, exits) or harmless (warnings on kill).
		Logger: hclog.NewNullLogger(),
		RunnerFunc: func(_ hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error) {
			r = newProcRunner(ctx, l.path, workerEnv(cmd.Env, l.memoryLimitMB), l.logger)
			r.socketDir = socketDir
			return r, nil
		},
	})
	p := &process{client: client, runner: r, logger: l.logger}
	addr, err := client.Start()
	p.runner = r
	if r != nil {
		defer r.startDone()
	}
	if err != nil {
		return nil, p.startFailed(ctx, l.path, fmt.Errorf("start %s: %w", l.path, err))
	}
	p.pid, p.startedAt, p.logger = r.pid, time.Now(), r.logger
	p.protocol = client.Protocol()
	if p.protocol == plugin.ProtocolGRPC {
		err = p.connectGRPC(ctx, addr, l.startTimeout)
	} else {
		err = p.connectNetRPC(addr)
	}
	if err != nil {
		return nil, p.startFailed(ctx, l.path, fmt.Errorf("connect to %s: %w", l.path, err))
	}
	p.memoryLimitMB = l.memoryLimitMB
	if rss, err := openRSS(p.pid); err == nil {
		p.rss = rss
	}
	if l.memoryLimitMB > 0 {
		if err := limitData(p.pid, uint64(l.memoryLimitMB)<<20); err != nil {
			p.kill(nil)
			return nil, fmt.Errorf("%w: %w", ErrWorkerCrashed, err)
		}
	}
	return p, nil
}

// startFailed kills a process that failed to start and explains why: ctx's
// cause when ctx ended first, otherwise a crash with the last stderr lines.
func (p *process) startFailed(ctx context.Context, path string, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		p.kill(cause)
		return fmt.Errorf("start %s: %w", path, cause)
	}
	p.kill(fmt.Errorf("%w: %w", ErrWorkerCrashed, err))
	return &startFailure{fmt.Errorf("%w%s", err, tailOf(p.runner))}
}

// tailOf returns r's last stderr lines for an error message, waiting
// briefly for them.
func tailOf(r *procRunner) string {
	if r == nil {
		return ""
	}
	r.waitStderr(100 * time.Millisecond)
	return r.tailText()
}

// workerEnv is the whole environment of a worker: go-plugin's own variables
// plus a few of the host's, and GOMEMLIMIT as a GC hint under a memory
// limit. The host's other variables are not passed on.
func workerEnv(pluginEnv []string, memoryLimitMB int) []string {
	env := append([]string(nil), pluginEnv...)
	for _, k := range []string{"PATH", "TMPDIR", "TZ", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if memoryLimitMB > 0 {
		// Leave a tenth for what the GC does not count.
		env = append(env, fmt.Sprintf("GOMEMLIMIT=%dMiB", memoryLimitMB*9/10))
	}
	return env
}

// exited is closed when the process has exited.
func (p *process) exited() <-chan struct{} { return p.runner.exited }

// kill ends the process, its whole group and its RPC session, in an order
// that leaves nobody writing to a peer that is gone (issue 14). With a nil
// reason it is an orderly stop of an idle worker: wpm ends its session
// first, which the plugin takes quietly (its reads end at EOF; an idle
// plugin writes nothing), then kills the group. wpm does not ask the plugin
// to quit over the session: go-plugin offers that only with
// RPCClient.Close, which closes the streams and the session after
// Control.Quit and so writes to a process that may just have exited. With
// a reason, which records why wpm killed it, the group is killed by pid
// first, so a wedged plugin can not stall it, and the session is closed
// once the process is reaped; what the session still writes meanwhile is
// dropped quietly by sessionConn. kill returns once the process is reaped
// (bounded by reapTimeout). It may be called any number of times and from
// any goroutine; only the first reason counts.
func (p *process) kill(reason error) {
	p.mu.Lock()
	if p.reason == nil {
		p.reason = reason
	}
	p.mu.Unlock()
	p.killOnce.Do(func() {
		if reason == nil && p.quit != nil {
			p.quit()
		}
		if p.rss != nil {
			defer p.rss.close()
		}
		if p.conn != nil {
			p.conn.ending.Store(true) // from now on a failed write is expected
			if reason == nil {
				_ = p.conn.Close()
			}
		}
		if p.gconn != nil && reason == nil {
			_ = p.gconn.Close()
		}
		p.killGroup() // what the plugin started dies with it
		p.awaitReap()
		if p.conn != nil {
			_ = p.conn.Close() // ends the session, its streams and pending calls
		}
		if p.gconn != nil {
			_ = p.gconn.Close() // ends the pending calls
		}
		if p.runner != nil {
			p.runner.waitStderr(time.Second) // its last lines are logged
		}
	})
}

// reapTimeout bounds the wait for a killed process to be reaped; only a
// process stuck in the kernel takes longer.
const reapTimeout = 5 * time.Second

// awaitReap waits, bounded, for the process to be reaped.
func (p *process) awaitReap() {
	if p.runner == nil || p.runner.pid == 0 {
		return
	}
	if !closedWithin(p.exited(), reapTimeout) {
		p.logger.Error("worker not reaped after SIGKILL", "after", reapTimeout)
	}
}

// connectNetRPC opens wpm's session with the net/rpc process at addr and
// dispenses its Task.
func (p *process) connectNetRPC(addr net.Addr) error {
	if err := p.dial(addr); err != nil {
		return err
	}
	raw, err := p.rpc.Dispense(wire.PluginName)
	if err != nil {
		return fmt.Errorf("dispense: %w", err)
	}
	task, ok := raw.(shared.Task)
	if !ok {
		return fmt.Errorf("dispensed %T, not a task", raw)
	}
	p.task = task
	return nil
}

// dial opens wpm's RPC session with the handshaken process at addr.
//
// wpm dials the plugin itself instead of calling go-plugin's Client.Client,
// and never calls Client.Kill (which would dial a second session only to
// ask the plugin to quit): go-plugin opens its yamux sessions with a nil
// config, so yamux's default logger writes "[ERR] yamux: ..." raw to the
// process's stderr whenever a session fails to write to a process that is
// gone (issue 14). plugin.NewRPCClient still makes the session, but over a
// sessionConn, which reports a failed write to wpm's own logger and ends
// the session quietly instead of handing yamux an error to print. No fork
// of go-plugin or yamux is needed. go-plugin's copyStream logs through the
// standard log package; cmd/wpm sends that into its logger.
func (p *process) dial(addr net.Addr) error {
	raw, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		return err
	}
	p.conn = &sessionConn{Conn: raw, logger: p.logger}
	client, err := plugin.NewRPCClient(p.conn, hostPluginSet())
	if err != nil {
		return err // NewRPCClient closed the connection
	}
	p.rpc = client
	// The plugin's os.Stdout and os.Stderr, which go-plugin replaces with
	// streams over the session.
	return client.SyncStreams(
		lineWriter(func(s string) { p.logger.Info(s, "stream", "stdout") }),
		lineWriter(func(s string) { p.logger.Info(s, "stream", "stderr") }),
	)
}

// sessionConn is the connection under a process's yamux session. A write
// that fails (the process died or was killed while the session still
// wrote) is logged here, with the pool or plugin and pid, and closes the
// connection; yamux is told it succeeded, so it has nothing to print. Its
// read loop then ends on the closed connection, which yamux takes as an
// ordinary end of the session and does not log, and every pending call
// fails as a broken transport.
type sessionConn struct {
	net.Conn
	logger hclog.Logger
	ending atomic.Bool // set when wpm ends the process: a failed write is expected
}

// Write writes b, or logs why it could not and closes the connection.
func (c *sessionConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil {
		return n, nil
	}
	if c.ending.Load() || errors.Is(err, net.ErrClosed) {
		c.logger.Debug("RPC session ended while writing to the worker", "error", err)
	} else {
		c.logger.Warn("RPC session to the worker broke while writing", "error", err)
	}
	_ = c.Conn.Close()
	return len(b), nil
}

func (p *process) killGroup() {
	if p.runner != nil {
		if err := p.runner.Kill(context.Background()); err != nil {
			p.logger.Warn("could not kill worker", "error", err)
		}
	}
}

// killReason returns why wpm killed the process, or nil.
func (p *process) killReason() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reason
}

// failure explains why a call to the process failed with a transport error:
// the process died. It waits (bounded) for the exit and returns the cause
// of death with the last stderr lines.
func (p *process) failure(transportErr error) (cause error, detail string) {
	if !closedWithin(p.exited(), 2*time.Second) {
		// The connection broke but the process lives: it is of no use.
		p.kill(fmt.Errorf("%w: connection lost (%w)", ErrWorkerCrashed, transportErr))
		<-p.exited()
	}
	cause = p.deathCause()
	if te, ok := errors.AsType[*taskEnded](cause); ok {
		cause = te.forOthers()
	}
	return cause, p.runner.stderrText()
}

// deathCause tells, once the process has exited, why it died: the reason
// wpm killed it for, its memory limit, or a crash. It waits briefly for the
// rest of its stderr.
func (p *process) deathCause() error {
	<-p.exited()
	if reason := p.killReason(); reason != nil {
		return reason
	}
	p.runner.waitStderr(200 * time.Millisecond)
	if p.memoryLimitMB > 0 && p.outOfMemory() {
		return fmt.Errorf("%w: the worker crashed out of memory under its hard limit of %d MiB; raise memoryLimitMB or send a smaller task",
			ErrMemoryLimit, p.memoryLimitMB)
	}
	return fmt.Errorf("%w: %s", ErrWorkerCrashed, exitText(p.runner.waitErr))
}

// oomMessages are what the Go runtime and libc print when the kernel
// refuses memory under RLIMIT_DATA.
var oomMessages = []string{"out of memory", "cannot allocate memory", "pthread_create failed"}

// nearLimit is the share of its limit a worker's resident memory must have
// reached for a Go fatal error without an allocation message to count as
// running out of memory.
const nearLimit = 0.75

// faultPrefixes start the report of a signal the Go runtime could not turn
// into a panic: a fault outside plugin code.
var faultPrefixes = []string{"SIGSEGV", "SIGBUS", "unexpected fault address", "unexpected signal"}

// outOfMemory reports whether a worker under a hard memory limit died
// from it, on evidence of memory only:
//   - an allocation failure on its stderr ("out of memory", ...);
//   - a fault whose crashing frame is in the Go runtime: measured with Go
//     1.26, a task allocating 300 MiB under RLIMIT_DATA of 64 MiB dies
//     within ~50 ms with "SIGSEGV: segmentation violation ... addr=0x0" in
//     runtime.(*spanQueue).tryDrain, the GC failing to get memory for its
//     own metadata, before any "out of memory" and before resident memory
//     grew (the refused mmap never counts). A nil dereference in plugin
//     code is a panic instead, and a fault in plugin code (cgo, unsafe)
//     names that code's frame;
//   - any other Go fatal error (not a panic) after the watchdog saw
//     resident memory at nearLimit of the limit or more.
//
// A "concurrent map writes" or a fault in plugin code at low memory is a
// plain crash.
func (p *process) outOfMemory() bool {
	fatal, stderr := p.runner.fatalLine(), p.runner.stderrText()
	for _, s := range oomMessages {
		if strings.Contains(fatal, s) || strings.Contains(stderr, s) {
			return true
		}
	}
	if hasPrefix(fatal, faultPrefixes) && strings.HasPrefix(p.runner.crashFrame(), "runtime.") {
		return true
	}
	limit := float64(uint64(p.memoryLimitMB) << 20)
	runtimeCrash := fatal != "" && !strings.HasPrefix(fatal, "panic: ")
	return runtimeCrash && float64(p.peakRSS.Load()) >= nearLimit*limit
}

// hasPrefix reports whether s starts with one of prefixes.
func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// watchInterval is how often the watchdog reads a busy worker's resident
// memory: a read costs a few microseconds, and a fast allocation gets a
// few MiB past the limit in this time.
const watchInterval = 2 * time.Millisecond

// enter marks a task as running on the process and wakes its memory
// watchdog; leave marks it done. The watchdog, one goroutine per process
// started on first use, reads resident memory only while tasks run, and
// ends with the process.
func (p *process) enter() {
	if p.memoryLimitMB <= 0 || p.rss == nil {
		return
	}
	p.watchOnce.Do(func() {
		p.wake = make(chan struct{}, 1)
		go p.watchMemory(uint64(p.memoryLimitMB) << 20)
	})
	if p.busy.Add(1) == 1 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// leave undoes enter.
func (p *process) leave() {
	if p.wake != nil {
		p.busy.Add(-1)
	}
}

// watchMemory kills the process, with ErrMemoryLimit as the reason, when
// its resident memory goes over limit bytes while a task runs.
func (p *process) watchMemory(limit uint64) {
	for {
		select {
		case <-p.wake:
		case <-p.exited():
			return
		}
		t := time.NewTicker(watchInterval)
		for p.busy.Load() > 0 {
			select {
			case <-t.C:
			case <-p.exited():
				t.Stop()
				return
			}
			rss, err := p.rss.read()
			if err != nil {
				t.Stop()
				return // gone
			}
			if rss > p.peakRSS.Load() {
				p.peakRSS.Store(rss) // only this goroutine stores
			}
			if rss > limit {
				p.logger.Warn("worker over its memory limit; killing it", "rss_mb", rss>>20, "limit_mb", limit>>20)
				p.kill(fmt.Errorf("%w: the worker's resident memory reached %d MiB, over its limit of %d MiB; raise memoryLimitMB or send a smaller task",
					ErrMemoryLimit, rss>>20, limit>>20))
				t.Stop()
				return
			}
		}
		t.Stop()
	}
}

func exitText(waitErr error) string {
	var ee *exec.ExitError
	switch {
	case errors.As(waitErr, &ee):
		return "worker process exited during the task: " + ee.ProcessState.String()
	case waitErr != nil:
		return "worker process exited during the task: " + waitErr.Error()
	}
	return "worker process exited during the task"
}

// lineWriter turns writes into calls of fn, one per line.
type lineWriter func(string)

func (w lineWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line != "" {
			w(line)
		}
	}
	return len(b), nil
}
