package host

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The causes' names are wire text: events, metrics labels, the API's
// lastExit and tests elsewhere depend on them.
func TestCause_String(t *testing.T) {
	want := map[Cause]string{
		causeNone:        "",
		CauseStopped:     "stopped",
		CauseCrashed:     "exited",
		CauseOutOfMemory: "memory_limit_exceeded",
		CauseTimeout:     "task_timeout",
		CauseCanceled:    "canceled",
		CauseShutdown:    "shutting_down",
		CauseRecycled:    "recycled",
		CauseStartFailed: "start_failed",
		CauseUnhealthy:   "unhealthy",
		CauseScaledDown:  "scaled_down",
		CauseScaledUp:    "scaled_up",
	}
	for c, name := range want {
		assert.Equal(t, name, c.String(), "Cause(%d)", c)
	}
	assert.Len(t, causeNames, len(want), "every cause has its name here")
	assert.Equal(t, "Cause(200)", Cause(200).String())
}

// A cause that an error stands for is named as that error's code (but a
// crash, whose name "exited" predates the codes).
func TestCause_ofErrorIsItsCode(t *testing.T) {
	for _, err := range []error{ErrMemoryLimit, ErrTimeout, ErrShuttingDown, context.Canceled} {
		assert.Equal(t, string(Code(err)), causeOf(err).String(), "%v", err)
	}
}
