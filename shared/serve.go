package shared

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/wpmdev/wpm/internal/wire"
)

// processStderr is the process's own standard error, fd 2, as it was when
// the program started. go-plugin's Serve replaces os.Stderr with a pipe it
// forwards to the host as raw output, which the host can neither re-level
// nor keep for a crash report; the host reads fd 2 itself and does both.
// It is set once, at package initialisation, and never changed.
var processStderr = os.Stderr

// Serve serves impl as a wpm plugin and returns only when the host ends the
// process. It is all a plugin's main needs:
//
//	func main() { shared.Serve(myTask{}) }
func Serve(impl Task) {
	dieWithGroupOnTerm()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins:         wire.PluginSet(impl),
		Logger:          Logger(),
	})
}

// Logger returns a logger for plugin code. It writes JSON lines to the
// process's own standard error (not to os.Stderr, which [Serve] replaces
// with a pipe), so it may be made before Serve or during a task alike: the
// host reads the lines, logs each at its level tagged with the pool,
// plugin and pid, and keeps the last ones for the report of a crash.
func Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Level:      hclog.Info,
		Output:     processStderr,
		JSONFormat: true,
	})
}
