package host_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// A high task submitted after eight low ones, on a one-worker pool busy
// with another, runs before them.
func TestManager_Submit_priorityOvertakes(t *testing.T) {
	m := newManager(t, misbehavePool("P", 1))
	waitReady(t, m, "P")
	var mu sync.Mutex
	var done []string
	var wg sync.WaitGroup
	submit := func(name string, p host.TaskPriority, ms int) {
		wg.Go(func() {
			_, err := m.Submit(context.Background(), "P", fault("sleep", "ms", ms), host.Priority(p))
			assert.NoError(t, err, name)
			mu.Lock()
			done = append(done, name)
			mu.Unlock()
		})
	}
	submit("busy", host.PriorityNormal, 400)
	require.Eventually(t, func() bool { s, _ := m.Pool("P"); return s.Running == 1 }, 5*time.Second, time.Millisecond)
	for i := range 8 {
		submit("low"+itoa(i), host.PriorityLow, 30)
		require.Eventually(t, func() bool { s, _ := m.Pool("P"); return s.QueueDepth == i+1 }, 5*time.Second, time.Millisecond)
	}
	submit("high", host.PriorityHigh, 30)
	require.Eventually(t, func() bool { s, _ := m.Pool("P"); return s.QueueDepth == 9 }, 5*time.Second, time.Millisecond)
	wg.Wait()
	require.Len(t, done, 10)
	assert.Equal(t, []string{"busy", "high", "low0", "low1", "low2", "low3", "low4", "low5", "low6", "low7"}, done)
}

func TestParsePriority(t *testing.T) {
	for _, s := range []string{"", "normal"} {
		p, err := host.ParsePriority(s)
		require.NoError(t, err)
		assert.Equal(t, host.PriorityNormal, p)
	}
	p, err := host.ParsePriority("high")
	require.NoError(t, err)
	assert.Equal(t, host.PriorityHigh, p)
	_, err = host.ParsePriority("urgent")
	assert.ErrorContains(t, err, "high, normal, low")
}
