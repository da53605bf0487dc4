package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/host"
)

// pluginUsage is wpm plugin's usage after its first line.
const pluginUsage = `Subcommands:
  check NAME   start the plugin NAME and run wpm's conformance steps on it:
               handshake, a task (--input), input that is not JSON,
               progress, --concurrency tasks at once, a crash of its
               worker, and its memory reporting; one line per step

The host's own log goes to standard error only with --log-level.

Exit status: 0 every step passed; 1 a step failed (a summary line says
which); 2 wrong flags or arguments, or no plugin NAME (the known ones are
listed).`

// checkPool is the name of the one pool wpm plugin check runs.
const checkPool = "check"

// maxCheckConcurrency bounds --concurrency.
const maxCheckConcurrency = 256

// checkGrace is how much longer than a bound of the plugin's own the
// checker waits for the host to answer, and how long the final shutdown
// may take.
const checkGrace = 5 * time.Second

func runPlugin(args []string, e env) int {
	fs := pflag.NewFlagSet("plugin", pflag.ContinueOnError)
	input := fs.String("input", "{}", "check: the task's JSON input; @FILE reads it from a file, - from standard input")
	startTimeout := fs.Duration("start-timeout", 10*time.Second, "check: how long the plugin may take to start and be ready")
	taskTimeout := fs.Duration("task-timeout", 10*time.Second, "check: how long each task may take to answer")
	concurrency := fs.Int("concurrency", 4, "check: how many tasks to run at once on the worker")
	scriptsDir := fs.String("scripts-dir", "", "check: the folder of Node.js worker scripts (overrides node.scriptsDir)")
	cfg, st, done := loadConfig(fs, lookup("plugin"), args, e, "plugins-dir", "log-level", "log-format")
	if done {
		return st
	}
	if fs.NArg() != 2 || fs.Arg(0) != "check" {
		fmt.Fprintf(e.stderr, "wpm plugin: name a subcommand and a plugin, like: wpm plugin check cpuload\n\n%s\n", pluginUsage)
		return exitUsage
	}
	var problems []string
	if *startTimeout <= 0 {
		problems = append(problems, "--start-timeout must be above 0")
	}
	if *taskTimeout <= 0 {
		problems = append(problems, "--task-timeout must be above 0")
	}
	if *concurrency < 1 || *concurrency > maxCheckConcurrency {
		problems = append(problems, fmt.Sprintf("--concurrency must be from 1 to %d", maxCheckConcurrency))
	}
	in, err := readTask(*input, e.stdin)
	if err != nil {
		problems = append(problems, fmt.Sprintf("--input: %v", err))
	}
	if len(problems) > 0 {
		fmt.Fprintf(e.stderr, "wpm plugin check: %s\n", strings.Join(problems, "; "))
		return exitUsage
	}
	// The host's own logs go to standard error only when asked for: the
	// report is the output, and a broken plugin would flood it.
	logger := hclog.NewNullLogger()
	if fs.Changed("log-level") {
		logger = newLogger(cfg, e.stderr)
	}
	defer captureStdLog(logger)()

	c := &checker{
		name:         fs.Arg(1),
		input:        in,
		startTimeout: *startTimeout,
		taskTimeout:  *taskTimeout,
		concurrency:  *concurrency,
		out:          e.stdout,
	}
	hostCfg := cfg.Host
	hostCfg.OneShot.Spares = 0 // no one-shot runs here
	if *scriptsDir != "" {
		hostCfg.ScriptsDir = *scriptsDir
	}
	pc := c.poolConfig()
	if hostCfg.ScriptsDir != "" && host.IsScriptName(c.name) {
		// A script in the scripts folder; pluginName-style paths are not
		// accepted here, only a file name.
		pc.Plugin, pc.Script = "", filepath.Join(hostCfg.ScriptsDir, filepath.Base(c.name))
		// A script needs no plugins directory: when the default one is
		// missing (outside a checkout), the scripts folder stands in.
		if _, err := os.Stat(hostCfg.PluginDir); err != nil && !fs.Changed("plugins-dir") {
			hostCfg.PluginDir = hostCfg.ScriptsDir
		}
	}
	hostCfg.Pools = []host.PoolConfig{pc}
	return c.run(context.Background(), hostCfg, logger, e.stderr)
}

// checker runs wpm plugin check's steps on one plugin and prints a line
// for each.
type checker struct {
	name         string
	input        []byte
	startTimeout time.Duration
	taskTimeout  time.Duration
	concurrency  int
	out          io.Writer

	mgr    *host.Manager
	failed []string // names of the steps that failed

	mu     sync.Mutex
	exited map[int]string // worker pid → why it went, from the manager's events
}

// poolConfig is the one pool the check runs: a single worker of the plugin
// that runs --concurrency tasks at once.
func (c *checker) poolConfig() host.PoolConfig {
	pc := host.DefaultPoolConfig()
	pc.Name = checkPool
	pc.Plugin = c.name
	pc.Workers = 1
	pc.Concurrency = c.concurrency
	pc.StartTimeout = c.startTimeout
	pc.TaskTimeout = c.taskTimeout
	pc.QueueLimit = c.concurrency
	return pc
}

// event is the manager's event sink: it notes why workers went. It is
// quick and never blocks.
func (c *checker) event(ev host.Event) {
	if ev.Type != host.EventWorkerExited || ev.PID == 0 {
		return
	}
	c.mu.Lock()
	c.exited[ev.PID] = ev.Reason
	c.mu.Unlock()
}

// exitReason returns why the worker pid went, as the manager reported it.
func (c *checker) exitReason(pid int) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.exited[pid]
	return r, ok
}

// step names, in the order they run.
var checkSteps = []string{"handshake", "task", "invalid", "progress", "concurrency", "crash", "memory"}

// report prints one step's line. ok false counts the step as failed.
func (c *checker) report(step string, ok bool, format string, args ...any) {
	status := "ok"
	if !ok {
		status = "FAIL"
		c.failed = append(c.failed, step)
	}
	fmt.Fprintf(c.out, "%-12s %-5s %s\n", step, status, oneLine(fmt.Sprintf(format, args...)))
}

func (c *checker) run(ctx context.Context, cfg host.Config, logger hclog.Logger, stderr io.Writer) int {
	c.exited = make(map[int]string)
	where := cfg.PluginDir
	if script := cfg.Pools[0].Script; script != "" {
		where = filepath.Dir(script)
	}
	fmt.Fprintf(c.out, "checking plugin %s in %s\n", c.name, where)
	began := time.Now()
	mgr, err := host.New(cfg, host.WithLogger(logger), host.WithEvents(c.event))
	if err != nil {
		// The pool is the command's own: name the plugin, not the key.
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "pools[0].plugin: "), "pools[0].script: ")
		fmt.Fprintf(stderr, "wpm plugin check: %s\n", msg)
		var ce *host.ConfigError
		if errors.Is(err, host.ErrUnknownPlugin) || errors.As(err, &ce) {
			return exitUsage
		}
		return exitFailed
	}
	c.mgr = mgr
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), checkGrace)
		defer cancel()
		_ = mgr.Shutdown(sctx)
	}()

	if !c.handshake(ctx, began) {
		for _, s := range checkSteps[1:] {
			fmt.Fprintf(c.out, "%-12s %-5s %s\n", s, "-", "skipped: no worker started")
		}
		return c.summary()
	}
	first := c.task(ctx)
	c.invalid(ctx, first)
	c.progress(first)
	c.concurrent(ctx)
	c.crash(ctx)
	c.memory(ctx)
	return c.summary()
}

// summary prints the final line and returns the exit status.
func (c *checker) summary() int {
	if len(c.failed) == 0 {
		fmt.Fprintf(c.out, "plugin %s: ok, all %d steps passed\n", c.name, len(checkSteps))
		return exitOK
	}
	fmt.Fprintf(c.out, "plugin %s: FAIL, %d of %d steps failed: %s\n", c.name, len(c.failed), len(checkSteps), strings.Join(c.failed, ", "))
	return exitFailed
}

// worker returns the pool's worker as the pool reports it now.
func (c *checker) worker() (host.PoolStats, host.WorkerStats, bool) {
	ps, err := c.mgr.Pool(checkPool)
	if err != nil || len(ps.Workers) == 0 {
		return ps, host.WorkerStats{}, false
	}
	return ps, ps.Workers[0], true
}

// waitFor polls the pool until cond holds or d passes, and reports whether
// it held.
func (c *checker) waitFor(ctx context.Context, d time.Duration, cond func(host.PoolStats, host.WorkerStats) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if ps, w, ok := c.worker(); ok && cond(ps, w) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// handshake: the worker starts and is ready within the start timeout.
func (c *checker) handshake(ctx context.Context, began time.Time) bool {
	// New has tried the first start already; the wait covers a worker
	// that is ready a moment later, bounded by the start timeout.
	left := c.startTimeout - time.Since(began)
	ready := c.waitFor(ctx, max(left, 0)+100*time.Millisecond, func(ps host.PoolStats, w host.WorkerStats) bool {
		return ps.Ready > 0 || ps.LastError != ""
	})
	ps, w, _ := c.worker()
	if ready && ps.Ready > 0 && w.PID > 0 {
		c.report("handshake", true, "pid %d ready in %s", w.PID, ms(time.Since(began)))
		return true
	}
	why := ps.LastError
	if why == "" {
		why = fmt.Sprintf("not ready within --start-timeout %s", c.startTimeout)
	}
	c.report("handshake", false, "no worker started in %s: %s", ms(time.Since(began)), why)
	return false
}

// answer is how one task ended, as the check sees it.
type answer struct {
	res      host.Result
	err      error
	pid      int
	started  time.Time // when a worker took it; zero if none did
	finished time.Time
	progress []host.Event
}

// submit runs input on the pool, bounded by the task timeout (the pool's
// own, and a backstop here), and collects the task's events.
func (c *checker) submit(ctx context.Context, input []byte) answer {
	var mu sync.Mutex
	var a answer
	ctx, cancel := context.WithTimeout(ctx, c.taskTimeout+checkGrace)
	defer cancel()
	listen := host.TaskEvents(func(ev host.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Type {
		case host.EventTaskStarted:
			a.started = ev.Time
		case host.EventTaskProgress:
			a.progress = append(a.progress, ev)
		}
	})
	res, err := c.mgr.Submit(ctx, checkPool, input, listen)
	mu.Lock()
	defer mu.Unlock()
	a.res, a.err, a.finished = res, err, time.Now()
	a.pid = res.WorkerPID
	var te *host.TaskError
	if errors.As(err, &te) {
		a.pid = te.WorkerPID
	}
	return a
}

// proper reports whether a is an answer a plugin may give: a JSON result,
// or a task error of the plugin's own (invalid_task, task_failed). why
// says what it was, or what went wrong.
func (a answer) proper() (ok bool, why string) {
	if a.err == nil {
		if !json.Valid(a.res.Output) {
			return false, fmt.Sprintf("%s: the result is not JSON (a plugin must answer a JSON value); it began %.80q", host.CodeTaskFailed, a.res.Output)
		}
		return true, fmt.Sprintf("a result of %d bytes in %s", len(a.res.Output), ms(a.res.Duration))
	}
	code := host.Code(a.err)
	switch code {
	case host.CodeInvalidTask, host.CodeTaskFailed:
		return true, fmt.Sprintf("a typed error, %s: %s", code, a.err)
	}
	why = fmt.Sprintf("%s: %v", code, a.err)
	var te *host.TaskError
	if errors.As(a.err, &te) && te.Detail != "" {
		why += "; its stderr: " + telling(te.Detail)
	}
	return false, why
}

// task: --input runs and answers within the task timeout.
func (c *checker) task(ctx context.Context) answer {
	a := c.submit(ctx, c.input)
	ok, why := a.proper()
	c.report("task", ok, "%s (pid %d)", why, a.pid)
	return a
}

// invalid: input that is not JSON gets an answer, and the same worker
// serves the next task.
func (c *checker) invalid(ctx context.Context, first answer) {
	bad := c.submit(ctx, []byte("not json"))
	ok, why := bad.proper()
	if !ok {
		c.report("invalid", false, "input that is not JSON: %s", why)
		return
	}
	var note string
	if host.Code(bad.err) != host.CodeInvalidTask {
		note = fmt.Sprintf("warning: input that is not JSON got %s, not invalid_task", why)
	} else {
		note = "invalid_task"
	}
	next := c.submit(ctx, c.input)
	if ok, why := next.proper(); !ok {
		c.report("invalid", false, "%s; but the next task: %s", note, why)
		return
	}
	firstOK, _ := first.proper()
	if next.pid != bad.pid || (firstOK && bad.pid != first.pid) {
		c.report("invalid", false, "%s; but the worker changed: pid %d, then %d for the next task", note, bad.pid, next.pid)
		return
	}
	c.report("invalid", true, "%s; pid %d served the next task", note, next.pid)
}

// progress: what the plugin reported while the task of step 2 ran.
func (c *checker) progress(first answer) {
	if len(first.progress) == 0 {
		c.report("progress", true, "none reported; optional")
		return
	}
	p := first.progress
	last := p[len(p)-1]
	backwards := 0
	for i := 1; i < len(p); i++ {
		if p[i].Fraction < p[i-1].Fraction {
			backwards++
		}
	}
	note := ""
	if backwards > 0 {
		note = fmt.Sprintf("; warning: went back %d times", backwards)
	}
	c.report("progress", true, "%d reports, %.0f%% to %.0f%%, last %q%s", len(p), p[0].Fraction*100, last.Fraction*100, last.Message, note)
}

// concurrent: --concurrency tasks submitted together all answer.
func (c *checker) concurrent(ctx context.Context) {
	answers := make([]answer, c.concurrency)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			answers[i] = c.submit(ctx, c.input)
		}()
	}
	close(gate)
	wg.Wait()
	good := 0
	var bad []string
	for _, a := range answers {
		if ok, why := a.proper(); ok {
			good++
		} else {
			bad = append(bad, why)
		}
	}
	if good < len(answers) {
		c.report("concurrency", false, "%d/%d answered properly; %s", good, len(answers), bad[0])
		return
	}
	c.report("concurrency", true, "%d/%d answered; %s", good, len(answers), overlap(answers))
}

// overlap says how many of answers' tasks ran at once at most, from when a
// worker took each and when it answered.
func overlap(answers []answer) string {
	type edge struct {
		t     time.Time
		delta int
	}
	var edges []edge
	for _, a := range answers {
		if a.started.IsZero() {
			return "overlap unknown"
		}
		edges = append(edges, edge{a.started, 1}, edge{a.finished, -1})
	}
	slices.SortFunc(edges, func(x, y edge) int {
		if c := x.t.Compare(y.t); c != 0 {
			return c
		}
		return x.delta - y.delta // an end before a start at the same instant
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	return fmt.Sprintf("up to %d ran at once", most)
}

// crash: SIGKILL the idle worker; the pool reports it, starts another,
// and a next task succeeds on the new pid.
func (c *checker) crash(ctx context.Context) {
	if !c.waitFor(ctx, c.taskTimeout, func(ps host.PoolStats, w host.WorkerStats) bool {
		return w.State == host.StateIdle && w.PID > 0
	}) {
		c.report("crash", false, "the worker was not idle and ready within --task-timeout %s", c.taskTimeout)
		return
	}
	_, w, _ := c.worker()
	old, restarts := w.PID, w.Restarts
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		c.report("crash", false, "kill pid %d: %v", old, err)
		return
	}
	killed := time.Now()
	replaced := c.waitFor(ctx, c.startTimeout+checkGrace, func(ps host.PoolStats, w host.WorkerStats) bool {
		return w.Restarts > restarts && w.PID > 0 && w.PID != old && w.State != host.StateStarting && w.State != host.StateStopping
	})
	_, w, _ = c.worker()
	reason, seen := c.exitReason(old)
	if !seen {
		reason = w.LastExit
	}
	if !replaced {
		c.report("crash", false, "killed pid %d; no replacement ready within %s (last exit %q)", old, ms(time.Since(killed)), w.LastExit)
		return
	}
	if reason == "" {
		c.report("crash", false, "killed pid %d; the pool started pid %d but reported no exit", old, w.PID)
		return
	}
	next := c.submit(ctx, c.input)
	if ok, why := next.proper(); !ok {
		c.report("crash", false, "killed pid %d (reported %s), replaced by pid %d in %s; but the next task: %s", old, reason, w.PID, ms(time.Since(killed)), why)
		return
	}
	if next.pid == old || next.pid == 0 {
		c.report("crash", false, "killed pid %d (reported %s); the next task ran on pid %d", old, reason, next.pid)
		return
	}
	c.report("crash", true, "killed pid %d (reported %s), replaced by pid %d, which answered the next task", old, reason, next.pid)
}

// memory: the worker's resident memory is readable and above 0. A worker
// still starting (after a crash) is waited for, up to the start timeout.
func (c *checker) memory(ctx context.Context) {
	c.waitFor(ctx, c.startTimeout, func(ps host.PoolStats, w host.WorkerStats) bool {
		return ps.Ready > 0 && w.PID > 0 && w.RSSBytes > 0
	})
	_, w, ok := c.worker()
	switch {
	case !ok || w.PID == 0:
		c.report("memory", false, "no worker ready within --start-timeout %s to read", c.startTimeout)
	case w.RSSBytes == 0:
		c.report("memory", false, "the RSS of pid %d reads as 0", w.PID)
	default:
		c.report("memory", true, "RSS of pid %d is %.1f MB", w.PID, float64(w.RSSBytes)/1e6)
	}
}

// ms rounds d for a report.
func ms(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

// maxLine bounds a step's line, in bytes.
const maxLine = 500

// oneLine puts s on one line of at most maxLine bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxLine {
		s = strings.ToValidUTF8(s[:maxLine-3], "") + "..."
	}
	return s
}

// telling returns the line of a dead worker's last stderr lines that says
// most: a Go runtime's "panic:" or "fatal error:" line (its trace ends in
// a source location), else the last line that is not blank.
func telling(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			return l
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
