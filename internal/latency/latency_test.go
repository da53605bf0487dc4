package latency

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHistogram_quantiles(t *testing.T) {
	var h Histogram
	assert.Zero(t, h.Quantile(0.5), "empty")
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	h.Record(-time.Second) // clamped to 0, not a panic
	within := func(got, want time.Duration) {
		t.Helper()
		assert.InEpsilon(t, float64(want), float64(got), 0.04, "got %s, want about %s", got, want)
	}
	within(h.Quantile(0.50), 500*time.Microsecond)
	within(h.Quantile(0.99), 990*time.Microsecond)
	within(h.Quantile(1), 1000*time.Microsecond)
}

func TestBuckets_roundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 1000, 1 << 20, 1<<40 + 12345} {
		i := bucketOf(v)
		assert.LessOrEqual(t, lowerBound(i), v, "v=%d", v)
		if i+1 < len(Histogram{}.counts) {
			assert.Greater(t, lowerBound(i+1), v, "v=%d", v)
		}
	}
}
