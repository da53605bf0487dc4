package host

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestState_transitionTable(t *testing.T) {
	legal := map[[2]State]bool{
		{StateStarting, StateIdle}:     true,
		{StateStarting, StateStopping}: true,
		{StateIdle, StateBusy}:         true,
		{StateIdle, StateStopping}:     true,
		{StateBusy, StateIdle}:         true,
		{StateBusy, StateStopping}:     true,
		{StateStopping, stateStopped}:  true,
	}
	all := []State{StateStarting, StateIdle, StateBusy, StateStopping, stateStopped}
	for _, from := range all {
		for _, to := range all {
			want := legal[[2]State{from, to}]
			assert.Equal(t, want, from.canBecome(to), "%s → %s", from, to)
			if want {
				assert.Equal(t, to, from.to(to))
			} else {
				assert.Panics(t, func() { from.to(to) }, "%s → %s must panic", from, to)
			}
		}
	}
}

func TestState_walkEveryPathEndsStopped(t *testing.T) {
	// From every state, following legal transitions always reaches stopped,
	// and stopped is terminal.
	for _, s := range []State{StateStarting, StateIdle, StateBusy, StateStopping} {
		seen := map[State]bool{}
		var walk func(State) bool
		walk = func(cur State) bool {
			if cur == stateStopped {
				return true
			}
			if seen[cur] {
				return true // a cycle (idle ⇄ busy) is fine as long as an exit exists
			}
			seen[cur] = true
			ok := false
			for _, next := range transitions[cur] {
				ok = walk(next) || ok
			}
			return ok
		}
		assert.True(t, walk(s), "no way from %s to stopped", s)
	}
	assert.Empty(t, transitions[stateStopped])
}

func TestState_names(t *testing.T) {
	assert.Equal(t, "starting", StateStarting.String())
	assert.Equal(t, "idle", StateIdle.String())
	assert.Equal(t, "busy", StateBusy.String())
	assert.Equal(t, "stopping", StateStopping.String())
	assert.Equal(t, "stopped", stateStopped.String())
	assert.Equal(t, "State(9)", State(9).String())
}
