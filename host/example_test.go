package host_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wpmdev/wpm/host"
)

// Embedding wpm: a pool of two cpuload workers, one task, one one-shot,
// then shutdown. The plugins are the ones `make build` puts in bin/plugins.
func Example() {
	cfg := host.DefaultConfig()
	cfg.PluginDir = "bin/plugins"
	// Fields left at 0 take host.DefaultPoolConfig's values: tasks that
	// find both workers busy wait in a queue of up to 1024.
	cfg.Pools = []host.PoolConfig{{Name: "CPU", Plugin: "cpuload", Workers: 2, TaskTimeout: time.Minute}}
	m, err := host.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
	}()

	res, err := m.Submit(context.Background(), "CPU", []byte(`{"duration": 10}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("pool task ran on", res.Pool, "with", res.Plugin)

	once, err := m.RunOnce(context.Background(), "cpuload", []byte(`{"duration": 10}`), host.RunOptions{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("one-shot ran in a fresh process:", once.WorkerPID != res.WorkerPID)
	// Output:
	// pool task ran on CPU with cpuload
	// one-shot ran in a fresh process: true
}

// Errors carry their cause: match it with errors.Is, or turn it into an
// API code.
func ExampleCode() {
	cfg := host.DefaultConfig()
	cfg.PluginDir = "bin/plugins"
	m, err := host.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Shutdown(context.Background())

	_, err = m.Submit(context.Background(), "GPU", []byte(`{}`))
	fmt.Println(host.Code(err))
	_, err = m.RunOnce(context.Background(), "../../bin/sh", []byte(`{}`), host.RunOptions{})
	fmt.Println(host.Code(err))
	// Output:
	// unknown_pool
	// unknown_plugin
}

// A pool that sizes itself: no worker until the first task, at most four,
// and a worker idle for a minute is stopped again.
func ExamplePoolConfig_minWorkers() {
	cfg := host.DefaultConfig()
	cfg.PluginDir = "bin/plugins"
	cfg.Pools = []host.PoolConfig{{Name: "CPU", Plugin: "cpuload", MinWorkers: 0, MaxWorkers: 4, ScaleDownAfter: time.Minute}}
	m, err := host.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
	}()

	s, _ := m.Pool("CPU")
	fmt.Println("workers before the first task:", s.Target)
	if _, err := m.Submit(context.Background(), "CPU", []byte(`{"duration": 1}`)); err != nil {
		fmt.Println(err)
		return
	}
	s, _ = m.Pool("CPU")
	fmt.Println("after it:", s.Target, "of at most", s.Config.MaxWorkers)
	// Output:
	// workers before the first task: 0
	// after it: 1 of at most 4
}
