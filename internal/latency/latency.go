// Package latency measures latency distributions for wpm's benchmarks
// without allocating on the measured path.
package latency

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts durations in log-linear buckets, 32 per power of two
// (about 3 % wide), without allocating; it is safe for concurrent use.
type Histogram struct {
	counts [64 + 58*32]atomic.Uint64
}

// Record counts one duration.
func (h *Histogram) Record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))].Add(1)
}

func bucketOf(v uint64) int {
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 6 // v>>e is in [32, 64)
	return 64 + (e-1)*32 + int(v>>e) - 32
}

// lowerBound is the smallest value in bucket i.
func lowerBound(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	e := (i-64)/32 + 1
	return uint64(32+(i-64)%32) << e
}

// Quantile returns the q-quantile (0 < q ≤ 1) as its bucket's midpoint.
func (h *Histogram) Quantile(q float64) time.Duration {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	want := max(uint64(q*float64(total)+0.5), 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= want {
			return time.Duration((lowerBound(i) + lowerBound(i+1)) / 2)
		}
	}
	return 0
}
