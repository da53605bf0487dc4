package queue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetries_Delay(t *testing.T) {
	r := Retries{Max: 5, Backoff: 100 * time.Millisecond, MaxBackoff: 350 * time.Millisecond}
	assert.Equal(t, 100*time.Millisecond, r.Delay(1))
	assert.Equal(t, 200*time.Millisecond, r.Delay(2))
	assert.Equal(t, 350*time.Millisecond, r.Delay(3))
	assert.Equal(t, time.Second, Retries{}.Delay(1))
	assert.Equal(t, 30*time.Second, Retries{}.Delay(10))
}

func TestRetries_Validate(t *testing.T) {
	require.NoError(t, Retries{Max: 2}.Validate("pools[0].retries."))
	err := Retries{Max: -1, Backoff: -time.Second, MaxBackoff: -time.Second}.Validate("pools[0].retries.")
	require.Error(t, err)
	for _, key := range []string{"pools[0].retries.max", "pools[0].retries.backoff", "pools[0].retries.maxBackoff"} {
		assert.Contains(t, err.Error(), key)
	}
}

// SetRetries replaces the policies: a pool it no longer names never
// retries.
func TestEngine_SetRetries(t *testing.T) {
	e := &Engine{retries: map[string]Retries{"A": {Max: 1}}}
	assert.Equal(t, 1, e.retriesOf("A").Max)
	e.SetRetries(map[string]Retries{"B": {Max: 2}})
	assert.Zero(t, e.retriesOf("A").Max)
	assert.Equal(t, 2, e.retriesOf("B").Max)
}
