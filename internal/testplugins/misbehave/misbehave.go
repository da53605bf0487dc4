package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wpmdev/wpm/shared"
)

// childArg is the argument that makes the binary the child of "spawn".
const childArg = "child"

// Input bounds.
const (
	maxMs   = 3_600_000
	maxMB   = 65_536
	maxCode = 255
)

// defaultExitCode is the status of the "exit" fault when the input names none.
const defaultExitCode = 3

// request is misbehave's input. Which fields count depends on the fault.
type request struct {
	// Fault names what to do; empty means "echo".
	Fault string `json:"fault"`
	// Ms is how long "sleep" sleeps and "alloc" holds its memory.
	Ms int64 `json:"ms"`
	// MB is how many MiB "alloc" and "leak" allocate.
	MB int64 `json:"mb"`
	// Code is the exit status of "exit"; nil means defaultExitCode.
	Code *int `json:"code"`
	// Lines are written to stderr by "log", and by "exit", "crash" and
	// "sigkill" just before the process dies, as its last words.
	Lines []string `json:"lines"`
	// Mark names a file each run appends one line to ("pid start-time")
	// before its fault: evidence of every time a task really started.
	Mark string `json:"mark"`

	// raw is the input as it was sent, for "echo".
	raw json.RawMessage
}

// faultFunc performs one fault and returns the answer to marshal.
type faultFunc func(m *misbehave, ctx context.Context, req *request) (any, error)

// faults maps each fault's name to what it does. Read-only.
var faults = map[string]faultFunc{
	"echo":     (*misbehave).echo,
	"big":      (*misbehave).big,
	"sleep":    (*misbehave).sleep,
	"hang":     (*misbehave).hang,
	"busyhang": (*misbehave).busyHang,
	"panic":    (*misbehave).panicInRun,
	"crash":    (*misbehave).crash,
	"exit":     (*misbehave).exit,
	"sigkill":  (*misbehave).sigkill,
	"alloc":    (*misbehave).alloc,
	"leak":     (*misbehave).leak,
	"garbage":  (*misbehave).garbage,
	"log":      (*misbehave).log,
	"fail":     (*misbehave).fail,
	"invalid":  (*misbehave).invalid,
	"spawn":    (*misbehave).spawn,
	"mapwrite": (*misbehave).mapWrite,
	"trace":    (*misbehave).trace,
}

// misbehave is the misbehave [shared.Task]: it does what its input asks,
// however bad. It is safe for concurrent use.
type misbehave struct {
	// stdout and stderr are the process's own fds 1 and 2: what a native
	// program writes to, and what the host reads directly.
	stdout, stderr io.Writer
	// pluginStdio returns the streams go-plugin forwards to the host over
	// the RPC connection (os.Stdout and os.Stderr once Serve swapped them).
	pluginStdio func() (stdout, stderr io.Writer)

	// crashEveryTask makes every task crash the process, whatever its
	// input: the binary's name picks it (see main).
	crashEveryTask bool

	mu     sync.Mutex
	leaked [][]byte // the "leak" fault's memory, never released
}

var _ shared.Task = (*misbehave)(nil)

// newMisbehave returns the task, writing to the process's own streams
// stdout and stderr and to the go-plugin streams pluginStdio returns.
func newMisbehave(stdout, stderr io.Writer, pluginStdio func() (stdout, stderr io.Writer)) *misbehave {
	return &misbehave{stdout: stdout, stderr: stderr, pluginStdio: pluginStdio}
}

// Run performs the fault the input names (or, with crashEveryTask, crashes
// the process whatever the input). Every answer is a JSON object
// with at least "pid". Bad input, including an unknown fault, is an error
// matching [shared.ErrInvalidInput].
func (m *misbehave) Run(ctx context.Context, input []byte) ([]byte, error) {
	if m.crashEveryTask {
		_, err := m.crash(ctx, &request{Lines: []string{"misbehave: crashing on every task on purpose"}})
		return nil, err
	}
	req, err := parseRequest(input)
	if err != nil {
		return nil, err
	}
	switch req.Fault {
	case "badjson":
		return []byte(`{"not": json`), nil // output that breaks the contract
	case "rawecho":
		return req.raw, nil // the input as sent, byte for byte (<, > and & unescaped)
	}
	fault, ok := faults[req.Fault]
	if !ok {
		return nil, shared.InvalidInput("misbehave: unknown fault %q: pick one of %s (or leave it empty for echo)",
			req.Fault, strings.Join(faultNames(), ", "))
	}
	if req.Mark != "" {
		if err := markStart(req.Mark); err != nil {
			return nil, err
		}
	}
	answer, err := fault(m, ctx, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(answer)
}

// parseRequest decodes and checks input. Empty input is an echo of nothing.
func parseRequest(input []byte) (*request, error) {
	req := &request{Fault: "echo"}
	trimmed := bytes.TrimSpace(input)
	if len(trimmed) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return nil, shared.InvalidInput(`misbehave: send a JSON object like {"fault": "sleep", "ms": 100}: %v`, err)
	}
	if dec.More() {
		return nil, shared.InvalidInput("misbehave: send one JSON object, with nothing after it")
	}
	req.raw = json.RawMessage(trimmed)
	if req.Fault == "" {
		req.Fault = "echo"
	}
	switch {
	case req.Ms < 0 || req.Ms > maxMs:
		return nil, shared.InvalidInput(`misbehave: "ms" must be from 0 to %d, got %d`, maxMs, req.Ms)
	case req.MB < 0 || req.MB > maxMB:
		return nil, shared.InvalidInput(`misbehave: "mb" must be from 0 to %d, got %d`, maxMB, req.MB)
	case req.Code != nil && (*req.Code < 0 || *req.Code > maxCode):
		return nil, shared.InvalidInput(`misbehave: "code" must be from 0 to %d, got %d`, maxCode, *req.Code)
	}
	return req, nil
}

// markStart appends "pid start-time" to the file path, one line per run.
func markStart(path string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("misbehave: mark a start: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339Nano))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("misbehave: mark a start: %w", err)
	}
	return nil
}

// faultNames returns the known faults' names, quoted and sorted.
func faultNames() []string {
	names := []string{`"badjson"`, `"rawecho"`}
	for name := range faults {
		names = append(names, strconv.Quote(name))
	}
	slices.Sort(names)
	return names
}

// Answers, one shape per kind of fault.
type (
	// pidAnswer is the answer of faults that have nothing else to say.
	pidAnswer struct {
		PID int `json:"pid"`
	}
	// echoAnswer is the answer of "echo": the input as sent.
	echoAnswer struct {
		PID   int             `json:"pid"`
		Input json.RawMessage `json:"input"`
	}
	// sleepAnswer is the answer of "sleep".
	sleepAnswer struct {
		PID     int   `json:"pid"`
		SleptMs int64 `json:"sleptMs"`
	}
	// allocAnswer is the answer of "alloc", like memusage's.
	allocAnswer struct {
		PID          int    `json:"pid"`
		MB           int64  `json:"mb"`
		Ms           int64  `json:"ms"`
		PeakRSSBytes uint64 `json:"peakRssBytes"`
		RSSBytes     uint64 `json:"rssBytes"`
	}
	// leakAnswer is the answer of "leak": LeakedMB counts every call's MiB.
	leakAnswer struct {
		PID      int    `json:"pid"`
		MB       int64  `json:"mb"`
		LeakedMB int64  `json:"leakedMb"`
		RSSBytes uint64 `json:"rssBytes"`
	}
	// spawnAnswer is the answer of "spawn".
	spawnAnswer struct {
		PID      int `json:"pid"`
		ChildPID int `json:"childPid"`
	}
)

// echo answers with the input.
func (m *misbehave) echo(_ context.Context, req *request) (any, error) {
	return echoAnswer{PID: os.Getpid(), Input: req.raw}, nil
}

// trace answers the task's traceparent, as shared.TraceParent reads it.
func (m *misbehave) trace(ctx context.Context, _ *request) (any, error) {
	return struct {
		PID         int    `json:"pid"`
		TraceParent string `json:"traceparent"`
	}{os.Getpid(), shared.TraceParent(ctx)}, nil
}

// big answers a result of req.MB MiB: a string of that many x.
func (m *misbehave) big(_ context.Context, req *request) (any, error) {
	return struct {
		PID  int    `json:"pid"`
		Data string `json:"data"`
	}{os.Getpid(), strings.Repeat("x", int(req.MB)<<20)}, nil
}

// sleep sleeps for req.Ms, or until ctx ends.
func (m *misbehave) sleep(ctx context.Context, req *request) (any, error) {
	if err := wait(ctx, req.Ms); err != nil {
		return nil, fmt.Errorf("misbehave: sleep cut short: %w", err)
	}
	return sleepAnswer{PID: os.Getpid(), SleptMs: req.Ms}, nil
}

// hang blocks forever and ignores ctx, like a task stuck on a lock.
func (m *misbehave) hang(context.Context, *request) (any, error) {
	blockForever()
	return nil, nil
}

// busyHang keeps a core busy forever and ignores ctx.
func (m *misbehave) busyHang(context.Context, *request) (any, error) {
	x := uint64(1)
	for {
		x = x*6364136223846793005 + 1442695040888963407
	}
}

// panicInRun panics in Run's goroutine; the SDK recovers it into a task error.
func (m *misbehave) panicInRun(context.Context, *request) (any, error) {
	panic("misbehave: asked to panic")
}

// crash panics in a new goroutine, where nothing recovers it: the process
// dies with a Go panic trace on stderr.
func (m *misbehave) crash(_ context.Context, req *request) (any, error) {
	m.writeLines(req.Lines)
	go func() { panic("misbehave: asked to crash") }()
	blockForever()
	return nil, nil
}

// mapWrite writes one map from two goroutines until the Go runtime dies
// of "fatal error: concurrent map writes": a fatal error that is neither a
// panic nor a lack of memory.
func (m *misbehave) mapWrite(_ context.Context, req *request) (any, error) {
	m.writeLines(req.Lines)
	counts := map[int]int{}
	write := func() {
		for i := 0; ; i++ {
			counts[i%64] = i
		}
	}
	go write()
	write()
	return nil, nil
}

// exit ends the process with req.Code, or defaultExitCode.
func (m *misbehave) exit(_ context.Context, req *request) (any, error) {
	m.writeLines(req.Lines)
	code := defaultExitCode
	if req.Code != nil {
		code = *req.Code
	}
	os.Exit(code)
	return nil, nil
}

// sigkill kills its own process with SIGKILL.
func (m *misbehave) sigkill(_ context.Context, req *request) (any, error) {
	m.writeLines(req.Lines)
	if err := killSelf(); err != nil {
		return nil, fmt.Errorf("misbehave: kill myself: %w", err)
	}
	blockForever() // until the signal lands
	return nil, nil
}

// alloc holds req.MB MiB resident for req.Ms, or until ctx ends, then
// releases them.
func (m *misbehave) alloc(ctx context.Context, req *request) (any, error) {
	if req.MB > math.MaxInt>>20 {
		return nil, fmt.Errorf("misbehave: %d MiB do not fit in this platform's address space", req.MB)
	}
	defer debug.FreeOSMemory() // runs once block is unreachable
	block := touched(int(req.MB))
	peak, rss := shared.ResidentMemory()
	err := wait(ctx, req.Ms)
	runtime.KeepAlive(block) // held until here
	if err != nil {
		return nil, fmt.Errorf("misbehave: alloc cut short: %w", err)
	}
	return allocAnswer{PID: os.Getpid(), MB: req.MB, Ms: req.Ms, PeakRSSBytes: peak, RSSBytes: rss}, nil
}

// leak allocates req.MB MiB, writes every page and keeps them for as long
// as the process lives.
func (m *misbehave) leak(_ context.Context, req *request) (any, error) {
	if req.MB > math.MaxInt>>20 {
		return nil, fmt.Errorf("misbehave: %d MiB do not fit in this platform's address space", req.MB)
	}
	block := touched(int(req.MB))
	m.mu.Lock()
	m.leaked = append(m.leaked, block)
	var total int64
	for _, b := range m.leaked {
		total += int64(len(b) >> 20)
	}
	m.mu.Unlock()
	_, rss := shared.ResidentMemory()
	return leakAnswer{PID: os.Getpid(), MB: req.MB, LeakedMB: total, RSSBytes: rss}, nil
}

// garbageText is what "garbage" writes: text that is not JSON, JSON that
// is not a log line, a bare carriage return, an escape sequence, and bytes
// that are not UTF-8.
var garbageText = []byte("this is not JSON {{{ \"unterminated\n" +
	"{\"@level\": 42, \"@message\": [\"not\", \"hclog\"]}\n" +
	"\r\x1b[31mred?\x1b[0m\n" +
	"\x00\x01\x02\xff\xfe\xfd binary \xc3\x28\n" +
	"no newline at the end")

// garbage writes garbageText to the process's own stdout and stderr and to
// the streams go-plugin forwards, then answers normally.
func (m *misbehave) garbage(context.Context, *request) (any, error) {
	pluginOut, pluginErr := m.pluginStdio()
	for _, w := range []io.Writer{m.stdout, m.stderr, pluginOut, pluginErr} {
		if _, err := w.Write(garbageText); err != nil {
			return nil, fmt.Errorf("misbehave: write garbage: %w", err)
		}
		// End the unterminated line so the next writer starts afresh.
		if _, err := w.Write([]byte("\n")); err != nil {
			return nil, fmt.Errorf("misbehave: write garbage: %w", err)
		}
	}
	return pidAnswer{PID: os.Getpid()}, nil
}

// log writes req.Lines to stderr, one per line, and answers normally.
func (m *misbehave) log(_ context.Context, req *request) (any, error) {
	m.writeLines(req.Lines)
	return pidAnswer{PID: os.Getpid()}, nil
}

// fail returns a plain error: a task failure, not the caller's fault.
func (m *misbehave) fail(context.Context, *request) (any, error) {
	return nil, errors.New("misbehave: asked to fail")
}

// invalid returns an invalid-input error.
func (m *misbehave) invalid(context.Context, *request) (any, error) {
	return nil, shared.InvalidInput("misbehave: asked for invalid input")
}

// spawn starts a child process of the same binary that ignores SIGTERM,
// SIGINT and SIGHUP and never exits. The child stays in the plugin's
// process group (no Setpgid) and its stdio is /dev/null.
func (m *misbehave) spawn(context.Context, *request) (any, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("misbehave: find my binary: %w", err)
	}
	cmd := exec.Command(self, childArg)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("misbehave: spawn: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reap the child should it ever die
	return spawnAnswer{PID: os.Getpid(), ChildPID: cmd.Process.Pid}, nil
}

// writeLines writes lines to the process's own stderr, one per line.
func (m *misbehave) writeLines(lines []string) {
	if len(lines) == 0 {
		return
	}
	// One write, so the lines are not interleaved with another task's.
	_, _ = io.WriteString(m.stderr, strings.Join(lines, "\n")+"\n")
}

// runChild is the process "spawn" starts: it ignores the polite signals and
// sleeps forever. It never returns.
func runChild() {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		// A sleep, not a channel read: with nothing else running, the
		// runtime would call a blocked main goroutine a deadlock and exit.
		time.Sleep(time.Hour)
	}
}

// startFaults performs the start-time faults that the binary's file name
// picks: "slowstart" sleeps 1.5 s, "failstart" writes a line to stderr and
// exits with status 1.
func startFaults(name string, stderr io.Writer) {
	if strings.Contains(name, "slowstart") {
		time.Sleep(1500 * time.Millisecond)
	}
	if strings.Contains(name, "failstart") {
		_, _ = io.WriteString(stderr, "misbehave: failing at start on purpose\n")
		os.Exit(1)
	}
}

// wait waits ms milliseconds, or until ctx ends and returns its error.
func wait(ctx context.Context, ms int64) error {
	timer := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// blockForever blocks the calling goroutine for good, deaf to its context.
func blockForever() {
	<-make(chan struct{})
}

// touched allocates mb MiB and writes every page so all of it is resident.
func touched(mb int) []byte {
	b := make([]byte, mb<<20)
	page := os.Getpagesize()
	for i := 0; i < len(b); i += page {
		b[i] = 1
	}
	return b
}
