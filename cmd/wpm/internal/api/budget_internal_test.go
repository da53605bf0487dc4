package api

import (
	"bytes"
	"encoding/json"
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

// The seed endpoints' fields are read where they lie in the body: the
// decoder hands over slices of it, which within recognises.
func TestRawField_notCopied(t *testing.T) {
	body := []byte(`{"poolName": "CPU", "workerTask": {"pad": "xxxx"}}`)
	var fields map[string]rawField
	require.NoError(t, json.Unmarshal(body, &fields))
	assert.True(t, within(body, fields["workerTask"]))
	assert.True(t, within(body, fields["poolName"]))
	assert.False(t, within(body, bytes.Clone(fields["workerTask"])))
	assert.False(t, within(body, nil))
	assert.False(t, within(body[:10], fields["workerTask"]), "beyond the body's length")
}
