package host_test

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// eventLog collects a manager's events and hands them to a test that waits.
type eventLog struct {
	mu     sync.Mutex
	events []host.Event
	added  chan struct{}
}

func newEventLog() *eventLog { return &eventLog{added: make(chan struct{}, 1)} }

func (l *eventLog) add(e host.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

// waitFor waits (bounded) until match holds for some event, and returns
// the events so far.
func (l *eventLog) waitFor(t *testing.T, what string, match func(host.Event) bool) []host.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		evs := append([]host.Event(nil), l.events...)
		l.mu.Unlock()
		for _, e := range evs {
			if match(e) {
				return evs
			}
		}
		select {
		case <-l.added:
		case <-timeout:
			require.FailNow(t, "timed out waiting for "+what, "events: %v", evs)
		}
	}
}

func newManagerEvents(t *testing.T, l *eventLog, pools ...host.PoolConfig) *host.Manager {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.Pools = pools
	return newManagerWith(t, cfg, testLogger(t), host.WithEvents(l.add))
}

func TestManager_WithEvents_task(t *testing.T) {
	l := newEventLog()
	m := newManagerEvents(t, l, host.PoolConfig{Name: "CPU", Plugin: "cpuload", Workers: 1})
	var mine []host.Event
	listen := host.TaskEvents(func(e host.Event) { mine = append(mine, e) }) // one task: no concurrency
	res, err := m.Submit(context.Background(), "CPU", []byte(`{"duration": 300}`), listen)
	require.NoError(t, err)
	evs := l.waitFor(t, "task.finished", func(e host.Event) bool { return e.Type == host.EventTaskFinished })
	var got []host.Event
	for _, e := range evs {
		if e.TaskID == res.TaskID {
			got = append(got, e)
		}
	}
	assert.Equal(t, got, mine, "the caller sees the same events as the sink")
	require.GreaterOrEqual(t, len(got), 4, "%v", got)
	assert.Equal(t, host.EventTaskQueued, got[0].Type)
	assert.Equal(t, host.EventTaskStarted, got[1].Type)
	assert.Equal(t, res.WorkerPID, got[1].PID)
	last := got[len(got)-1]
	assert.Equal(t, host.EventTaskFinished, last.Type)
	assert.Equal(t, "ok", last.Code)
	assert.Equal(t, res.WorkerPID, last.PID)
	for _, e := range got[2 : len(got)-1] {
		assert.Equal(t, host.EventTaskProgress, e.Type)
		assert.Equal(t, "CPU", e.Pool)
		assert.Equal(t, "cpuload", e.Plugin)
	}
	assert.Equal(t, 1.0, got[len(got)-2].Fraction, "the last report reaches 1 before the answer")
}

func TestManager_WithEvents_workerReplaced(t *testing.T) {
	l := newEventLog()
	m := newManagerEvents(t, l, host.PoolConfig{Name: "CPU", Plugin: "cpuload", Workers: 1})
	pid := waitReady(t, m, "CPU").Workers[0].PID
	l.waitFor(t, "worker.started", func(e host.Event) bool { return e.Type == host.EventWorkerStarted && e.PID == pid })
	// The worker is a child of this test's manager.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	evs := l.waitFor(t, "a new worker", func(e host.Event) bool { return e.Type == host.EventWorkerStarted && e.PID != pid })
	var types []host.EventType
	for _, e := range evs {
		types = append(types, e.Type)
		if e.Type == host.EventWorkerExited {
			assert.Equal(t, pid, e.PID)
			assert.Equal(t, "exited", e.Reason)
		}
	}
	assert.Equal(t, []host.EventType{host.EventWorkerStarted, host.EventWorkerExited, host.EventWorkerReplaced, host.EventWorkerStarted}, types)
}

func TestManager_WithEvents_oneShot(t *testing.T) {
	l := newEventLog()
	m := newManagerEvents(t, l)
	res, err := m.RunOnce(context.Background(), "memusage", []byte(`{"mb": 8, "duration": 250}`), host.RunOptions{})
	require.NoError(t, err)
	evs := l.waitFor(t, "task.finished", func(e host.Event) bool { return e.Type == host.EventTaskFinished })
	evs = l.waitFor(t, "the one-shot's worker.exited", func(e host.Event) bool {
		return e.Type == host.EventWorkerExited && e.PID == res.WorkerPID
	})
	progress, started := 0, false
	for _, e := range evs {
		assert.Empty(t, e.Pool)
		assert.Equal(t, "memusage", e.Plugin)
		switch e.Type {
		case host.EventWorkerStarted:
			started = started || e.PID == res.WorkerPID
			assert.Empty(t, e.TaskID)
		case host.EventWorkerExited:
			assert.Empty(t, e.TaskID)
			assert.NotEmpty(t, e.Reason)
		case host.EventWorkerReplaced:
			t.Errorf("a one-shot's process is not replaced: %v", e)
		default:
			assert.Equal(t, res.TaskID, e.TaskID)
		}
		if e.Type == host.EventTaskProgress {
			progress++
		}
	}
	assert.Positive(t, progress)
	assert.True(t, started, "the one-shot's process reported its start")
}

// A task sent through a worker's pipeline (a pool with prefetch) reports
// its start as any other.
func TestManager_TaskEvents_pipelinedTaskStarts(t *testing.T) {
	m := newManager(t, host.PoolConfig{Name: "CPU", Plugin: "cpuload", Workers: 1, Prefetch: 4})
	waitReady(t, m, "CPU")
	var mu sync.Mutex
	var types []host.EventType
	listen := host.TaskEvents(func(e host.Event) {
		mu.Lock()
		types = append(types, e.Type)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for range 4 { // more than the worker runs at once: some are pipelined
		wg.Go(func() {
			_, err := m.Submit(context.Background(), "CPU", []byte(`{"duration": 20}`), listen)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 4, count(types, host.EventTaskStarted), "%v", types)
	assert.Equal(t, 4, count(types, host.EventTaskFinished), "%v", types)
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// A caller's task id names the task in its result and its events.
func TestManager_TaskID(t *testing.T) {
	l := newEventLog()
	m := newManagerEvents(t, l, host.PoolConfig{Name: "CPU", Plugin: "cpuload", Workers: 1})
	res, err := m.Submit(context.Background(), "CPU", []byte(`{"duration": 0}`), host.TaskID("my-task-1"))
	require.NoError(t, err)
	assert.Equal(t, "my-task-1", res.TaskID)
	evs := l.waitFor(t, "task.finished", func(e host.Event) bool { return e.Type == host.EventTaskFinished })
	for _, e := range evs {
		if e.Type == host.EventTaskQueued || e.Type == host.EventTaskFinished {
			assert.Equal(t, "my-task-1", e.TaskID)
		}
	}
	_, err = m.Submit(context.Background(), "nope", nil, host.TaskID("my-task-2"))
	var te *host.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "my-task-2", te.TaskID)
}

// A reload reports itself, and a pool it adds reports its workers.
func TestManager_WithEvents_reload(t *testing.T) {
	l := newEventLog()
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{{Name: "CPU", Plugin: "cpuload", Workers: 1}}
	m := newManagerWith(t, cfg, testLogger(t), host.WithEvents(l.add))
	cfg.Pools = append(cfg.Pools, host.PoolConfig{Name: "MEM", Plugin: "memusage", Workers: 1})
	require.NoError(t, m.Reload(cfg))
	evs := l.waitFor(t, "MEM's worker.started", func(e host.Event) bool {
		return e.Type == host.EventWorkerStarted && e.Pool == "MEM"
	})
	var reloads []host.Event
	for _, e := range evs {
		if e.Type == host.EventPoolReloaded {
			reloads = append(reloads, e)
		}
	}
	require.Len(t, reloads, 1)
	assert.Equal(t, "2 pools: 1 added, 0 removed, 1 kept", reloads[0].Message)
}
