package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// soakAction is one kind of request the soak sends, with the answers it
// may get. Besides those, any task may meet a worker killed by the chaos
// monkey (worker_crashed), or wait behind hung tasks past its timeout,
// which counts queue wait (task_timeout).
type soakAction struct {
	name    string
	weight  int
	oneShot bool
	input   []byte
	// want lists the codes this request may answer with besides
	// worker_crashed from a chaos kill.
	want []host.ErrorCode
}

var soakActions = []soakAction{
	{name: "echo", weight: 50, input: fault("echo"), want: []host.ErrorCode{"ok"}},
	{name: "sleep", weight: 10, input: fault("sleep", "ms", 30), want: []host.ErrorCode{"ok"}},
	{name: "fail", weight: 5, input: fault("fail"), want: []host.ErrorCode{host.CodeTaskFailed}},
	{name: "invalid", weight: 5, input: fault("invalid"), want: []host.ErrorCode{host.CodeInvalidTask}},
	{name: "crash", weight: 4, input: fault("crash"), want: []host.ErrorCode{host.CodeWorkerCrashed}},
	{name: "hang", weight: 3, input: fault("hang"), want: []host.ErrorCode{host.CodeTaskTimeout}},
	{name: "alloc over limit", weight: 4, input: fault("alloc", "mb", 200, "ms", 10), want: []host.ErrorCode{host.CodeMemoryLimit}},
	{name: "alloc within limit", weight: 4, input: fault("alloc", "mb", 16, "ms", 10), want: []host.ErrorCode{"ok"}},
	{name: "one-shot echo", weight: 8, oneShot: true, input: fault("echo"), want: []host.ErrorCode{"ok", host.CodeQueueFull}},
	{name: "one-shot alloc over limit", weight: 2, oneShot: true, input: fault("alloc", "mb", 200, "ms", 10), want: []host.ErrorCode{host.CodeMemoryLimit, host.CodeQueueFull}},
	{name: "one-shot hang", weight: 1, oneShot: true, input: fault("hang"), want: []host.ErrorCode{host.CodeTaskTimeout, host.CodeQueueFull}},
}

// soakReport is what a soak found.
type soakReport struct {
	mu       sync.Mutex
	sent     int
	byCode   map[host.ErrorCode]int
	byAction map[string]map[host.ErrorCode]int
	lost     []string // requests without exactly one well-formed answer
	kills    atomic.Int64
}

func (r *soakReport) record(a soakAction, code host.ErrorCode, problem string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	r.byCode[code]++
	if r.byAction[a.name] == nil {
		r.byAction[a.name] = map[host.ErrorCode]int{}
	}
	r.byAction[a.name][code]++
	if problem != "" {
		r.lost = append(r.lost, a.name+": "+problem)
	}
}

// TestSoak runs concurrent load on a pool and on one-shots for a bounded
// time while workers are killed at random, made to hang and made to exceed
// their memory limits; then it checks that every request got exactly one
// well-formed answer and that nothing leaked. WPM_SOAK_SECONDS sets the
// duration (default 4); `make soak` runs it for a minute.
func TestSoak(t *testing.T) {
	seconds := 4
	if v := os.Getenv("WPM_SOAK_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "WPM_SOAK_SECONDS")
		seconds = n
	}
	duration := time.Duration(seconds) * time.Second
	socketDir := t.TempDir()
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.SocketDir = socketDir
	cfg.OneShot.MaxConcurrent = 3
	cfg.OneShot.MaxWait = 200 * time.Millisecond
	cfg.OneShot.Timeout = 400 * time.Millisecond
	cfg.OneShot.MemoryLimitMB = 64
	cfg.Pools = []host.PoolConfig{{
		Name: "M", Plugin: "misbehave", Workers: 3, QueueLimit: 256,
		MemoryLimitMB: 64, TaskTimeout: 400 * time.Millisecond, MaxTasksPerWorker: 200,
	}}
	g0, fds0 := runtime.NumGoroutine(), countFDs(t)
	m, err := host.New(cfg, host.WithLogger(hclog.NewNullLogger()))
	require.NoError(t, err)
	waitReady(t, m, "M")

	report := &soakReport{byCode: map[host.ErrorCode]int{}, byAction: map[string]map[host.ErrorCode]int{}}
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() { soakClient(ctx, m, report, c) })
	}
	wg.Go(func() { chaosMonkey(ctx, m, report) })
	wg.Wait()

	// Pools are back to full strength, then everything stops cleanly.
	after := waitReady(t, m, "M")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.Shutdown(shutdown))
	testkit.RequireNoChildren(t)
	entries, err := os.ReadDir(socketDir)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= g0+2 && countFDs(t) <= fds0+2 }, 10*time.Second, 10*time.Millisecond,
		"goroutines %d→%d, fds %d→%d", g0, runtime.NumGoroutine(), fds0, countFDs(t))

	restarts := 0
	for _, w := range after.Workers {
		restarts += w.Restarts
	}
	summary := report.markdown(duration, restarts)
	t.Log("\n" + summary)
	if path := os.Getenv("WPM_SOAK_REPORT"); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(summary), 0o644))
	}
	assert.Empty(t, entries, "socket directories left behind")
	assert.Empty(t, report.lost, "requests without a well-formed answer")
	assert.Greater(t, report.sent, 50, "the soak sent too little to mean anything")
	assert.Positive(t, report.byCode[host.CodeTaskTimeout], "no timeout was provoked")
	assert.Positive(t, report.byCode[host.CodeMemoryLimit], "no memory limit was provoked")
}

// soakClient sends random requests until ctx ends, checking each answer.
func soakClient(ctx context.Context, m *host.Manager, report *soakReport, seed int) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(time.Now().UnixNano())))
	total := 0
	for _, a := range soakActions {
		total += a.weight
	}
	for ctx.Err() == nil {
		pick := rng.IntN(total)
		var a soakAction
		for _, a = range soakActions {
			if pick < a.weight {
				break
			}
			pick -= a.weight
		}
		var res host.Result
		var err error
		if a.oneShot {
			res, err = m.RunOnce(context.Background(), "misbehave", a.input, host.RunOptions{})
		} else {
			res, err = m.Submit(context.Background(), "M", a.input)
		}
		code, problem := checkAnswer(a, res, err)
		report.record(a, code, problem)
	}
}

// checkAnswer returns the answer's code and what is wrong with it, if
// anything.
func checkAnswer(a soakAction, res host.Result, err error) (code host.ErrorCode, problem string) {
	if err == nil {
		var out map[string]any
		if jerr := json.Unmarshal(res.Output, &out); jerr != nil || res.TaskID == "" || res.WorkerPID == 0 {
			return "ok", fmt.Sprintf("malformed success %+v", res)
		}
		if !strings.Contains(string(res.Output), `"pid":`+strconv.Itoa(res.WorkerPID)) {
			return "ok", "answer from another worker than reported"
		}
		code = "ok"
	} else {
		var te *host.TaskError
		if !errors.As(err, &te) || te.TaskID == "" {
			return "untyped", "error without a task id: " + err.Error()
		}
		code = host.Code(err)
		if code == host.CodeInternal {
			return code, "unknown error: " + err.Error()
		}
	}
	if code == host.CodeWorkerCrashed || code == host.CodeTaskTimeout || slices.Contains(a.want, code) {
		return code, ""
	}
	return code, fmt.Sprintf("answered %s, want one of %v (%v)", code, a.want, err)
}

// chaosMonkey SIGKILLs a random pool worker every 150 ms until ctx ends.
func chaosMonkey(ctx context.Context, m *host.Manager, report *soakReport) {
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, _ := m.Pool("M")
		var live []int
		for _, w := range s.Workers {
			if w.State == host.StateIdle || w.State == host.StateBusy {
				live = append(live, w.PID)
			}
		}
		if len(live) == 0 {
			continue
		}
		if syscall.Kill(live[rand.IntN(len(live))], syscall.SIGKILL) == nil {
			report.kills.Add(1)
		}
	}
}

func (r *soakReport) markdown(d time.Duration, restarts int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "soak of %s: %d requests, %d workers SIGKILLed by the chaos monkey, %d worker replacements in all, lost: %d\n\n",
		d, r.sent, r.kills.Load(), restarts, len(r.lost))
	fmt.Fprintf(&b, "| answer code | count |\n|---|---|\n")
	for _, c := range sortedKeys(r.byCode) {
		fmt.Fprintf(&b, "| %s | %d |\n", c, r.byCode[c])
	}
	fmt.Fprintf(&b, "\n| request | answers |\n|---|---|\n")
	for _, a := range sortedKeys(r.byAction) {
		var parts []string
		for _, c := range sortedKeys(r.byAction[a]) {
			parts = append(parts, fmt.Sprintf("%s %d", c, r.byAction[a][c]))
		}
		fmt.Fprintf(&b, "| %s | %s |\n", a, strings.Join(parts, ", "))
	}
	for _, l := range r.lost {
		fmt.Fprintf(&b, "\nLOST: %s", l)
	}
	return b.String()
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
