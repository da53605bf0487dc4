//go:build linux

// Command http is wpm's HTTP load benchmark, run by `make bench`.
//
// It starts, on free 127.0.0.1 ports, a bare echo server whose one handler
// reads the body and answers {"ok":true} (the ceiling), and `wpm serve`
// with the given config; measures the idle resident memory of wpm and its
// workers; then drives both with the same load generator, one keep-alive
// connection per caller, at each connection count for a fixed time per
// case:
//
//	noop                      the ceiling
//	/example/pool             {"poolName":"CPU","workerTask":{"duration":0}}
//	/v1/pools/CPU/tasks       {"duration":0}
//	/v1/plugins/cpuload/run   {"duration":0}, a one-shot, cold (the first
//	                          wpm runs with WPM_ONESHOT_SPARES=0), then on
//	                          a second wpm with oneShot.spares set, paced
//	                          at 1 connection so each run finds its spare,
//	                          and back to back
//	200 × {"duration":200}    to /v1/pools/CPU/tasks at 8 connections, timed
//	                          as a whole (-long-tasks)
//	the Node seed             /example/pool on a copy of the seed (-seed),
//	                          when node and npm are installed; skipped with
//	                          a line saying why otherwise
//
// and prints req/s, p50, p99 and errors per case, the targets of issue 10, with the ratio to the
// ceiling at the same connection count, the CPU time per request of the
// server, its workers and the load generator (steadier than req/s on a
// shared machine), and how much of the machine's CPU other processes took
// meanwhile. It stops everything it started,
// also when interrupted. The load generator is this program: a few lines
// of net/http that cost the same for every case and need nothing outside
// the module (see docs/BENCHMARKS.md).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/labstack/echo/v4"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line.
type options struct {
	wpm       string
	config    string
	duration  time.Duration
	warmup    time.Duration
	conns     []int
	spares    int
	pace      time.Duration
	wpmLog    string
	wpmArgs   []string
	serveNoop bool
	seed      string
	longTasks int
	cases     string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench/http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.wpm, "wpm", "bin/wpm", "the wpm binary")
	fs.StringVar(&o.config, "config", "config/default.yaml", "wpm's config; its pools must include CPU running cpuload")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each case is measured")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "load before each case's measurement, not counted")
	conns := fs.String("conns", "1,8,64", "connection counts, comma-separated")
	fs.IntVar(&o.spares, "spares", 2, "oneShot.spares of the second wpm, for warm one-shots (0 skips them)")
	fs.DurationVar(&o.pace, "pace", 100*time.Millisecond, "time between the paced warm one-shots")
	fs.StringVar(&o.wpmLog, "wpm-log", os.DevNull, "where wpm's log goes")
	wpmArgs := fs.String("wpm-args", "", "more arguments for wpm serve, space-separated (e.g. --log-level=warn)")
	fs.StringVar(&o.seed, "seed", "", "the Node seed's directory, run side by side on a copy (empty or missing: skipped)")
	fs.IntVar(&o.longTasks, "long-tasks", 200, `how many {"duration":200} tasks the long-task case sends to the CPU pool at 8 connections (0 skips it)`)
	fs.StringVar(&o.cases, "cases", "all", "all, or scripts: only the Node.js script cases next to the seed")
	fs.BoolVar(&o.serveNoop, "serve-noop", false, "internal: serve the no-op handler and print its address")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, c := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-conns: %q is not a positive number", c)
		}
		o.conns = append(o.conns, n)
	}
	o.wpmArgs = strings.Fields(*wpmArgs)
	if o.duration <= 0 || o.warmup < 0 {
		return o, errors.New("-duration must be positive and -warmup not negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		return 2
	}
	if o.serveNoop {
		return serveNoop(ctx, stdout, stderr)
	}
	if err := bench(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// serveNoop is the ceiling: echo with one handler that reads the body and
// answers a constant, on a free port printed to stdout, until signalled.
func serveNoop(ctx context.Context, stdout, stderr io.Writer) int {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/noop", func(c echo.Context) error {
		if _, err := io.Copy(io.Discard, c.Request().Body); err != nil {
			return err
		}
		return c.JSONBlob(http.StatusOK, []byte(`{"ok":true}`))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(stdout, ln.Addr().String())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// trivial is the trivial task: cpuload for no time.
const trivial = `{"duration":0}`

func bench(ctx context.Context, o options, stdout io.Writer) error {
	printMachine(stdout, o)
	if o.cases == "scripts" {
		var rows []row
		err := benchScripts(ctx, o, stdout, func(r row) { rows = append(rows, r); printRow(stdout, r) })
		printTable(stdout, rows)
		printTargets(stdout, rows, nil)
		return err
	}
	noop, err := startNoop(ctx)
	if err != nil {
		return err
	}
	defer noop.stop()
	w, err := startWPM(ctx, o, []string{"WPM_ONESHOT_SPARES=0"})
	if err != nil {
		return err
	}
	defer w.stop()

	idle := w.memory()
	fmt.Fprintf(stdout, "\nidle resident memory, %s: wpm host %s; workers %s\n", o.config, mb(idle.host), mbs(idle.workers))

	var rows []row
	add := func(r row) {
		rows = append(rows, r)
		printRow(stdout, r)
	}
	fmt.Fprintf(stdout, "\ncases (%s each after %s of warm-up):\n", o.duration, o.warmup)
	for _, c := range o.conns {
		for _, t := range []target{
			{name: "noop (echo ceiling)", url: noop.url + "/noop", body: trivial, server: noop},
			{name: "POST /example/pool", url: w.url + "/example/pool", body: `{"poolName":"CPU","workerTask":` + trivial + `}`, server: w},
			{name: "POST /v1/pools/CPU/tasks", url: w.url + "/v1/pools/CPU/tasks", body: trivial, server: w},
		} {
			if err := ctx.Err(); err != nil {
				return err
			}
			add(load(ctx, t, c, o))
		}
	}
	var long *batchResult
	if o.longTasks > 0 && ctx.Err() == nil {
		r := batch(ctx, target{name: "POST /v1/pools/CPU/tasks {\"duration\":200}", url: w.url + "/v1/pools/CPU/tasks", body: `{"duration":200}`},
			o.longTasks, longConns, longBound)
		long = &r
		fmt.Fprintf(stdout, "  %-40s n=%d conns=%d  total %.2f s  p50 %.0f ms  p99 %.0f ms  errors %d%s\n",
			r.name, r.n, r.conns, r.total.Seconds(), ms(r.p50), ms(r.p99), r.errors, r.firstErr)
	}
	for _, c := range o.conns {
		add(load(ctx, target{name: "POST /v1/plugins/cpuload/run (cold)", url: w.url + "/v1/plugins/cpuload/run", body: trivial, server: w}, c, o))
	}
	loaded := w.memory()
	fmt.Fprintf(stdout, "\nresident memory after the load: wpm host %s; workers %s\n", mb(loaded.host), mbs(loaded.workers))
	w.stop()

	if o.spares > 0 && ctx.Err() == nil {
		env := "WPM_ONESHOT_SPARES=" + strconv.Itoa(o.spares)
		warm, err := startWPM(ctx, o, []string{env})
		if err != nil {
			return err
		}
		defer warm.stop()
		name := fmt.Sprintf("POST /v1/plugins/cpuload/run (spares=%d)", o.spares)
		t := target{name: name, url: warm.url + "/v1/plugins/cpuload/run", body: trivial, server: warm}
		paced := t
		paced.name += fmt.Sprintf(" paced %s", o.pace)
		paced.pace = o.pace
		add(load(ctx, paced, 1, o))
		for _, c := range o.conns {
			add(load(ctx, t, c, o))
		}
		warm.stop()
	}
	if ctx.Err() == nil {
		if err := benchSeed(ctx, o, stdout, add); err != nil {
			return err
		}
	}
	if ctx.Err() == nil {
		if err := benchScripts(ctx, o, stdout, add); err != nil {
			return err
		}
	}
	printTable(stdout, rows)
	printTargets(stdout, rows, long)
	return ctx.Err()
}

// printRow prints one case's result as it is measured.
func printRow(w io.Writer, r row) {
	fmt.Fprintf(w, "  %-40s conns=%-3d %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d  cpu/req server %s (workers %s) gen %s  other %.0f %%%s\n",
		r.name, r.conns, r.rate, ms(r.p50), ms(r.p99), r.errors, us(r.serverCPU), us(r.workerCPU), us(r.genCPU), 100*r.otherCPU, r.firstErr)
}

// The long-task case: its connections, and the most it may take.
const (
	longConns = 8
	longBound = 2 * time.Minute
)

// target is one case's request.
type target struct {
	name, url, body string
	server          *child        // what answers it
	pace            time.Duration // between one connection's requests; 0: back to back
}

// row is one case's result.
type row struct {
	name     string
	conns    int
	rate     float64
	p50, p99 time.Duration
	errors   int64
	firstErr string
	// CPU time per request of the server with its workers, of the
	// workers alone, and of the load generator, and the share of the
	// machine's CPU used by none of them (other processes: a busy machine
	// makes the figures unreliable).
	serverCPU, workerCPU, genCPU time.Duration
	otherCPU                     float64
}

// load drives t with conns connections, each sending its next request when
// the last answer is read, for o.warmup and then o.duration, and counts
// what completed during the latter.
func load(ctx context.Context, t target, conns int, o options) row {
	var tl tally
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	// Requests still running at the end get a bounded time to finish.
	hard, cancel := context.WithDeadline(ctx, end.Add(15*time.Second))
	defer cancel()
	var before, after cpuSample
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		time.Sleep(time.Until(measureFrom))
		before = sampleCPU(t.server)
		time.Sleep(time.Until(end))
		after = sampleCPU(t.server)
	}()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			client, closeClient := connection()
			defer closeClient()
			next := time.Now()
			for {
				if t.pace > 0 {
					next = next.Add(t.pace)
					time.Sleep(time.Until(next))
				}
				began := time.Now()
				if !began.Before(end) || hard.Err() != nil {
					return
				}
				status, err := post(hard, client, t.url, t.body)
				took := time.Since(began)
				if hard.Err() != nil {
					return
				}
				if fin := began.Add(took); fin.Before(measureFrom) || fin.After(end) {
					continue
				}
				tl.record(status, err, took)
			}
		})
	}
	wg.Wait()
	<-sampled
	r := row{
		name: t.name, conns: conns, rate: float64(tl.done.Load()) / o.duration.Seconds(),
		p50: tl.h.Quantile(0.50), p99: tl.h.Quantile(0.99), errors: tl.failed.Load(), firstErr: tl.first,
	}
	if n := tl.done.Load() + tl.failed.Load(); n > 0 {
		r.serverCPU = (after.server + after.workers - before.server - before.workers) / time.Duration(n)
		r.workerCPU = (after.workers - before.workers) / time.Duration(n)
		r.genCPU = (after.gen - before.gen) / time.Duration(n)
	}
	if wall := after.total - before.total; wall > 0 {
		used := (after.busy - before.busy) - (after.server + after.workers - before.server - before.workers) - (after.gen - before.gen)
		r.otherCPU = max(0, float64(used)/float64(wall))
	}
	return r
}

// cpuSample is CPU time used so far: by a server, by its workers (live and
// reaped), by this program, and by the whole machine (busy, and busy plus
// idle).
type cpuSample struct {
	server, workers, gen, busy, total time.Duration
}

// tick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const tick = 10 * time.Millisecond

func sampleCPU(server *child) cpuSample {
	var s cpuSample
	if server != nil {
		pid := server.cmd.Process.Pid
		// The server's own time and its reaped children's, then its live
		// children's (workers and one-shot processes).
		s.server = procCPU(pid, false)
		s.workers = procCPU(pid, true) - s.server
		for _, kid := range childrenOf(pid) {
			s.workers += procCPU(kid, false)
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.gen = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := bytes.Cut(b, []byte("\n"))
		for i, f := range bytes.Fields(line)[1:] {
			n, _ := strconv.ParseInt(string(f), 10, 64)
			s.total += time.Duration(n) * tick
			if i != 3 && i != 4 { // idle, iowait
				s.busy += time.Duration(n) * tick
			}
		}
	}
	return s
}

// procCPU reads a process's user and system time from /proc/PID/stat,
// with its reaped children's if children is set.
func procCPU(pid int, children bool) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	// Field k of the man page is f[k-3]: utime and stime are fields 14
	// and 15, cutime and cstime 16 and 17.
	f := bytes.Fields(b[i+1:])
	if len(f) < 15 {
		return 0
	}
	times := f[11:13]
	if children {
		times = f[11:15]
	}
	var sum int64
	for _, v := range times {
		n, _ := strconv.ParseInt(string(v), 10, 64)
		sum += n
	}
	return time.Duration(sum) * tick
}

// post sends body and reads the whole answer.
func post(ctx context.Context, client *http.Client, url, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// printTable prints every case again with its ratio to the ceiling at the
// same connection count.
func printTable(w io.Writer, rows []row) {
	ceiling := map[int]row{}
	for _, r := range rows {
		if strings.HasPrefix(r.name, "noop") {
			ceiling[r.conns] = r
		}
	}
	fmt.Fprintln(w, "\nsummary. ratio: req/s of the case / req/s of the noop ceiling at the same connections;")
	fmt.Fprintln(w, "cpu/req: CPU time per request of the server with its workers, of the workers alone, and of the load generator;")
	fmt.Fprintln(w, "other: CPU of the machine used by neither (over 10 % means the figures are disturbed)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tconns\treq/s\tp50 ms\tp99 ms\terrors\tratio\tserver cpu/req\tworkers\tgen cpu/req\tother\t")
	for _, r := range rows {
		ratio := "-"
		if c, ok := ceiling[r.conns]; ok && c.rate > 0 {
			ratio = fmt.Sprintf("%.0f %%", 100*r.rate/c.rate)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t%s\t%.0f %%\t\n",
			r.name, r.conns, r.rate, ms(r.p50), ms(r.p99), r.errors, ratio, us(r.serverCPU), us(r.workerCPU), us(r.genCPU), 100*r.otherCPU)
	}
	_ = tw.Flush()
}

func printMachine(w io.Writer, o options) {
	fmt.Fprintf(w, "wpm HTTP load benchmark, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, GOMAXPROCS %d\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "wpm: %s serve --config %s %s\n", o.wpm, o.config, strings.Join(o.wpmArgs, " "))
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// child is a process this program started; stop ends it, once.
type child struct {
	cmd   *exec.Cmd
	url   string
	group bool // leads its own process group, which stop ends
	once  sync.Once
}

// stop asks the process to end (SIGTERM), and kills it if it has not
// within 15 s.
func (c *child) stop() {
	c.once.Do(func() {
		exited := make(chan struct{})
		go func() {
			_ = c.cmd.Wait()
			close(exited)
		}()
		if c.group {
			c.stopGroup(exited)
			return
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-exited
		}
	})
}

// command makes a child that dies with this program.
func command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	return cmd
}

// startNoop starts this program again as the ceiling server.
func startNoop(ctx context.Context) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := command(self, "-serve-noop")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("start the noop server: %w", err)
	}
	c := &child{cmd: cmd}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		if a == "" {
			c.stop()
			return nil, errors.New("the noop server did not start")
		}
		c.url = "http://" + a
		return c, nil
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	c.stop()
	return nil, errors.New("the noop server did not start within 10 s")
}

// startWPM starts `wpm serve` with o's config on a free port, with env
// added to this program's environment, and waits until /readyz says every
// pool has its workers.
func startWPM(ctx context.Context, o options, env []string) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"serve", "--config", o.config, "--addr", addr}, o.wpmArgs...)
	cmd := command(o.wpm, args...)
	cmd.Env = append(os.Environ(), env...)
	logFile, err := os.OpenFile(o.wpmLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w (run make build)", o.wpm, err)
	}
	c := &child{cmd: cmd, url: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(c.url + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && !bytes.Contains(body, []byte("degraded")) {
				return c, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			return nil, fmt.Errorf("wpm on %s was not ready within 20 s (its log: %s)", addr, o.wpmLog)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// usage is the resident memory of wpm and of each of its workers.
type usage struct {
	host    uint64
	workers []uint64
}

func (c *child) memory() usage {
	pid := c.cmd.Process.Pid
	u := usage{host: rss(pid)}
	for _, kid := range childrenOf(pid) {
		u.workers = append(u.workers, rss(kid))
	}
	return u
}

// rss reads VmRSS of a process, in bytes.
func rss(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 2 {
				kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// childrenOf lists the live children of pid.
func childrenOf(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(pid) {
			continue
		}
		if kid, err := strconv.Atoi(filepath.Base(filepath.Dir(s))); err == nil {
			kids = append(kids, kid)
		}
	}
	return kids
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func us(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", ms(d))
	}
	return fmt.Sprintf("%d µs", d.Microseconds())
}

func mb(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

func mbs(bs []uint64) string {
	if len(bs) == 0 {
		return "none"
	}
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = mb(b)
	}
	return strings.Join(parts, ", ")
}
