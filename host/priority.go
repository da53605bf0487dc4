package host

import (
	"fmt"
	"strings"
)

// TaskPriority is how soon a waiting task gets a place, before or after
// the others waiting: high, normal or low (the zero value means normal).
type TaskPriority string

// A task's priorities, highest first.
const (
	PriorityHigh   TaskPriority = "high"
	PriorityNormal TaskPriority = "normal"
	PriorityLow    TaskPriority = "low"
)

// Priorities lists every priority, highest first.
var Priorities = []TaskPriority{PriorityHigh, PriorityNormal, PriorityLow}

// MaxOvertakes is how many tasks of higher priorities may start, one after
// another, while a task of a lower priority waits: the next start is then
// the oldest task of the lowest priority that has waited that long, so a
// low task never starves, it only waits longer (at most MaxOvertakes starts
// per priority above it).
const MaxOvertakes = 10

// ParsePriority reads a priority by its name; "" is normal.
func ParsePriority(s string) (TaskPriority, error) {
	switch p := TaskPriority(s); p {
	case "":
		return PriorityNormal, nil
	case PriorityHigh, PriorityNormal, PriorityLow:
		return p, nil
	}
	return "", fmt.Errorf("priority must be one of high, normal, low, got %q", s)
}

// Rank is the priority's place in Priorities: 0 for high, 1 for normal
// (and any other value), 2 for low.
func (p TaskPriority) Rank() int {
	switch TaskPriority(strings.ToLower(string(p))) {
	case PriorityHigh:
		return 0
	case PriorityLow:
		return 2
	}
	return 1
}

// Priority gives the task a priority in its pool's queue (or the
// one-shots'): waiting tasks get places high first, FIFO within a
// priority, and a lower one waits at most MaxOvertakes starts per
// priority above it. The default is normal.
func Priority(p TaskPriority) TaskOption { return func(o *taskOptions) { o.prio = p.Rank() } }
