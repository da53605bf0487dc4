//go:build unix

package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// userCPUTime returns the user CPU time this process has used so far.
func userCPUTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano())
}

// A busy loop uses CPU time; a sleep of the same length would not. On a
// crowded machine (load 3× the cores) the loop got a third of its wall time, so the
// bound is well under the duration and a run gets up to three tries.
func TestCPULoad_Run_burnsCPU(t *testing.T) {
	const tries = 3
	var used time.Duration
	for range tries {
		before := userCPUTime(t)
		r := mustRun(t, context.Background(), `{"duration": 50}`)
		used = userCPUTime(t) - before
		assert.EqualValues(t, 50, r.RequestedMs)
		assert.GreaterOrEqual(t, r.ElapsedMs, 50.0)
		assert.Positive(t, r.Iterations)
		if used >= 10*time.Millisecond {
			return
		}
	}
	t.Errorf("user CPU time grew by %v in a 50 ms busy loop, want at least 10ms (%d tries)", used, tries)
}
