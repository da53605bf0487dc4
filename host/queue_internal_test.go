package host

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// order pops every task and returns their names.
func order(q *waitQueue[struct{}], names map[*waiter[struct{}]]string) []string {
	var out []string
	for q.len() > 0 {
		out = append(out, names[q.pop()])
	}
	return out
}

func TestWaitQueue_priorityThenFIFO(t *testing.T) {
	var q waitQueue[struct{}]
	names := map[*waiter[struct{}]]string{}
	for _, n := range []struct {
		name string
		rank int
	}{{"low1", lowRank}, {"norm1", normalRank}, {"low2", lowRank}, {"high1", highRank}, {"norm2", normalRank}, {"high2", highRank}} {
		names[q.push(0, n.rank)] = n.name
	}
	names[q.push(1, lowRank)] = "low0" // sent before: front of its priority
	assert.Equal(t, []string{"high1", "high2", "norm1", "norm2", "low0", "low1", "low2"}, order(&q, names))
}

func TestWaitQueue_antiStarvation(t *testing.T) {
	var q waitQueue[struct{}]
	names := map[*waiter[struct{}]]string{}
	names[q.push(0, lowRank)] = "low"
	for i := range MaxOvertakes + 3 {
		names[q.push(0, highRank)] = "high" + itoa(i)
	}
	got := order(&q, names)
	require.Len(t, got, MaxOvertakes+4)
	assert.Equal(t, "low", got[MaxOvertakes], "the low task goes after %d high ones: %v", MaxOvertakes, got)

	// A lower priority passed only while it waited: one that arrives
	// later is not owed a turn.
	names[q.push(0, highRank)] = "h"
	q.pop()
	for range MaxOvertakes {
		names[q.push(0, highRank)] = "h"
	}
	names[q.push(0, lowRank)] = "late"
	assert.Equal(t, "late", order(&q, names)[MaxOvertakes], "the late low task waits behind every high one queued before it")
}

func TestWaitQueue_removeAndOldest(t *testing.T) {
	var q waitQueue[struct{}]
	a := q.push(0, lowRank)
	b := q.push(0, highRank)
	assert.Equal(t, 2, q.len())
	assert.Positive(t, q.oldestWait())
	require.True(t, q.remove(a))
	require.False(t, q.remove(a))
	assert.Same(t, b, q.pop())
	assert.Zero(t, q.oldestWait())
}

func itoa(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }
