package host

import "fmt"

// State is where a worker is in its life. Its String form is used in the
// API and in logs.
type State uint8

// The states of a worker. A worker only moves along the transitions in
// the table below (canBecome); anything else is a bug and panics.
const (
	// StateStarting: the process is being started and handshaken.
	StateStarting State = iota
	// StateIdle: ready, running no task.
	StateIdle
	// StateBusy: running at least one task.
	StateBusy
	// StateStopping: taking no new tasks; being recycled, killed or shut
	// down, or gone while its slot starts the next one.
	StateStopping
	// stateStopped: the process is gone. Snapshots show it as stopping.
	stateStopped
)

var stateNames = [...]string{"starting", "idle", "busy", "stopping", "stopped"}

// String returns the state's name, as used in JSON and logs.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// MarshalText encodes the state as its name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// transitions is the one table of legal state changes.
var transitions = map[State][]State{
	StateStarting: {StateIdle, StateStopping},
	StateIdle:     {StateBusy, StateStopping},
	StateBusy:     {StateIdle, StateStopping},
	StateStopping: {stateStopped},
	stateStopped:  {},
}

// canBecome reports whether a worker in state s may move to next.
func (s State) canBecome(next State) bool {
	for _, t := range transitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// to returns next if s may become next, and panics otherwise: an illegal
// transition is a bug in this package, never a runtime condition.
func (s State) to(next State) State {
	if !s.canBecome(next) {
		panic(fmt.Sprintf("host: illegal worker state transition %s → %s", s, next))
	}
	return next
}
