// Command logcrash is a test-only wpm plugin, never shipped: every task logs
// a warning and an error through [shared.Logger] and then exits the process
// with status 3, so tests can check that a plugin's structured log lines
// keep their level in the host's log and reach a crash's detail.
//
// The warning goes through a logger made before [shared.Serve], the error
// through one made during the task, after go-plugin swapped os.Stderr for
// its forwarding pipe.
package main

import (
	"context"
	"os"

	"github.com/wpmdev/wpm/shared"
)

// exitCode is the status the process exits with in the middle of a task.
const exitCode = 3

func main() {
	early := shared.Logger()
	shared.Serve(shared.TaskFunc(func(context.Context, []byte) ([]byte, error) {
		early.Warn("logcrash: disk nearly full", "freeMB", 12)
		shared.Logger().Error("logcrash: giving up", "step", "write")
		os.Exit(exitCode)
		return nil, nil
	}))
}
