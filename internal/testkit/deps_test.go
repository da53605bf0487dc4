package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// make test, the README's test command, installs what the suite needs
// before it runs it: the deps step comes first, and that step knows every
// package a test needs from Debian (issue 21).
func TestMakeTestInstallsWhatTheTestsNeed(t *testing.T) {
	cmd := exec.Command("make", "-n", "test")
	cmd.Dir = ModuleRoot()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deps := -1
	for i, l := range lines {
		if strings.Contains(l, "scripts/test-deps.sh") {
			deps = i
			break
		}
	}
	require.GreaterOrEqual(t, deps, 0, "make test runs no install step:\n%s", out)
	for _, l := range lines[:deps] {
		assert.NotContains(t, l, "go test", "tests run before the install step")
	}
	assert.Contains(t, strings.Join(lines[deps:], "\n"), "go test")

	script, err := os.ReadFile(filepath.Join(ModuleRoot(), "scripts", "test-deps.sh"))
	require.NoError(t, err)
	for what, pkg := range map[string]string{
		"the race detector":                       "gcc",
		"the dashboard's browser tests":           "chromium",
		"the partition tests' network namespaces": "iproute2",
		"the disk-full test's tmpfs":              "mount",
		"Node.js worker scripts":                  "nodejs",
		"the Python SDK (grpc)":                   "python3-grpcio",
		"the Python SDK (protobuf)":               "python3-protobuf",
	} {
		assert.Regexp(t, `need\+=\([^)]*\b`+regexp.QuoteMeta(pkg)+`\b`, string(script), "scripts/test-deps.sh does not install %s, which %s needs", pkg, what)
	}
}
