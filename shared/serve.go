package shared

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Serve serves impl as a wpm plugin and returns only when the host ends the
// process. It is all a plugin's main needs:
//
//	func main() { shared.Serve(myTask{}) }
func Serve(impl Task) {
	dieWithGroupOnTerm()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         PluginSet(impl),
		Logger:          Logger(),
	})
}

// Logger returns a logger for plugin code. It writes JSON lines to the
// process's standard error, which the host reads and re-levels into its own
// log tagged with the pool, plugin and pid.
func Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Level:      hclog.Info,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}
