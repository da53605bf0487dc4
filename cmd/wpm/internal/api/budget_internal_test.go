package api

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The budget refuses what would go over its limit, and hands memory back
// (drained) once it empties after holding at least drainAfterBytes.
func TestBodyBudget(t *testing.T) {
	drains := make(chan struct{}, 4)
	b := &bodyBudget{limit: 3 * drainAfterBytes, drained: func() { drains <- struct{}{} }}
	require.True(t, b.take(drainAfterBytes))
	require.True(t, b.take(2*drainAfterBytes))
	assert.False(t, b.take(1), "over the limit")
	b.give(2 * drainAfterBytes)
	assert.Empty(t, drains, "not empty yet")
	b.give(drainAfterBytes)
	<-drains // empty after a large peak: drained

	require.True(t, b.take(10))
	b.give(10)
	assert.Zero(t, b.used.Load())
	select {
	case <-drains:
		t.Fatal("drained after holding only a little")
	default:
	}
}
