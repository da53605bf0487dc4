package host

import (
	"slices"
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
	// From every state some path of legal transitions reaches stopped (a
	// cycle such as idle ⇄ busy is fine as long as it has an exit), and
	// stopped is terminal.
	assert.Empty(t, statesWithoutExit(transitions, stateStopped), "states from which stopped can not be reached")
	assert.Empty(t, transitions[stateStopped])
}

func TestState_statesWithoutExit(t *testing.T) {
	// The checker itself: a cycle with no way out is found, though every
	// state of it has a transition and starting has a way out.
	bad := map[State][]State{
		StateStarting: {StateIdle, StateStopping},
		StateIdle:     {StateBusy},
		StateBusy:     {StateIdle},
		StateStopping: {stateStopped},
		stateStopped:  {},
	}
	assert.ElementsMatch(t, []State{StateIdle, StateBusy}, statesWithoutExit(bad, stateStopped))

	// A state only named as a target, with no row, is a dead end too.
	assert.Equal(t, []State{StateBusy}, statesWithoutExit(map[State][]State{StateIdle: {StateBusy, stateStopped}}, stateStopped))
}

// statesWithoutExit returns the states of table (those with a row and
// those named as a target) from which no path of transitions reaches end,
// in ascending order. It walks the table backwards from end: a state
// reaches end exactly when end reaches it against the arrows, so a cycle
// with no exit can not hide behind a visited mark.
func statesWithoutExit(table map[State][]State, end State) []State {
	into := map[State][]State{} // into[s]: the states with a transition to s
	all := map[State]bool{end: true}
	for from, tos := range table {
		all[from] = true
		for _, to := range tos {
			all[to] = true
			into[to] = append(into[to], from)
		}
	}
	reaches := map[State]bool{end: true}
	for queue := []State{end}; len(queue) > 0; queue = queue[1:] {
		for _, from := range into[queue[0]] {
			if !reaches[from] {
				reaches[from] = true
				queue = append(queue, from)
			}
		}
	}
	var out []State
	for s := range all {
		if !reaches[s] {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func TestState_names(t *testing.T) {
	assert.Equal(t, "starting", StateStarting.String())
	assert.Equal(t, "idle", StateIdle.String())
	assert.Equal(t, "busy", StateBusy.String())
	assert.Equal(t, "stopping", StateStopping.String())
	assert.Equal(t, "stopped", stateStopped.String())
	assert.Equal(t, "State(9)", State(9).String())
}
