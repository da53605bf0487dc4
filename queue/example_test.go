package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// Durable tasks in any Go program: a pool of plugin workers, a queue on an
// embedded NATS server keeping its files in a directory, a task submitted
// and waited for. Run it again on the same directory and the queue's tasks
// and records are still there.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "wpm-queue-example-*")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	cfg := host.DefaultConfig()
	cfg.PluginDir = queue.PluginsForExamples() // your plugins directory
	cfg.Pools = []host.PoolConfig{{Name: "work", Plugin: "misbehave", Workers: 1}}
	mgr, err := host.New(cfg)
	if err != nil {
		panic(err)
	}
	defer func() { _ = mgr.Shutdown(ctx) }()

	q, err := queue.Start(ctx, mgr, queue.Options{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		panic(err)
	}
	defer func() { _ = q.Stop(ctx) }() // before the manager's Shutdown

	task, err := q.Submit(ctx, queue.Request{Pool: "work", Input: []byte(`{"fault": "sleep", "ms": 10}`),
		IdempotencyKey: "order-42"})
	if err != nil {
		panic(err)
	}
	fmt.Println(task.State)
	done, err := q.Wait(ctx, task.ID, 10*time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println(done.State, done.Attempts)
	// Output:
	// queued
	// succeeded 1
}
