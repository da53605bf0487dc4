package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/wpmdev/wpm/shared"
)

// Input bounds: 64 GiB and one hour.
const (
	maxMB         = 65_536
	maxDurationMs = 3_600_000
)

// touchCheckEvery is how many MiB are written between two looks at the
// context, so a canceled task does not first fault in gigabytes.
const touchCheckEvery = 64

// memUsage is the memusage [shared.Task]. It keeps no state between tasks,
// so it is safe for concurrent use: each task holds its own block.
type memUsage struct{}

var _ shared.Task = memUsage{}

// result is what a memusage task answers.
type result struct {
	// MB is how many MiB the task held.
	MB int64 `json:"mb"`
	// DurationMs is how long it held them.
	DurationMs int64 `json:"durationMs"`
	// PID is the worker process that held the memory.
	PID int `json:"pid"`
	// PeakRSSBytes is the process's peak resident size (VmHWM) once every
	// page was written. It is the peak since the process started, so on a
	// reused worker it may come from an earlier, larger task; 0 where
	// /proc/self/status does not exist.
	PeakRSSBytes uint64 `json:"peakRssBytes"`
	// RSSBytes is the process's resident size (VmRSS) at the same moment.
	RSSBytes uint64 `json:"rssBytes"`
}

// Run allocates the input's mb MiB, writes every page so it is resident,
// holds it for duration ms and releases it. It returns an error matching
// [shared.ErrInvalidInput] for bad input, and ctx's error, wrapped, if ctx
// ends first; the memory is released either way.
func (memUsage) Run(ctx context.Context, input []byte) ([]byte, error) {
	in, err := shared.ParseObject(input, "mb", "duration")
	if err != nil {
		return nil, err
	}
	mb, err := in.Int("mb", 0, maxMB)
	if err != nil {
		return nil, err
	}
	ms, err := in.OptionalInt("duration", 0, maxDurationMs, 0)
	if err != nil {
		return nil, err
	}
	if mb > math.MaxInt>>20 {
		return nil, fmt.Errorf("memusage: %d MiB do not fit in this platform's address space", mb)
	}
	defer debug.FreeOSMemory() // runs after hold's block is unreachable
	peak, rss, err := hold(ctx, int(mb), time.Duration(ms)*time.Millisecond)
	if err != nil {
		return nil, err
	}
	return json.Marshal(result{MB: mb, DurationMs: ms, PID: os.Getpid(), PeakRSSBytes: peak, RSSBytes: rss})
}

// hold allocates mb MiB, writes every page, measures the resident size and
// keeps the block reachable for d or until ctx ends. The block is garbage
// once hold returns.
func hold(ctx context.Context, mb int, d time.Duration) (peak, rss uint64, err error) {
	block := make([]byte, mb<<20)
	page := os.Getpagesize()
	for start := 0; start < len(block); start += touchCheckEvery << 20 {
		if err := ctx.Err(); err != nil {
			return 0, 0, fmt.Errorf("memusage: stopped while allocating %d MiB: %w", mb, err)
		}
		end := min(start+touchCheckEvery<<20, len(block))
		for i := start; i < end; i += page {
			block[i] = 1
		}
		// The first half of the progress is the pages touched.
		shared.Progress(ctx, 0.5*float64(end)/float64(len(block)), fmt.Sprintf("touched %d of %d MiB", end>>20, mb))
	}
	peak, rss = shared.ResidentMemory()
	err = wait(ctx, d, func(f float64) {
		shared.Progress(ctx, 0.5+0.5*f, fmt.Sprintf("holding %d MiB", mb))
	})
	if err != nil {
		err = fmt.Errorf("memusage: stopped after holding %d MiB for less than %d ms: %w", mb, d.Milliseconds(), err)
	}
	runtime.KeepAlive(block) // held until here
	return peak, rss, err
}

// wait waits for d or until ctx ends, calling progress with the share of
// d that passed every shared.ProgressInterval; it returns ctx's error if
// ctx ended first.
func wait(ctx context.Context, d time.Duration, progress func(float64)) error {
	start := time.Now()
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(shared.ProgressInterval)
	defer tick.Stop()
	for {
		select {
		case <-timer.C:
			progress(1)
			return nil
		case <-tick.C:
			progress(min(float64(time.Since(start))/float64(d), 1))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
