package queue

import (
	"context"
	"testing"
	"time"

	"github.com/wpmdev/wpm/host"
)

// benchEngine is an engine over one pool of two echo workers.
func benchEngine(b *testing.B, syncAlways bool) *Engine {
	b.Helper()
	mgr := newManager(b, []host.PoolConfig{{Name: "M", Plugin: "misbehave", Workers: 2}})
	opts := testOptions(b.TempDir())
	opts.SyncAlways = syncAlways
	return startEngine(b, mgr, opts)
}

// Submit alone: the cost of accepting a task (a publish and a KV create),
// which the 202 waits for.
func BenchmarkEngine_Submit(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "default"
		if sync {
			name = "syncAlways"
		}
		b.Run(name, func(b *testing.B) {
			e := benchEngine(b, sync)
			ctx := context.Background()
			req := Request{Pool: "M", Input: []byte(`{"fault": "echo"}`)}
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Submit(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Submit, run on a worker and record: tasks per second end to end, with
// 64 submitted at a time.
func BenchmarkEngine_throughput(b *testing.B) {
	e := benchEngine(b, false)
	ctx := context.Background()
	req := Request{Pool: "M", Input: []byte(`{"fault": "echo"}`)}
	ids := make([]string, 0, 64)
	for b.Loop() {
		ids = ids[:0]
		for range 64 {
			t, err := e.Submit(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, t.ID)
		}
		for _, id := range ids {
			if t, err := e.Wait(ctx, id, 30*time.Second); err != nil || t.State != StateSucceeded {
				b.Fatalf("task %s: %+v %v", id, t, err)
			}
		}
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "tasks/s")
}
