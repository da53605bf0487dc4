package wire

import "github.com/hashicorp/go-plugin"

// PluginName is the name under which a wpm plugin serves its [Task].
const PluginName = "task"

// Handshake is the go-plugin handshake both sides must agree on. A binary
// that was not built with shared.Serve refuses to start without it, so a stray
// executable in the plugins directory is never mistaken for a worker.
// The cookie's name has no "WPM_" prefix, so it can never be read as a wpm
// setting from the environment.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "WPMPLUGIN_HANDSHAKE",
	MagicCookieValue: "wpm-task-v1-7f3c1b2e",
}

// PluginSet returns the go-plugin plugin set that serves or dispenses impl.
// The host passes a nil impl.
func PluginSet(impl Task) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &TaskPlugin{Impl: impl}}
}
