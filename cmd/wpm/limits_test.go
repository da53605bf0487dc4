package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runtime.memoryLimit becomes wpm's own soft memory limit, as the Go
// runtime reports it in /metrics.
func TestServe_runtimeMemoryLimit(t *testing.T) {
	s := startServeConfig(t, misbehaveConfig, "WPM_RUNTIME_MEMORYLIMIT=300MiB")
	resp, err := http.Get(s.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(raw), "\ngo_gc_gomemlimit_bytes 3.145728e+08\n")
}
