package wire

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func collect(sent *[]ProgressArgs) func(ProgressArgs) {
	return func(a ProgressArgs) { *sent = append(*sent, a) }
}

func TestReporter_rateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var sent []ProgressArgs
	r := newReporter(collect(&sent), clock.now, ProgressInterval)
	for i := range 1000 { // a tight loop: one report gets through
		r.report(float64(i)/10000, "busy")
	}
	assert.Len(t, sent, 1, "the first report goes, the rest within the interval are dropped")
	clock.add(ProgressInterval - time.Millisecond)
	r.report(0.2, "busy")
	assert.Len(t, sent, 1)
	clock.add(time.Millisecond)
	r.report(0.3, "busy")
	assert.Len(t, sent, 2, "one report per interval")
	r.report(1, "done")
	assert.Len(t, sent, 3, "the first report that reaches 1 always goes")
	r.report(1, "done again")
	assert.Len(t, sent, 3)
	for i, a := range sent {
		assert.EqualValues(t, i+1, a.Seq, "reports are numbered in order")
	}
	assert.InDelta(t, 0.3, sent[1].Fraction, 1e-9)
}

func TestProgress_clampsAndClips(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var sent []ProgressArgs
	ctx := context.WithValue(context.Background(), reporterKey{}, newReporter(collect(&sent), clock.now, ProgressInterval))
	Report(ctx, -3, strings.Repeat("é", MaxProgressMessage))
	clock.add(ProgressInterval)
	Report(ctx, 7, "")
	Report(context.Background(), 0.5, "outside a task: nothing") // no reporter, no panic
	if assert.Len(t, sent, 2) {
		assert.Zero(t, sent[0].Fraction)
		assert.LessOrEqual(t, len(sent[0].Message), MaxProgressMessage)
		assert.True(t, strings.HasPrefix(sent[0].Message, "é"))
		assert.Equal(t, 1.0, sent[1].Fraction)
	}
}
