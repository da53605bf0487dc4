package events_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wpmdev/wpm/cmd/wpm/internal/events"
	"github.com/wpmdev/wpm/host"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func progress(task string, f float64) host.Event {
	return host.Event{Type: host.EventTaskProgress, TaskID: task, Fraction: f, Time: time.Unix(0, 0)}
}

// mustReceive reads n records from s.C, bounded.
func mustReceive(t *testing.T, s *events.Sub, n int) []events.Record {
	t.Helper()
	var out []events.Record
	timeout := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case r, ok := <-s.C:
			require.True(t, ok, "channel closed after %d records", len(out))
			out = append(out, r)
		case <-timeout:
			require.FailNow(t, "timed out", "got %d of %d records", len(out), n)
		}
	}
	return out
}

func TestBus_Publish_ordering(t *testing.T) {
	b := events.New(16, 64, events.WithFirstID(1))
	s := b.Subscribe(0, false, nil)
	defer s.Cancel()
	for i := range 10 {
		b.Publish(progress("t", float64(i)/10))
	}
	got := mustReceive(t, s, 10)
	for i, r := range got {
		assert.EqualValues(t, i+1, r.ID)
		require.NotNil(t, r.Fraction)
		assert.InDelta(t, float64(i)/10, *r.Fraction, 1e-9)
	}
}

func TestBus_Publish_slowConsumerDropped(t *testing.T) {
	b := events.New(16, 2, events.WithFirstID(1))
	slow := b.Subscribe(0, false, nil)
	fast := b.Subscribe(0, false, nil)
	defer fast.Cancel()
	for i := range 5 {
		// Publish never blocks, though slow reads nothing.
		b.Publish(progress("t", float64(i)/10))
		assert.EqualValues(t, i+1, mustReceive(t, fast, 1)[0].ID, "a slow consumer does not hold the others back")
	}
	n := 0
	for range slow.C { // closed after its buffer's worth
		n++
	}
	assert.Equal(t, 2, n)
	assert.True(t, slow.Dropped())
	assert.False(t, fast.Dropped())
	slow.Cancel() // harmless after a drop
}

func TestBus_Subscribe_resume(t *testing.T) {
	b := events.New(4, 8, events.WithFirstID(1))
	for i := range 6 {
		b.Publish(progress("t", float64(i)/10))
	}
	s := b.Subscribe(3, false, nil) // ids 1..6 published, 3..6 kept
	defer s.Cancel()
	assert.False(t, s.Gap)
	require.Len(t, s.Backlog, 3)
	assert.EqualValues(t, []uint64{4, 5, 6}, []uint64{s.Backlog[0].ID, s.Backlog[1].ID, s.Backlog[2].ID})
	b.Publish(progress("t", 1))
	assert.EqualValues(t, 7, mustReceive(t, s, 1)[0].ID)

	old := b.Subscribe(1, false, nil) // 2 is gone
	defer old.Cancel()
	assert.True(t, old.Gap)
	require.NotEmpty(t, old.Backlog)
	assert.EqualValues(t, 4, old.Backlog[0].ID)
}

func TestBus_Subscribe_filter(t *testing.T) {
	b := events.New(16, 8)
	b.Publish(progress("a", 0.1))
	b.Publish(progress("b", 0.2))
	only := func(r events.Record) bool { return r.TaskID == "b" }
	s := b.Subscribe(0, true, only)
	defer s.Cancel()
	require.Len(t, s.Backlog, 1)
	assert.Equal(t, "b", s.Backlog[0].TaskID)
	b.Publish(progress("a", 0.3))
	b.Publish(progress("b", 0.4))
	assert.Equal(t, "b", mustReceive(t, s, 1)[0].TaskID)
	assert.Len(t, b.Find(only), 2)
}

func TestBus_Close_endsSubscriptions(t *testing.T) {
	b := events.New(16, 8)
	s := b.Subscribe(0, false, nil)
	b.Close()
	_, ok := <-s.C
	assert.False(t, ok)
	assert.False(t, s.Dropped())
	late := b.Subscribe(0, false, nil)
	_, ok = <-late.C
	assert.False(t, ok)
}

// A fresh subscription to all kept events, without a Last-Event-ID, is
// not told of a gap however many events went before (task streams began
// with stream.gap once the ring had wrapped).
func TestBus_Subscribe_allWithoutGap(t *testing.T) {
	b := events.New(4, 8)
	for i := range 10 {
		b.Publish(progress("t", float64(i)/10))
	}
	s := b.Subscribe(0, true, nil)
	defer s.Cancel()
	assert.False(t, s.Gap)
	assert.Len(t, s.Backlog, 4)
}

// A Last-Event-ID after the bus's last id (from another run, or 2^64-1,
// whose next id overflowed to 0) is a gap with nothing replayed; the live
// events follow.
func TestBus_Subscribe_idNotGiven(t *testing.T) {
	b := events.New(16, 8, events.WithFirstID(1))
	for i := range 3 {
		b.Publish(progress("t", float64(i)/10))
	}
	for _, after := range []uint64{4, 1000, math.MaxUint64 - 1, math.MaxUint64} {
		s := b.Subscribe(after, false, nil)
		assert.True(t, s.Gap, "after %d", after)
		assert.Empty(t, s.Backlog, "after %d", after)
		b.Publish(progress("t", 1))
		assert.Equal(t, "t", mustReceive(t, s, 1)[0].TaskID)
		s.Cancel()
	}
}

// A bus made later (a restarted process) numbers its events above the
// ids an earlier one gave: resuming there from an earlier id is a gap,
// and the new run's kept events follow.
func TestBus_Subscribe_afterRestart(t *testing.T) {
	before := events.New(16, 8)
	before.Publish(progress("t", 0))
	last := before.Find(nil)[0].ID
	// Ids start from the clock in microseconds: let it pass the last one.
	require.Eventually(t, func() bool { return uint64(time.Now().UnixMicro()) > last }, time.Second, time.Microsecond)
	after := events.New(16, 8)
	after.Publish(progress("t", 0.5))
	s := after.Subscribe(last, false, nil)
	defer s.Cancel()
	assert.True(t, s.Gap)
	require.Len(t, s.Backlog, 1)
	assert.Greater(t, s.Backlog[0].ID, last)
}
