package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/wpmdev/wpm/internal/taskpb"
	"github.com/wpmdev/wpm/internal/wire"
	"github.com/wpmdev/wpm/shared"
)

// Plugins in languages other than Go speak go-plugin's gRPC protocol and
// serve wpm's task service (proto/wpm/task/v1/task.proto). Such a worker is
// the same process as a Go one (process.go): the same runner, memory
// limit, watchdog, kills and crash reports; only the task's call differs,
// behind the process's shared.Task: grpcTask here. It does not pipeline.

// taskPlugin is the host's go-plugin plugin of a wpm task: over net/rpc
// wire's client, over gRPC wpm's own grpcTask.
type taskPlugin struct {
	wire.TaskPlugin
}

var _ plugin.GRPCPlugin = (*taskPlugin)(nil)

// hostPluginSet is the plugin set the host dispenses from.
func hostPluginSet() plugin.PluginSet {
	return plugin.PluginSet{wire.PluginName: &taskPlugin{}}
}

// GRPCServer is never called: the host serves no task.
func (*taskPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the wpm host serves no task over gRPC")
}

// GRPCClient returns the task of the plugin process at the other end of c.
func (*taskPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcTask{client: taskpb.NewTaskClient(c)}, nil
}

// connectGRPC connects to the gRPC process at addr, dispenses its task and
// asks its Info, within timeout. wpm dials the process itself, as it does a
// net/rpc one (process.dial), and uses neither go-plugin's broker nor its
// stdio streams: a non-Go plugin's stderr is read from its pipe.
func (p *process) connectGRPC(ctx context.Context, addr net.Addr, timeout time.Duration) error {
	conn, err := grpc.Dial("passthrough:///"+addr.String(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, addr.Network(), addr.String())
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
	)
	if err != nil {
		return err
	}
	p.gconn = conn
	raw, err := (&taskPlugin{}).GRPCClient(ctx, nil, conn)
	if err != nil {
		return fmt.Errorf("dispense: %w", err)
	}
	task := raw.(*grpcTask)
	p.task = task
	if timeout <= 0 {
		timeout = time.Minute
	}
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := task.client.Info(ictx, &taskpb.InfoRequest{}, grpc.WaitForReady(true))
	switch {
	case status.Code(err) == grpccodes.Unimplemented:
		// No Info: no limit of the plugin's own.
	case err != nil:
		return fmt.Errorf("info: %w", err)
	default:
		p.maxTasks = max(int(info.GetConcurrency()), 0)
	}
	return nil
}

// pingGRPC asks the process's gRPC health service, as go-plugin's
// GRPCClient.Ping does.
func (p *process) pingGRPC(ctx context.Context) error {
	_, err := grpc_health_v1.NewHealthClient(p.gconn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err
}

// grpcTask is the host side of a gRPC plugin's task: a shared.Task whose
// errors mean what those of wire's net/rpc client mean, so that call
// sorts them out the same way: a task's own error is a *wire.Error,
// a broken connection matches wire.ErrTransport, a task not sent
// because its deadline had passed matches wire.ErrNotSent, and when ctx
// ends first its error comes back (the caller kills the worker).
type grpcTask struct {
	client *taskpb.TaskClient
}

var _ shared.Task = (*grpcTask)(nil)

// Run runs one task, passing its progress events to the task's tracker.
func (t *grpcTask) Run(ctx context.Context, input []byte) ([]byte, error) {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= 0 {
		<-ctx.Done()
		return nil, fmt.Errorf("%w: %w", wire.ErrNotSent, ctx.Err())
	}
	id, _ := ctx.Value(taskIDKey{}).(string)
	if tp := wire.TraceParent(ctx); tp != "" {
		// gRPC's own place for a trace context: OpenTelemetry's gRPC
		// instrumentation in the plugin continues it.
		ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", tp)
	}
	stream, err := t.client.Run(ctx, &taskpb.RunRequest{Input: input, TaskId: id})
	if err != nil {
		return nil, grpcError(ctx, err)
	}
	tr, _ := ctx.Value(trackerKey{}).(*tracker)
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: the plugin ended the task's stream without an answer", wire.ErrTransport)
		}
		if err != nil {
			return nil, grpcError(ctx, err)
		}
		switch e := ev.GetEvent().(type) {
		case *taskpb.RunEvent_Progress:
			if tr != nil {
				tr.progress(e.Progress.GetFraction(), e.Progress.GetMessage())
			}
		case *taskpb.RunEvent_Output:
			return e.Output, nil
		case *taskpb.RunEvent_Error:
			kind := wire.KindFailed
			if e.Error.GetKind() == taskpb.Error_INVALID_INPUT {
				kind = wire.KindInvalidInput
			}
			return nil, &wire.Error{Kind: kind, Message: e.Error.GetMessage()}
		}
		// An event of a newer protocol: skipped.
	}
}

// grpcError sorts a failed call out: ctx's own end; an error the plugin
// answered with a status of its own (a handler that raised, a method it
// does not have), which is the task's failure and leaves the worker
// usable; anything else is a broken transport.
func grpcError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch status.Code(err) {
	case grpccodes.DeadlineExceeded:
		// The plugin or the transport saw the deadline a moment before
		// ctx's timer fired: wait for it, so the answer is the timeout.
		if _, ok := ctx.Deadline(); ok {
			<-ctx.Done()
			return ctx.Err()
		}
	case grpccodes.Unknown, grpccodes.Unimplemented, grpccodes.InvalidArgument, grpccodes.FailedPrecondition, grpccodes.OutOfRange, grpccodes.Aborted:
		kind := wire.KindFailed
		if status.Code(err) == grpccodes.InvalidArgument {
			kind = wire.KindInvalidInput
		}
		return &wire.Error{Kind: kind, Message: "the plugin answered: " + status.Convert(err).Message()}
	}
	return fmt.Errorf("%w: %w", wire.ErrTransport, err)
}
