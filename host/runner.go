package host

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	stdout     *os.File
	stderr     *os.File
	pid        int
	exited     chan struct{} // closed when the process has been reaped
	waitErr    error         // valid once exited is closed
	stderrDone chan struct{} // closed when stderr reached EOF

	mu    sync.Mutex
	tail  []string // last stderrTailLines lines of stderr
	fatal string   // the first line of a Go crash report (see crashLine)
}

var _ runner.Runner = (*procRunner)(nil)

func newProcRunner(path string, env []string, logger hclog.Logger) *procRunner {
	cmd := exec.Command(path)
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	return &procRunner{
		cmd:        cmd,
		logger:     logger,
		exited:     make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
}

// Start starts the process. The pipes are plain files, so cmd.Wait neither
// copies nor closes them and the process's exit is seen at once.
func (r *procRunner) Start(context.Context) error {
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
	err = r.cmd.Start()
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
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()
	return nil
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
	return "the binary is not a wpm plugin (built with shared.Serve), or it exited or wrote to stdout before its handshake" + r.tailText()
}

// PluginToHost leaves addresses as they are.
func (r *procRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }

// HostToPlugin leaves addresses as they are.
func (r *procRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// waitStderr waits, briefly, for the rest of stderr after the process exits;
// a child of the plugin may still hold the pipe.
func (r *procRunner) waitStderr(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.stderrDone:
	case <-t.C:
	}
}

// tailText returns the kept stderr lines, or "" when there are none.
func (r *procRunner) tailText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tail) == 0 {
		return ""
	}
	return "; last stderr lines:\n" + strings.Join(r.tail, "\n")
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

// readStderr logs each stderr line at its own level: hclog JSON lines keep
// theirs, a Go panic or fatal error and what follows it is an error, and
// any other line is info.
func (r *procRunner) readStderr() {
	defer close(r.stderrDone)
	defer r.stderr.Close()
	sc := bufio.NewScanner(r.stderr)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	inPanic := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		r.keep(line)
		if logJSONLine(r.logger, line) {
			continue
		}
		if !inPanic && crashLine(line) {
			inPanic = true
			r.mu.Lock()
			r.fatal = line
			r.mu.Unlock()
		}
		if inPanic {
			r.logger.Error(line)
		} else {
			r.logger.Log(stdLogLevel(line), line)
		}
	}
}

// crashPrefixes start the report a Go program prints when it dies: a panic,
// a fatal runtime error, or a signal the runtime could not handle.
var crashPrefixes = []string{"panic: ", "fatal error: ", "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "unexpected fault address", "unexpected signal"}

func crashLine(line string) bool {
	for _, p := range crashPrefixes {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

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
	if json.Unmarshal([]byte(line), &entry) != nil {
		return false
	}
	msg, ok := entry["@message"].(string)
	if !ok {
		return false
	}
	level, _ := entry["@level"].(string)
	args := make([]any, 0, 2*len(entry))
	for k, v := range entry {
		if strings.HasPrefix(k, "@") {
			continue
		}
		args = append(args, k, v)
	}
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	l.Log(lvl, msg, args...)
	return true
}
