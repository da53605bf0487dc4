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
	ctx := host.WithTaskEvents(context.Background(), func(e host.Event) { mine = append(mine, e) }) // one task: no concurrency
	res, err := m.Submit(ctx, "CPU", []byte(`{"duration": 300}`))
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
	progress := 0
	for _, e := range evs {
		assert.Equal(t, res.TaskID, e.TaskID)
		assert.Empty(t, e.Pool)
		assert.Equal(t, "memusage", e.Plugin)
		if e.Type == host.EventTaskProgress {
			progress++
		}
	}
	assert.Positive(t, progress)
}
