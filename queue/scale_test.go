package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// Two hosts on one queue, each with a pool of 0 to 2 workers: an idle
// queue starts no worker on either; a burst of tasks grows both pools (a
// runner's reservation is the host's demand signal), never beyond their
// max, and both go back to none once the queue is empty.
func TestEngine_twoHostsScaleOnTheSharedQueue(t *testing.T) {
	pools := []host.PoolConfig{{Name: "S", Plugin: "misbehave", MaxWorkers: 2, ScaleDownAfter: 300 * time.Millisecond, QueueLimit: 64}}
	opts, addr := listenOptions(t)
	opts.Name = "a"
	mgrA := newManager(t, pools)
	first := startEngine(t, mgrA, opts)

	cfg := host.DefaultConfig()
	cfg.PluginDir, cfg.Pools = pluginDir, pools
	mgrB, err := host.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { // the first manager's cleanup checks for leftover workers
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, mgrB.Shutdown(ctx))
	})
	// Stopped by its cleanup, before the server it uses.
	startEngine(t, mgrB, Options{URL: "nats://" + testToken + "@" + addr, Name: "b", AckWait: 2 * time.Second, PollInterval: 50 * time.Millisecond})

	targets := func() (a, b int) {
		sa, _ := mgrA.Pool("S")
		sb, _ := mgrB.Pool("S")
		return sa.Target, sb.Target
	}
	for until := time.Now().Add(300 * time.Millisecond); time.Now().Before(until); time.Sleep(20 * time.Millisecond) {
		a, b := targets()
		require.Equal(t, [2]int{0, 0}, [2]int{a, b}, "an idle queue starts no worker")
	}

	var ids []string
	for range 12 {
		ids = append(ids, submit(t, first, "S", `{"fault": "sleep", "ms": 250}`).ID)
	}
	var (
		mu   sync.Mutex
		most = map[string]int{}
	)
	watch, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for watch.Err() == nil {
			a, b := targets()
			mu.Lock()
			most["a"], most["b"] = max(most["a"], a), max(most["b"], b)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	})
	ran := map[string]int{}
	for _, id := range ids {
		task := waitFor(t, first, id, ended)
		require.Equal(t, StateSucceeded, task.State, "%+v", task)
		ran[task.Host]++
	}
	stop()
	wg.Wait()
	assert.Len(t, ran, 2, "both hosts took tasks: %v", ran)
	for _, name := range []string{"a", "b"} {
		assert.Equal(t, 2, most[name], "host %s grew its pool to its max, no further", name)
	}
	require.Eventually(t, func() bool { a, b := targets(); return a == 0 && b == 0 },
		10*time.Second, 20*time.Millisecond, "both pools went back to none")
}
