package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/wpmdev/wpm/shared"
)

// maxDurationMs is the longest busy time a task may ask for: one hour.
const maxDurationMs = 3_600_000

// checkEvery is how many loop iterations run between two looks at the clock
// and the context: a few microseconds of work, so a canceled task stops
// almost at once while the checks cost next to nothing.
const checkEvery = 4096

// cpuLoad is the cpuload [shared.Task]. It has no state, so it is safe for
// concurrent use; each concurrent task keeps its own core busy.
type cpuLoad struct{}

var _ shared.Task = cpuLoad{}

// result is what a cpuload task answers.
type result struct {
	// RequestedMs is the duration the input asked for.
	RequestedMs int64 `json:"requestedMs"`
	// ElapsedMs is the wall time the busy loop actually ran.
	ElapsedMs float64 `json:"elapsedMs"`
	// PID is the worker process that did the work.
	PID int `json:"pid"`
	// Iterations is how many times the loop body ran.
	Iterations uint64 `json:"iterations"`
}

// Run keeps one core busy for the input's duration and reports what it did.
// It returns an error matching [shared.ErrInvalidInput] for bad input, and
// ctx's error, wrapped, if ctx ends before the time is up.
func (cpuLoad) Run(ctx context.Context, input []byte) ([]byte, error) {
	in, err := shared.ParseObject(input, "duration")
	if err != nil {
		return nil, err
	}
	ms, err := in.Int("duration", 0, maxDurationMs)
	if err != nil {
		return nil, err
	}
	iterations, elapsed, err := burn(ctx, time.Duration(ms)*time.Millisecond)
	if err != nil {
		return nil, err
	}
	return json.Marshal(result{
		RequestedMs: ms,
		ElapsedMs:   math.Round(float64(elapsed)/float64(time.Microsecond)) / 1000,
		PID:         os.Getpid(),
		Iterations:  iterations,
	})
}

// burn runs a busy loop of integer arithmetic on the calling goroutine until
// d has passed or ctx ends, and returns how many iterations it ran and for
// how long. It never sleeps or yields on purpose: the point is to use CPU.
func burn(ctx context.Context, d time.Duration) (iterations uint64, elapsed time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("cpuload: not started: %w", err)
	}
	msg := fmt.Sprintf("a busy loop of %d ms", d.Milliseconds())
	start := time.Now()
	x := uint64(start.UnixNano()) | 1 // a seed the compiler can not fold away
	for elapsed < d {
		for range checkEvery {
			// One step of a linear congruential generator (Knuth's MMIX constants).
			x = x*6364136223846793005 + 1442695040888963407
		}
		iterations += checkEvery
		elapsed = time.Since(start)
		shared.Progress(ctx, float64(elapsed)/float64(d), msg) // rate-limited by the SDK
		if err := ctx.Err(); err != nil {
			return iterations, elapsed, fmt.Errorf("cpuload: stopped after %d of %d ms: %w",
				elapsed.Milliseconds(), d.Milliseconds(), err)
		}
	}
	runtime.KeepAlive(x) // the arithmetic's result is used, so it is not optimized out
	return iterations, elapsed, nil
}
