// Package wire is the protocol between the wpm host and its Go plugins:
// what travels between the two processes and the code on each end of it.
// The plugin SDK (package shared) and the host both import it; plugin
// authors never do.
//
// It holds go-plugin's handshake and plugin set ([Handshake], [PluginSet],
// [TaskPlugin]), the net/rpc pair that runs one task ([RPCServer] on the
// plugin side, [RPCClient] on the host side, [RunArgs]/[RunReply]), task
// errors as data ([Error], [ErrorKind]) with the sentinels they match,
// progress reports (the plugin's reporter, the host's callback server,
// [ProgressArgs]) and pipelining ([PipelineClient], [Pipeline], the
// plugin's gate and the frames of its own connection).
//
// This package imports nothing else of wpm's.
package wire
