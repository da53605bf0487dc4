package taskpb

import (
	"context"

	"google.golang.org/grpc"
)

// The full method names of the Task service (proto/wpm/task/v1/task.proto).
const (
	RunMethod  = "/wpm.task.v1.Task/Run"
	InfoMethod = "/wpm.task.v1.Task/Info"
)

// runStream describes Run: one request, a stream of events.
var runStream = grpc.StreamDesc{StreamName: "Run", ServerStreams: true}

// TaskClient is the host's client of the Task service, written by hand
// over a *grpc.ClientConn so that wpm needs no generated service code.
type TaskClient struct {
	conn grpc.ClientConnInterface
}

// NewTaskClient returns a client of the Task service on conn.
func NewTaskClient(conn grpc.ClientConnInterface) *TaskClient {
	return &TaskClient{conn: conn}
}

// Run starts one task and returns the stream of its events; read them
// with Recv until the end event or an error.
func (c *TaskClient) Run(ctx context.Context, in *RunRequest, opts ...grpc.CallOption) (*RunStream, error) {
	s, err := c.conn.NewStream(ctx, &runStream, RunMethod, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(in); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	return &RunStream{s: s}, nil
}

// RunStream is the stream of one task's events.
type RunStream struct {
	s grpc.ClientStream
}

// Recv reads the next event; io.EOF once the plugin closed the stream.
func (r *RunStream) Recv() (*RunEvent, error) {
	ev := new(RunEvent)
	if err := r.s.RecvMsg(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// Info asks the plugin process what it takes.
func (c *TaskClient) Info(ctx context.Context, in *InfoRequest, opts ...grpc.CallOption) (*InfoResponse, error) {
	out := new(InfoResponse)
	if err := c.conn.Invoke(ctx, InfoMethod, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
