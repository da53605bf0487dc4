package host

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// stderrTailLines is how many of a worker's last stderr lines are kept for
// the error of a task it crashed in.
const stderrTailLines = 20

// procRunner is wpm's go-plugin runner: it starts the plugin binary in its
// own process group, notices its exit without waiting for its pipes, kills
// the whole group, and re-levels its stderr into the host log tagged with
// the pid while keeping the last lines for crash reports.
type procRunner struct {
	cmd    *exec.Cmd
	logger hclog.Logger // tagged with pool or plugin; pid is added at start

	socketDir  string // the directory go-plugin made for the plugin's socket
	stdout     *os.File
	stderr     *os.File
	pid        int
	exited     chan struct{} // closed when the process has been reaped
	waitErr    error         // valid once exited is closed
	stderrDone chan struct{} // closed when stderr reached EOF or was closed

	ctx       context.Context // the start's context: its end kills a starting process
	stopWatch func() bool     // ends the watch of ctx once the start is over

	mu    sync.Mutex
	tail  []string // last stderrTailLines lines of stderr
	fatal string   // the first line of a Go crash report (see crashLine)
	frame string   // the first stack frame of that report: where it crashed
}

var _ runner.Runner = (*procRunner)(nil)

// newProcRunner prepares a runner for the binary at path. When ctx ends
// before startDone is called, the process is killed.
func newProcRunner(ctx context.Context, path string, env []string, logger hclog.Logger) *procRunner {
	cmd := exec.Command(path)
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	return &procRunner{
		cmd:        cmd,
		ctx:        ctx,
		stopWatch:  func() bool { return false },
		logger:     logger,
		exited:     make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
}

// Start starts the process. The pipes are plain files, so cmd.Wait neither
// copies nor closes them and the process's exit is seen at once.
func (r *procRunner) Start(context.Context) error {
	if err := context.Cause(r.ctx); err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		return err
	}
	r.cmd.Stdout, r.cmd.Stderr = outW, errW
	err = startWorker(r.cmd.Start, func() int { return r.cmd.Process.Pid })
	_ = outW.Close()
	_ = errW.Close()
	if err != nil {
		_ = outR.Close()
		_ = errR.Close()
		return fmt.Errorf("start %s: %w", r.cmd.Path, err)
	}
	r.stdout, r.stderr = outR, errR
	r.pid = r.cmd.Process.Pid
	r.logger = r.logger.With("pid", r.pid)
	go r.readStderr()
	go r.reap()
	r.stopWatch = context.AfterFunc(r.ctx, func() { _ = killGroup(r.pid) })
	return nil
}

// removeSocketDir removes the directory go-plugin made for the plugin's
// socket, as go-plugin's Client.Kill, which wpm does not call, would, once
// the process is reaped. The path is the one go-plugin passed to the
// RunnerFunc: made at this start, inside the manager's socket directory as
// it is then (never a path computed before that directory was renamed).
func (r *procRunner) removeSocketDir() {
	if r.socketDir != "" {
		_ = os.RemoveAll(r.socketDir)
	}
}

// startDone ends the watch of the start's context: from now on only kill
// ends the process.
func (r *procRunner) startDone() { r.stopWatch() }

// stderrGrace is how long, after the process exited, its stderr may stay
// open: long enough for the last lines of a dying plugin, short enough that
// a descendant holding the pipe delays nothing that matters.
const stderrGrace = 500 * time.Millisecond

// reap waits for the process, then ends what it leaves behind: the rest of
// its group, the descendants that left the group (see orphans_linux.go),
// go-plugin's directory for its socket, and the read ends of its pipes. Those are *os.File in Go's
// poller, so closing them unblocks their readers (go-plugin's stdout
// scanner, which its Client and Kill wait for, and readStderr) even when a
// descendant of the plugin still holds the write ends. Every fd wpm opened
// for the process is closed here.
func (r *procRunner) reap() {
	r.waitErr = r.cmd.Wait()
	r.removeSocketDir()
	_ = killGroup(r.pid) // a group outlives its leader while members live
	workerReaped(r.pid)  // and descendants that left the group
	close(r.exited)
	r.waitStderr(stderrGrace)
	_ = r.stdout.Close()
	_ = r.stderr.Close()
}

// Wait blocks until the process has exited.
func (r *procRunner) Wait(context.Context) error {
	<-r.exited
	return r.waitErr
}

// Kill kills the process and its whole group. It may be called any number
// of times.
// After the leader is reaped its children may live on in the group; the
// group id can not be reused while any member is alive.
func (r *procRunner) Kill(context.Context) error { return killGroup(r.pid) }

// Stdout is where go-plugin reads the handshake.
func (r *procRunner) Stdout() io.ReadCloser { return r.stdout }

// Stderr is empty for go-plugin: procRunner reads stderr itself.
func (r *procRunner) Stderr() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }

// Name is the binary's path.
func (r *procRunner) Name() string { return r.cmd.Path }

// ID is the pid.
func (r *procRunner) ID() string { return strconv.Itoa(r.pid) }

// Diagnose explains a failed handshake.
func (r *procRunner) Diagnose(context.Context) string {
	return "the binary is not a wpm plugin (a Go one built with shared.Serve, or one serving go-plugin's gRPC protocol such as sdk/python's), or it exited or wrote to stdout before its handshake" + r.tailText()
}

// PluginToHost leaves addresses as they are.
func (r *procRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }

// HostToPlugin leaves addresses as they are.
func (r *procRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// waitStderr waits, briefly, for the rest of stderr after the process exits;
// a child of the plugin may still hold the pipe.
func (r *procRunner) waitStderr(d time.Duration) {
	closedWithin(r.stderrDone, d)
}

// tailText returns stderrText for the end of an error message, or "" when
// there are no lines.
func (r *procRunner) tailText() string {
	text := r.stderrText()
	if text == "" {
		return ""
	}
	return "; last stderr lines:\n" + text
}

// stderrText returns the kept stderr lines, led by the line that started a
// Go panic or fatal error if it scrolled out of them.
func (r *procRunner) stderrText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	text := strings.Join(r.tail, "\n")
	if r.fatal != "" && !slices.Contains(r.tail, r.fatal) {
		text = r.fatal + "\n…\n" + text
	}
	return text
}

// fatalLine returns the line that started a Go panic or fatal error.
func (r *procRunner) fatalLine() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}

func (r *procRunner) keep(line string) {
	r.mu.Lock()
	if len(r.tail) == stderrTailLines {
		copy(r.tail, r.tail[1:])
		r.tail = r.tail[:len(r.tail)-1]
	}
	r.tail = append(r.tail, line)
	r.mu.Unlock()
}

// maxStderrLine is the longest stderr line logged whole; the rest of a
// longer line is dropped, and the log says so.
const maxStderrLine = 64 * 1024

// readStderr reads all of stderr until it ends and logs each line at its
// own level: hclog JSON lines keep theirs, a Go panic or fatal error and
// what follows it is an error, and any other line is info. A line over
// maxStderrLine is cut, never fatal: a reader that stopped would leave the
// plugin to die of SIGPIPE.
func (r *procRunner) readStderr() {
	defer close(r.stderrDone)
	br := bufio.NewReaderSize(r.stderr, 4096)
	inPanic := false
	for {
		line, err := readLine(br, maxStderrLine)
		if line != "" {
			inPanic = r.logLine(line, inPanic)
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line without its newline, keeping at most max bytes
// of it and saying in the line how many were cut. Its error is the read's.
func readLine(br *bufio.Reader, max int) (string, error) {
	var b []byte
	total := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if err == nil {
			chunk = chunk[:len(chunk)-1] // the newline
		}
		total += len(chunk)
		b = append(b, chunk[:min(len(chunk), max-len(b))]...)
		if err == bufio.ErrBufferFull {
			continue
		}
		line := strings.TrimSuffix(string(b), "\r")
		if total > len(b) {
			line += fmt.Sprintf(" … [line cut: %d more bytes dropped]", total-len(b))
		}
		return line, err
	}
}

// logLine keeps and logs one stderr line; inPanic tells whether a Go crash
// report started before it, and the result whether one has started now.
func (r *procRunner) logLine(line string, inPanic bool) bool {
	r.keep(line)
	if logJSONLine(r.logger, line) {
		return inPanic
	}
	if !inPanic && crashLine(line) {
		inPanic = true
		r.mu.Lock()
		r.fatal = line
		r.mu.Unlock()
	}
	if inPanic {
		r.noteFrame(line)
		r.logger.Error(line)
	} else {
		r.logger.Log(stdLogLevel(line), line)
	}
	return inPanic
}

// noteFrame keeps the first line of a crash report that names a function:
// the frame the process crashed in.
func (r *procRunner) noteFrame(line string) {
	if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "goroutine ") || crashLine(line) ||
		!strings.Contains(line, "(") || strings.HasPrefix(line, "[") || strings.HasPrefix(line, "PC=") {
		return
	}
	r.mu.Lock()
	if r.frame == "" {
		r.frame = line
	}
	r.mu.Unlock()
}

// crashFrame returns the frame noted by noteFrame.
func (r *procRunner) crashFrame() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frame
}

// crashPrefixes start the report a Go program prints when it dies: a panic,
// a fatal runtime error, or a signal the runtime could not handle.
var crashPrefixes = []string{"panic: ", "fatal error: ", "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "unexpected fault address", "unexpected signal"}

func crashLine(line string) bool { return hasPrefix(line, crashPrefixes) }

// stdLogLevel reads the level of a line written with Go's log package in
// go-plugin's "[DEBUG] ..." style; other lines are info.
func stdLogLevel(line string) hclog.Level {
	head := line[:min(len(line), 40)]
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if strings.Contains(head, "["+strings.ToUpper(l.String())+"]") {
			return l
		}
	}
	if strings.Contains(head, "[ERR]") {
		return hclog.Error
	}
	return hclog.Info
}

// logJSONLine logs an hclog JSON line at its level with its fields, and
// reports whether line was one (a JSON object with a string @message).
func logJSONLine(l hclog.Logger, line string) bool {
	if line[0] != '{' {
		return false
	}
	var entry map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber() // 8000000 stays 8000000, not 8e+06
	if dec.Decode(&entry) != nil {
		return false
	}
	msg, ok := entry["@message"].(string)
	if !ok {
		return false
	}
	level, _ := entry["@level"].(string)
	args := make([]any, 0, 2*len(entry))
	for _, k := range slices.Sorted(maps.Keys(entry)) {
		if !strings.HasPrefix(k, "@") {
			args = append(args, k, entry[k])
		}
	}
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	l.Log(lvl, msg, args...)
	return true
}
