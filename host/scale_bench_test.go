package host_test

// Benchmarks of pools that size themselves (issue 22), each beside its
// baseline in the same run; docs/BENCHMARKS.md ("Autoscaling") has the
// figures and the commands:
//
//	go test -run '^$' -bench 'Scale' -benchtime 20x -count 3 ./host/
//
//	BenchmarkScale_coldStart  a trivial task on a pool at 0 workers (it
//	                          starts one) vs on a pool with a ready worker
//	BenchmarkScale_burst      16 tasks at once, of 100 ms each, sleeping
//	                          (misbehave) or busy (cpuload), on a fixed pool
//	                          of 2 vs a pool of 0 to 4 that starts at 0

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/latency"
)

func BenchmarkScale_coldStart(b *testing.B) {
	requireNoChildrenAtEnd(b)
	m := mustBenchManager(b, host.Config{Pools: []host.PoolConfig{
		{Name: "cold", Plugin: "cpuload", MaxWorkers: 1, ScaleDownAfter: time.Millisecond, QueueLimit: 8},
		{Name: "warm", Plugin: "cpuload", Workers: 1, QueueLimit: 8},
	}})
	for _, pool := range []string{"warm", "cold"} {
		b.Run("pool="+pool, func(b *testing.B) {
			var h latency.Histogram
			for b.Loop() {
				if pool == "cold" {
					b.StopTimer()
					waitEmpty(b, m, pool)
					b.StartTimer()
				}
				start := time.Now()
				if _, err := m.Submit(context.Background(), pool, trivialInput); err != nil {
					b.Fatal(err)
				}
				h.Record(time.Since(start))
			}
			reportLatency(b, &h)
		})
	}
}

func BenchmarkScale_burst(b *testing.B) {
	requireNoChildrenAtEnd(b)
	const tasks, ms = 16, 100
	m := mustBenchManager(b, host.Config{Pools: []host.PoolConfig{
		{Name: "sleep-fixed2", Plugin: "misbehave", Workers: 2, QueueLimit: 64},
		{Name: "sleep-0to4", Plugin: "misbehave", MaxWorkers: 4, ScaleDownAfter: 50 * time.Millisecond, QueueLimit: 64},
		{Name: "busy-fixed2", Plugin: "cpuload", Workers: 2, QueueLimit: 64},
		{Name: "busy-0to4", Plugin: "cpuload", MaxWorkers: 4, ScaleDownAfter: 50 * time.Millisecond, QueueLimit: 64},
	}})
	inputs := map[string][]byte{
		"sleep": fault("sleep", "ms", ms),
		"busy":  []byte(fmt.Sprintf(`{"duration": %d}`, ms)),
	}
	for _, work := range []string{"sleep", "busy"} {
		for _, size := range []string{"fixed2", "0to4"} {
			pool := work + "-" + size
			b.Run("pool="+pool, func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					if size == "0to4" {
						waitEmpty(b, m, pool)
					}
					b.StartTimer()
					var wg sync.WaitGroup
					for range tasks {
						wg.Go(func() {
							if _, err := m.Submit(context.Background(), pool, inputs[work]); err != nil {
								b.Error(err)
							}
						})
					}
					wg.Wait()
				}
			})
		}
	}
}

// waitEmpty waits until the pool has scaled down to no worker.
func waitEmpty(b *testing.B, m *host.Manager, pool string) {
	b.Helper()
	require.Eventually(b, func() bool {
		s, err := m.Pool(pool)
		return err == nil && s.Target == 0 && len(s.Workers) == 0
	}, 10*time.Second, time.Millisecond, "pool %s never scaled down to 0", pool)
}
