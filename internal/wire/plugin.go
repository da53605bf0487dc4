package wire

import (
	"net/rpc"

	"github.com/hashicorp/go-plugin"
)

// TaskPlugin is the go-plugin [plugin.Plugin] for a [Task] over net/rpc.
// Impl is set on the plugin side and nil on the host side.
type TaskPlugin struct {
	Impl Task
}

var _ plugin.Plugin = (*TaskPlugin)(nil)

// Server returns the RPC server that runs Impl: an [RPCServer] that also
// speaks the pipelining methods (pipeline.go).
func (p *TaskPlugin) Server(b *plugin.MuxBroker) (any, error) {
	return newPipelineServer(p.Impl, b), nil
}

// Client returns the host-side [Task] that calls the plugin over c: a
// [*PipelineClient], whose Run works with every plugin and whose
// OpenPipeline with those built since pipelining.
func (p *TaskPlugin) Client(b *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return &PipelineClient{RPCClient: &RPCClient{client: c, progress: newProgressHost(b)}}, nil
}
