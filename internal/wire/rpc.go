package wire

import (
	"context"
	"fmt"
	"net/rpc"
	"runtime/debug"
	"time"
)

// rpcMethod is the net/rpc name of [RPCServer.Run]. go-plugin registers the
// server under the name "Plugin".
const rpcMethod = "Plugin.Run"

// RunArgs is the request of one task over the wire.
type RunArgs struct {
	// Input is the task's JSON input.
	Input []byte
	// Timeout is how long the host will wait for the answer; zero means no
	// limit. The plugin runs the task under a context with this deadline.
	Timeout time.Duration
	// Progress and Call, when Progress is not 0, are the broker stream of
	// the host's progress callback server and the task's number there
	// (progress.go).
	Progress uint32
	Call     uint64
	// TraceParent, when not empty, is the W3C traceparent of the task's
	// attempt (trace.go); plugins built before it ignore it.
	TraceParent string
}

// RunReply is the answer of one task over the wire. The error travels as
// data: net/rpc would otherwise reduce it to a bare string.
type RunReply struct {
	Output []byte
	// Err is nil when the task succeeded.
	Err *Error
}

// RPCServer runs a [Task] for calls arriving over net/rpc. It is used on the
// plugin side.
type RPCServer struct {
	Impl     Task
	progress *progressPlugin // nil: no progress reports
}

// Run runs the task with args and puts its output or error into reply. A
// panic in the task is recovered into a [KindFailed] error, so the worker
// stays usable. Run always returns nil: a non-nil error means transport
// failure to the host.
func (s *RPCServer) Run(args RunArgs, reply *RunReply) error {
	ctx := context.Background()
	if args.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, args.Timeout)
		defer cancel()
	}
	ctx = WithTraceParent(ctx, args.TraceParent)
	ctx, flush := s.progress.withReporter(ctx, args)
	defer flush()
	out, err := s.run(ctx, args.Input)
	if err != nil {
		reply.Err = toWireError(err)
		return nil
	}
	reply.Output = out
	return nil
}

func (s *RPCServer) run(ctx context.Context, input []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Kind: KindFailed, Message: fmt.Sprintf("task panicked: %v\n%s", r, debug.Stack())}
		}
	}()
	return s.Impl.Run(ctx, input)
}

// RPCClient is the host side of a plugin's [Task]: it implements [Task] by
// calling the plugin process over net/rpc. It is safe for concurrent use.
type RPCClient struct {
	client   *rpc.Client
	progress *progressHost // nil: no progress reports
}

var _ Task = (*RPCClient)(nil)

// Run sends the task to the plugin and waits for its answer or for ctx to
// end. The time left before ctx's deadline travels with the task.
//
// Over net/rpc a call can not be canceled: when ctx ends first, Run returns
// ctx's error at once while the call goes on in the plugin, and the caller is
// expected to kill the worker. A broken connection is reported as an error
// matching [ErrTransport]; a task's own error as a [*Error].
func (c *RPCClient) Run(ctx context.Context, input []byte) ([]byte, error) {
	args := RunArgs{Input: input, TraceParent: TraceParent(ctx)}
	if deadline, ok := ctx.Deadline(); ok {
		args.Timeout = time.Until(deadline)
		if args.Timeout <= 0 {
			// ctx's timer may not have fired yet: wait for it, so that
			// ctx.Err() agrees with the answer.
			<-ctx.Done()
			return nil, fmt.Errorf("%w: %w", ErrNotSent, ctx.Err())
		}
	}
	var unregister func()
	args.Progress, args.Call, unregister = c.progress.register(ctx)
	defer unregister()
	reply := new(RunReply)
	call := c.client.Go(rpcMethod, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if call.Error != nil {
		return nil, fmt.Errorf("%w: %w", ErrTransport, call.Error)
	}
	if reply.Err != nil {
		return nil, reply.Err
	}
	return reply.Output, nil
}
