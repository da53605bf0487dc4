package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// runCLI runs wpm in-process with args, on the shipped config and the test
// plugins, and returns its exit status and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr testkit.SyncBuffer
	if len(args) > 0 && args[0] != "version" && !strings.HasPrefix(args[0], "-") && args[0] != "nope" {
		args = append(args, "--config", filepath.Join(testkit.ModuleRoot(), "config", "default.yaml"))
		if args[0] == "run" || args[0] == "plugins" || args[0] == "serve" {
			args = append(args, "--plugins-dir", filepath.Join(binDir, "plugins"))
		}
	}
	code := run(args, env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

func TestCLI_run(t *testing.T) {
	code, out, errOut := runCLI(t, "", "run", "cpuload", "--task", `{"duration": 5}`)
	require.Equal(t, 0, code, errOut)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.EqualValues(t, 5, v["requestedMs"])

	file := filepath.Join(t.TempDir(), "task.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"mb": 4}`), 0o600))
	code, out, errOut = runCLI(t, "", "run", "memusage", "--task", "@"+file)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"mb": 4`)

	code, out, errOut = runCLI(t, `{"duration": 1}`, "run", "cpuload", "--task", "-")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "requestedMs")
	testkit.RequireNoChildren(t)
}

// Progress reports reach wpm run's standard error as plain lines when it
// is not a terminal.
func TestCLI_run_progress(t *testing.T) {
	code, out, errOut := runCLI(t, "", "run", "cpuload", "--task", `{"duration": 600}`)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "requestedMs")
	lines := strings.Count(errOut, "% a busy loop of 600 ms\n")
	assert.GreaterOrEqual(t, lines, 2, "a line per 10 %% step: %s", errOut)
	assert.LessOrEqual(t, lines, 11, errOut)
	assert.Contains(t, errOut, "progress 100% a busy loop of 600 ms")
	testkit.RequireNoChildren(t)
}

func TestProgressView_terminalBar(t *testing.T) {
	var b bytes.Buffer
	v := &progressView{w: &b, tty: true, lastStep: -1}
	v.event(host.Event{Type: host.EventTaskProgress, Fraction: 0.5, Message: "half"})
	v.event(host.Event{Type: host.EventTaskStarted})
	v.done()
	assert.Equal(t, "\r\033[K["+strings.Repeat("#", 15)+strings.Repeat(" ", 15)+"]  50% half\n", b.String())
}

func TestCLI_run_errors(t *testing.T) {
	code, _, errOut := runCLI(t, "", "run", "cpuload", "--task", `{"duration": -1}`)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "invalid_task")

	code, _, errOut = runCLI(t, "", "run", "../cpuload", "--task", `{}`)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "unknown_plugin")

	code, _, errOut = runCLI(t, "", "run", "cpuload", "--task", `{not json`)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "not valid JSON")

	code, _, errOut = runCLI(t, "", "run", "cpuload")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--task")

	code, _, errOut = runCLI(t, "", "run", "--task", "{}")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "exactly one plugin")

	// Output that is not JSON is task_failed, as the server says.
	code, out, errOut := runCLI(t, "", "run", "misbehave", "--task", `{"fault": "badjson"}`)
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "task_failed")
	assert.Contains(t, errOut, "not valid JSON")

	code, _, errOut = runCLI(t, "", "run", "misbehave", "--task", `{"fault": "exit", "lines": ["bye now"]}`)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "worker_crashed")
	assert.Contains(t, errOut, "bye now")
	testkit.RequireNoChildren(t)
}

func TestCLI_plugins(t *testing.T) {
	code, out, errOut := runCLI(t, "", "plugins")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "NAME")
	assert.Regexp(t, `cpuload\s+.*CPU`, out)
	assert.Regexp(t, `memusage\s+.*MEM`, out)
	assert.Contains(t, out, "misbehave")
}

func TestCLI_versionAndHelp(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "wpm ")

	code, out, _ = runCLI(t, "", "--help")
	assert.Equal(t, 0, code)
	for _, c := range []string{"serve", "run", "plugins", "version"} {
		assert.Contains(t, out, c)
	}
	for _, c := range []string{"serve", "run", "plugins", "version"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{c, "--help"}, env{stdout: &stdout, stderr: &stderr})
		assert.Equal(t, 0, code, c)
		assert.Contains(t, stdout.String(), "Usage: wpm "+c, c)
	}
	code, _, errOut := runCLI(t, "", "nope")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "unknown command")
}

func TestCLI_badConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(file, []byte("http:\n  adr: x\npools:\n  - {name: A, plugin: cpuload, workers: 0}\n"), 0o600))
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--config", file}, env{stdout: &stdout, stderr: &stderr})
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), `http.adr`)
	assert.Contains(t, stderr.String(), `pools[0].workers`)
}

// Help prints once, on standard output, and lists the command's own
// flags; a bad flag is named on standard error.
func TestCLI_helpOnceWithOwnFlags(t *testing.T) {
	for _, c := range []string{"serve", "run", "plugins", "new", "status", "tasks", "version"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{c, "--help"}, env{stdout: &stdout, stderr: &stderr})
		assert.Equal(t, 0, code, c)
		assert.Equal(t, 1, strings.Count(stdout.String(), "Usage: wpm "+c), "%s: %s", c, stdout.String())
		assert.Empty(t, stderr.String(), c)
	}
	var stdout, stderr bytes.Buffer
	run([]string{"status", "--help"}, env{stdout: &stdout, stderr: &stderr})
	for _, other := range []string{"--plugins-dir", "--role", "--addr", "--log-level"} {
		assert.NotContains(t, stdout.String(), other, "status has no %s", other)
	}
	stdout.Reset()
	run([]string{"serve", "--help"}, env{stdout: &stdout, stderr: &stderr})
	assert.Contains(t, stdout.String(), "--plugins-dir")
	assert.Contains(t, stdout.String(), "--role")

	stderr.Reset()
	code := run([]string{"run", "--bogus"}, env{stdout: &stdout, stderr: &stderr})
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), "unknown flag: --bogus")
}

// wpm run and wpm plugins work from a folder without a config file, given
// --plugins-dir; wpm plugins --full prints the whole SHA-256.
func TestCLI_anyFolder(t *testing.T) {
	t.Chdir(t.TempDir())
	plugins := filepath.Join(binDir, "plugins")
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "cpuload", "--plugins-dir", plugins, "--task", `{"duration": 1}`}, env{stdout: &stdout, stderr: &stderr})
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "requestedMs")
	stdout.Reset()
	code = run([]string{"plugins", "--plugins-dir", plugins, "--full"}, env{stdout: &stdout, stderr: &stderr})
	require.Equal(t, 0, code, stderr.String())
	assert.Regexp(t, `cpuload\s+.*\s[0-9a-f]{64}\s`, stdout.String())
	testkit.RequireNoChildren(t)
}
