package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileProtocol(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	assert.Equal(t, ProtocolGRPC, fileProtocol(script), "a script")
	if _, err := os.Stat("/bin/true"); err == nil {
		assert.Equal(t, ProtocolGRPC, fileProtocol("/bin/true"), "an ELF that is not Go")
	}
	assert.Equal(t, ProtocolGRPC, fileProtocol(filepath.Join(dir, "missing")))
	// TestMain built the Go plugins into bin/plugins of the directory the
	// tests run in: wpm's module is their main module.
	assert.Equal(t, ProtocolNetRPC, fileProtocol(filepath.Join("bin", "plugins", "cpuload")))
	// A Go binary of another module: Go's own gofmt.
	if gofmt, err := exec.LookPath("gofmt"); err == nil {
		assert.Equal(t, ProtocolGRPC, fileProtocol(gofmt), "a Go binary without wpm's module")
	}
}
