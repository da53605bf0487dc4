package wire_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wpmdev/wpm/internal/wire"
	"github.com/wpmdev/wpm/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTask answers according to its input, so one plugin covers every case.
var testTask = shared.TaskFunc(func(ctx context.Context, input []byte) ([]byte, error) {
	switch {
	case bytes.Equal(input, []byte(`"invalid"`)):
		return nil, shared.InvalidInput("field %q must be a number", "duration")
	case bytes.Equal(input, []byte(`"wrapped-invalid"`)):
		return nil, fmt.Errorf("parse: %w", shared.ErrInvalidInput)
	case bytes.Equal(input, []byte(`"fail"`)):
		return nil, errors.New("disk full")
	case bytes.Equal(input, []byte(`"panic"`)):
		panic("boom")
	case bytes.Equal(input, []byte(`"deadline"`)):
		deadline, ok := ctx.Deadline()
		if !ok {
			return []byte(`"no deadline"`), nil
		}
		<-ctx.Done()
		return []byte(fmt.Sprintf(`"stopped %dms before the host's deadline"`, time.Until(deadline).Milliseconds())), nil
	}
	return input, nil // echo
})

func dispense(t *testing.T) wire.Task {
	t.Helper()
	return dispenseTask(t, testTask)
}

func dispenseTask(t *testing.T, impl shared.Task) wire.Task {
	t.Helper()
	client, _ := plugin.TestPluginRPCConn(t, wire.PluginSet(impl), nil)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(wire.PluginName)
	require.NoError(t, err)
	task, ok := raw.(wire.Task)
	require.True(t, ok, "dispensed %T, want wire.Task", raw)
	return task
}

func TestRPC_ok(t *testing.T) {
	task := dispense(t)
	out, err := task.Run(context.Background(), []byte(`{"duration":5}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"duration":5}`, string(out))
}

func TestRPC_invalidInput(t *testing.T) {
	task := dispense(t)
	for _, in := range []string{`"invalid"`, `"wrapped-invalid"`} {
		_, err := task.Run(context.Background(), []byte(in))
		require.Error(t, err, in)
		assert.ErrorIs(t, err, shared.ErrInvalidInput, in)
		assert.NotErrorIs(t, err, shared.ErrTaskFailed, in)
		assert.NotErrorIs(t, err, wire.ErrTransport, in)
	}
	_, err := task.Run(context.Background(), []byte(`"invalid"`))
	assert.EqualError(t, err, `field "duration" must be a number`)
}

func TestRPC_otherError(t *testing.T) {
	task := dispense(t)
	_, err := task.Run(context.Background(), []byte(`"fail"`))
	require.Error(t, err)
	assert.ErrorIs(t, err, shared.ErrTaskFailed)
	assert.NotErrorIs(t, err, shared.ErrInvalidInput)
	assert.EqualError(t, err, "disk full")
}

func TestRPC_panicIsRecovered(t *testing.T) {
	task := dispense(t)
	_, err := task.Run(context.Background(), []byte(`"panic"`))
	require.Error(t, err)
	assert.ErrorIs(t, err, shared.ErrTaskFailed)
	assert.Contains(t, err.Error(), "task panicked: boom")

	// The server survived the panic and keeps answering.
	out, err := task.Run(context.Background(), []byte(`1`))
	require.NoError(t, err)
	assert.Equal(t, `1`, string(out))
}

func TestRPC_oneMiBPayload(t *testing.T) {
	task := dispense(t)
	in := append(append([]byte(`"`), bytes.Repeat([]byte("x"), 1<<20)...), '"')
	out, err := task.Run(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, len(in), len(out))
	assert.True(t, bytes.Equal(in, out), "payload changed on the way")
}

func TestRPC_deadlineTravelsToPlugin(t *testing.T) {
	task := dispense(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	out, err := task.Run(ctx, []byte(`"deadline"`))
	if err == nil {
		// The plugin's context ended no later than the host's.
		assert.Contains(t, string(out), "stopped")
		return
	}
	// The host's deadline won the race: that is a context error, not a transport one.
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRPC_noDeadlineMeansNone(t *testing.T) {
	task := dispense(t)
	out, err := task.Run(context.Background(), []byte(`"deadline"`))
	require.NoError(t, err)
	assert.Equal(t, `"no deadline"`, string(out))
}

func TestRPC_callerGivesUpOnHungTask(t *testing.T) {
	release, finished := make(chan struct{}), make(chan struct{})
	task := dispenseTask(t, shared.TaskFunc(func(_ context.Context, in []byte) ([]byte, error) {
		if string(in) == `"hang"` {
			defer close(finished)
			<-release // ignores its context, like a wedged task
		}
		return in, nil
	}))
	defer func() { close(release); <-finished }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := task.Run(ctx, []byte(`"hang"`))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Other calls on the same client keep working meanwhile.
	out, err := task.Run(context.Background(), []byte(`2`))
	require.NoError(t, err)
	assert.Equal(t, `2`, string(out))
}

func TestRPC_expiredContextIsNotSent(t *testing.T) {
	task := dispense(t)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := task.Run(ctx, []byte(`1`))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, wire.ErrNotSent)
}

// lateContext is a context whose deadline has passed but which is not done
// yet, as a real one is between its deadline and its timer firing.
type lateContext struct {
	context.Context
	deadline time.Time
}

func (c lateContext) Deadline() (time.Time, bool) { return c.deadline, true }

func TestRPC_justExpiredContextAnswersWithItsError(t *testing.T) {
	task := dispense(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	late := lateContext{Context: ctx, deadline: time.Now().Add(-time.Millisecond)}
	_, err := task.Run(late, []byte(`1`))
	require.ErrorIs(t, err, wire.ErrNotSent)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Error(t, ctx.Err(), "Run answers once the context is done, so the caller sees it done")
	assert.NotErrorIs(t, err, wire.ErrTransport)
}

func TestRPC_brokenConnectionIsTransportError(t *testing.T) {
	client, _ := plugin.TestPluginRPCConn(t, wire.PluginSet(testTask), nil)
	raw, err := client.Dispense(wire.PluginName)
	require.NoError(t, err)
	require.NoError(t, client.Close())
	_, err = raw.(wire.Task).Run(context.Background(), []byte(`1`))
	require.ErrorIs(t, err, wire.ErrTransport)
	assert.NotErrorIs(t, err, shared.ErrTaskFailed)
}

// TestProgress_overTheBroker: a task's progress reaches the host over the
// callback server, before the task's answer.
func TestProgress_overTheBroker(t *testing.T) {
	reporting := shared.TaskFunc(func(ctx context.Context, _ []byte) ([]byte, error) {
		shared.Progress(ctx, 0.25, "a quarter")
		for range 1000 {
			shared.Progress(ctx, 0.5, "rate-limited away")
		}
		shared.Progress(ctx, 1, "done")
		return []byte(`true`), nil
	})
	client, _ := plugin.TestPluginRPCConn(t, wire.PluginSet(reporting), nil)
	defer client.Close()
	raw, err := client.Dispense(wire.PluginName)
	require.NoError(t, err)
	task := raw.(wire.Task)
	var got []string
	for range 2 { // the second task reuses the worker's callback connection
		got = got[:0]
		ctx := wire.WithProgressFunc(context.Background(), func(f float64, msg string) {
			got = append(got, fmt.Sprintf("%.2f %s", f, msg))
		})
		out, err := task.Run(ctx, []byte(`{}`))
		require.NoError(t, err)
		assert.Equal(t, `true`, string(out))
		assert.Equal(t, []string{"0.25 a quarter", "1.00 done"}, got)
	}
	out, err := task.Run(context.Background(), []byte(`"no progress wanted"`))
	require.NoError(t, err)
	assert.Equal(t, `true`, string(out))
}
