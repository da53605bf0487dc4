package host_test

// Benchmarks of wpm's hot paths, each beside its baseline in the same run:
//
//	BenchmarkTrivial   Manager.Submit of a trivial task (via=submit: one
//	                   worker taking every caller; via=submit-events: the
//	                   same with the task's events listened to, progress
//	                   stream included; via=submit-2x1: two workers of one
//	                   task each; via=submit-2x1-prefetch: the same
//	                   pipelined, the shipped pool; via=submit-python: the
//	                   Python test plugin pyfaults echoing over gRPC, one
//	                   worker that runs 2 tasks at once, its Info's cap) vs a
//	                   direct go-plugin call on one client (via=direct), by
//	                   1, 8 and 64 concurrent callers
//	BenchmarkPayload   1 MiB in and 1 MiB out, Submit vs direct
//	BenchmarkRunOnce   a one-shot in a cold process vs on a warm spare, by 1
//	                   and 8 concurrent callers
//	BenchmarkPoolConfig one setting of a pool by PoolConfig vs by a Pool
//	                   snapshot (which reads /proc for every worker)
//
// Sequential cases use b.Loop; concurrent ones use b.RunParallel, which
// b.Loop can not drive, with b.SetParallelism set for the number of
// callers (reported as the "callers" metric). Every case also reports the
// p50 and p99 of its calls, measured around each call, and the host's CPU
// time per call. docs/BENCHMARKS.md has the figures and the commands
// (make bench runs them):
//
//	go test -run '^$' -bench . -benchtime 1s -count 3 ./host/ > bench.txt
//	benchstat -filter '/via:*' -col /via bench.txt

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/latency"
	"github.com/wpmdev/wpm/internal/testkit"
	"github.com/wpmdev/wpm/internal/wire"
	"github.com/wpmdev/wpm/shared"
)

// trivialInput is the trivial task: cpuload for no time, as in make bench.
var trivialInput = []byte(`{"duration": 0}`)

// pythonTrivialInput is the Python plugin's trivial task: pyfaults's echo.
var pythonTrivialInput = []byte(`{"mode": "echo"}`)

func BenchmarkTrivial(b *testing.B) {
	requireNoChildrenAtEnd(b)
	direct := mustDirect(b, "cpuload")
	// One worker that takes every caller at once, as the direct client
	// does, with the shipped pool's memory limit and timeout.
	pools := []host.PoolConfig{
		{Name: "T", Plugin: "cpuload", Workers: 1, Concurrency: 64, QueueLimit: 1024, MemoryLimitMB: 4096, TaskTimeout: 5 * time.Minute},
		{Name: "T-nolimit", Plugin: "cpuload", Workers: 1, Concurrency: 64, QueueLimit: 1024},
		// The shipped CPU pool: two workers, one task each at a time.
		{Name: "T-2x1", Plugin: "cpuload", Workers: 2, Concurrency: 1, QueueLimit: 1024, MemoryLimitMB: 4096, TaskTimeout: 5 * time.Minute},
		// The same with the shipped prefetch: pipelined.
		{Name: "T-2x1-prefetch", Plugin: "cpuload", Workers: 2, Concurrency: 1, Prefetch: 4, QueueLimit: 1024, MemoryLimitMB: 4096, TaskTimeout: 5 * time.Minute},
	}
	python := testkit.HavePython()
	if python {
		// The same trivial round trip to a Python plugin over gRPC.
		pools = append(pools, host.PoolConfig{Name: "T-python", Plugin: "pyfaults", Workers: 1, Concurrency: 64, QueueLimit: 1024, MemoryLimitMB: 4096, TaskTimeout: 5 * time.Minute})
	}
	m := mustBenchManager(b, host.Config{Pools: pools})
	submit := func(pool string, opts ...host.TaskOption) func(ctx context.Context, in []byte) ([]byte, error) {
		return func(ctx context.Context, in []byte) ([]byte, error) {
			res, err := m.Submit(ctx, pool, in, opts...)
			return res.Output, err
		}
	}
	for _, callers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			b.Run("via=direct", func(b *testing.B) { benchCalls(b, callers, direct.Run, trivialInput) })
			b.Run("via=submit", func(b *testing.B) { benchCalls(b, callers, submit("T"), trivialInput) })
			if python {
				b.Run("via=submit-python", func(b *testing.B) { benchCalls(b, callers, submit("T-python"), pythonTrivialInput) })
			}
			// The same with someone listening to the task's events, which
			// also offers the task a progress callback stream.
			b.Run("via=submit-events", func(b *testing.B) {
				benchCalls(b, callers, submit("T", host.TaskEvents(func(host.Event) {})), trivialInput)
			})
			if callers == 1 {
				// The same without a memory limit (no watchdog) or timeout.
				b.Run("via=submit-nolimit", func(b *testing.B) { benchCalls(b, callers, submit("T-nolimit"), trivialInput) })
			} else {
				b.Run("via=submit-2x1", func(b *testing.B) { benchCalls(b, callers, submit("T-2x1"), trivialInput) })
				b.Run("via=submit-2x1-prefetch", func(b *testing.B) { benchCalls(b, callers, submit("T-2x1-prefetch"), trivialInput) })
			}
		})
	}
}

func BenchmarkPayload(b *testing.B) {
	requireNoChildrenAtEnd(b)
	// misbehave's echo answers with its input: 1 MiB in, 1 MiB out.
	input := []byte(`{"fault": "echo", "lines": ["` + strings.Repeat("x", 1<<20) + `"]}`)
	direct := mustDirect(b, "misbehave")
	m := mustBenchManager(b, host.Config{Pools: []host.PoolConfig{
		{Name: "E", Plugin: "misbehave", Workers: 1, QueueLimit: 1024, MemoryLimitMB: 4096, TaskTimeout: 5 * time.Minute},
	}})
	submit := func(ctx context.Context, in []byte) ([]byte, error) {
		res, err := m.Submit(ctx, "E", in)
		if err == nil && len(res.Output) < 1<<20 {
			err = fmt.Errorf("short answer: %d bytes", len(res.Output))
		}
		return res.Output, err
	}
	b.Run("size=1MiB/via=direct", func(b *testing.B) { benchCalls(b, 1, direct.Run, input) })
	b.Run("size=1MiB/via=submit", func(b *testing.B) { benchCalls(b, 1, submit, input) })
}

// BenchmarkPoolConfig reads one setting of a pool of two workers, as the
// queue does for every retry: PoolConfig beside a Pool snapshot, which
// also reads every worker's memory from /proc.
func BenchmarkPoolConfig(b *testing.B) {
	requireNoChildrenAtEnd(b)
	m := mustBenchManager(b, host.Config{Pools: []host.PoolConfig{{Name: "E", Plugin: "misbehave", Workers: 2}}})
	b.Run("via=Pool", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s, err := m.Pool("E"); err != nil || s.Config.Workers != 2 {
				b.Fatal(s.Config, err)
			}
		}
	})
	b.Run("via=PoolConfig", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if pc, err := m.PoolConfig("E"); err != nil || pc.Workers != 2 {
				b.Fatal(pc, err)
			}
		}
	})
}

func BenchmarkRunOnce(b *testing.B) {
	requireNoChildrenAtEnd(b)
	for _, callers := range []int{1, 8} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			b.Run("start=cold", func(b *testing.B) {
				m := mustBenchManager(b, host.Config{OneShot: host.OneShotConfig{MaxConcurrent: 8}})
				benchCalls(b, callers, runOnce(m), trivialInput)
			})
			b.Run("start=warm", func(b *testing.B) {
				spares := max(1, callers/4)
				m := mustBenchManager(b, host.Config{OneShot: host.OneShotConfig{MaxConcurrent: 8, Spares: spares}})
				defer reportSpareHits(b, m)
				if callers > 1 {
					// Back to back, spares are used as fast as they start.
					_, err := runOnce(m)(context.Background(), trivialInput)
					require.NoError(b, err)
					waitSpare(b, m, "cpuload")
					benchCalls(b, callers, runOnce(m), trivialInput)
					return
				}
				// One at a time, each run finds its spare ready: the time
				// waiting for it is not counted.
				_, err := runOnce(m)(context.Background(), trivialInput)
				require.NoError(b, err)
				var h latency.Histogram
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					waitSpare(b, m, "cpuload")
					b.StartTimer()
					start := time.Now()
					if _, err := runOnce(m)(context.Background(), trivialInput); err != nil {
						b.Fatal(err)
					}
					h.Record(time.Since(start))
				}
				reportLatency(b, &h)
			})
		})
	}
}

// reportSpareHits reports the share of runs that got a spare.
func reportSpareHits(b *testing.B, m *host.Manager) {
	for _, s := range m.OneShots().Spares {
		if total := s.Used + s.Cold; total > 0 {
			b.ReportMetric(float64(s.Used)/float64(total), "spare-hits")
		}
	}
}

func runOnce(m *host.Manager) func(ctx context.Context, in []byte) ([]byte, error) {
	return func(ctx context.Context, in []byte) ([]byte, error) {
		res, err := m.RunOnce(ctx, "cpuload", in, host.RunOptions{})
		return res.Output, err
	}
}

// waitSpare waits until plugin has a ready spare.
func waitSpare(b *testing.B, m *host.Manager, plugin string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range m.OneShots().Spares {
			if s.Plugin == plugin && len(s.ReadyPIDs) > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("no spare of %s became ready: %+v", plugin, m.OneShots())
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// benchCalls measures call(ctx, input) made by callers concurrent callers.
func benchCalls(b *testing.B, callers int, call func(context.Context, []byte) ([]byte, error), input []byte) {
	ctx := context.Background()
	var h latency.Histogram
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	if callers == 1 {
		cpu0 := processCPU()
		for b.Loop() {
			start := time.Now()
			if _, err := call(ctx, input); err != nil {
				b.Fatal(err)
			}
			h.Record(time.Since(start))
		}
		reportCPU(b, processCPU()-cpu0)
		reportLatency(b, &h)
		return
	}
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((callers + procs - 1) / procs)
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			if _, err := call(ctx, input); err != nil {
				b.Error(err)
				return
			}
			h.Record(time.Since(start))
		}
	})
	reportCPU(b, processCPU()-cpu0)
	reportLatency(b, &h)
	b.ReportMetric(float64(((callers+procs-1)/procs)*procs), "callers")
	if b.Elapsed() > 0 {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	}
}

// processCPU returns the CPU time this process (the host side: benchmark,
// manager, go-plugin client) has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the host's CPU time per call: unlike wall time, it is
// barely moved by other load on the machine, and the plugin's side is the
// same for a direct call and a Submit.
func reportCPU(b *testing.B, used time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/1e3/float64(b.N), "host-cpu-us/op")
	}
}

// requireNoChildrenAtEnd checks, after every other cleanup of b, that no
// process b started is left.
func requireNoChildrenAtEnd(b *testing.B) {
	b.Cleanup(func() { testkit.RequireNoChildren(b) })
}

// mustDirect starts the plugin with go-plugin alone, as the baseline: the
// same binary, handshake and protocol as wpm's workers, no wpm between.
func mustDirect(b *testing.B, name string) shared.Task {
	b.Helper()
	cmd := exec.Command(filepath.Join(pluginDir, name))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		Plugins:          wire.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC},
		StartTimeout:     10 * time.Second,
		Logger:           hclog.NewNullLogger(),
	})
	b.Cleanup(client.Kill)
	rpc, err := client.Client()
	require.NoError(b, err)
	raw, err := rpc.Dispense(wire.PluginName)
	require.NoError(b, err)
	task, ok := raw.(shared.Task)
	require.True(b, ok, "dispensed %T", raw)
	return task
}

// mustBenchManager starts a manager on the test plugins with cfg's pools
// and one-shot settings, waits until its pools are ready, and shuts it
// down when the benchmark ends. Its logs are discarded.
func mustBenchManager(b *testing.B, cfg host.Config) *host.Manager {
	b.Helper()
	full := host.DefaultConfig()
	full.PluginDir = pluginDir
	full.Pools = cfg.Pools
	if cfg.OneShot.MaxConcurrent > 0 {
		full.OneShot.MaxConcurrent = cfg.OneShot.MaxConcurrent
	}
	full.OneShot.Spares = cfg.OneShot.Spares
	m, err := host.New(full)
	require.NoError(b, err)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(b, m.Shutdown(ctx))
	})
	for _, pc := range cfg.Pools {
		require.Eventually(b, func() bool {
			s, err := m.Pool(pc.Name)
			return err == nil && s.Ready == pc.Workers
		}, 10*time.Second, time.Millisecond, "pool %s never became ready", pc.Name)
	}
	return m
}

func reportLatency(b *testing.B, h *latency.Histogram) {
	b.ReportMetric(float64(h.Quantile(0.50).Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(h.Quantile(0.99).Nanoseconds())/1e3, "p99-us")
}
