package host

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// A gRPC worker answers Ping through go-plugin's health service, and one
// that stops answering fails it within the ping's context.
func TestGRPCProc_pingAndInfo(t *testing.T) {
	testkit.RequirePython(t)
	// TestMain (main_test.go) built the plugins into bin/plugins of the
	// directory the tests run in.
	path, err := filepath.Abs(filepath.Join("bin", "plugins", "pyfaults"))
	require.NoError(t, err)
	pr, err := startPlugin(context.Background(), launch{path: path, socketDir: t.TempDir(), startTimeout: 10 * time.Second, logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	w := pr.(*pluginProc)
	defer w.Stop(nil)
	assert.Equal(t, plugin.ProtocolGRPC, w.p.protocol)
	assert.Equal(t, 2, w.maxConcurrency(), "pyfaults's Info")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.NoError(t, w.Ping(ctx))
	out, err, healthy := w.Run(ctx, []byte(`{"mode": "echo"}`), nil)
	require.NoError(t, err)
	assert.True(t, healthy)
	assert.JSONEq(t, `{"mode": "echo"}`, string(out))

	require.NoError(t, syscall.Kill(w.PID(), syscall.SIGSTOP))
	testkit.WaitStopped(t, w.PID())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	require.Error(t, w.Ping(ctx2), "a stopped worker does not answer")
	assert.Less(t, time.Since(start), time.Second)
	w.Stop(nil)
	assert.Equal(t, CauseStopped, w.Exit().Cause)
}
