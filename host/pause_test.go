package host_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// A paused pool refuses new tasks with pool_paused and says it is
// paused; resumed, it runs them again.
func TestManager_SetPaused(t *testing.T) {
	m := newManager(t, misbehavePool("P", 1))
	waitReady(t, m, "P")
	m.SetPaused("P", true)
	assert.True(t, m.Paused("P"))
	s, err := m.Pool("P")
	require.NoError(t, err)
	assert.True(t, s.Paused)
	assert.True(t, m.Pools()[0].Paused)

	_, err = m.Submit(context.Background(), "P", fault("echo"))
	require.ErrorIs(t, err, host.ErrPoolPaused)
	assert.Equal(t, host.CodePoolPaused, host.Code(err))
	assert.Contains(t, err.Error(), "resume")

	m.SetPaused("P", false)
	assert.False(t, m.Paused("P"))
	_, err = m.Submit(context.Background(), "P", fault("echo"))
	require.NoError(t, err)
}
