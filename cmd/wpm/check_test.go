package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// checkRun is one run of bin/wpm plugin check.
type checkRun struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// pluginCheck runs the built bin/wpm plugin check with args, from an empty
// folder (no config file), bounded as runIn bounds it.
func pluginCheck(t *testing.T, args ...string) checkRun {
	t.Helper()
	return runIn(t, t.TempDir(), nil, filepath.Join(binDir, "wpm"), append([]string{"plugin"}, args...)...)
}

// stepLine returns the line of the step named step.
func (r checkRun) stepLine(t *testing.T, step string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + step + `\s+(.*)$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, "no line for step %s:\n%s", step, r.stdout)
	return m[1]
}

// requireNoWorkers fails unless every pid the report names is gone.
func (r checkRun) requireNoWorkers(t *testing.T) {
	t.Helper()
	for _, m := range regexp.MustCompile(`pid (\d+)`).FindAllStringSubmatch(r.stdout, -1) {
		pid, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		require.Eventually(t, func() bool { return !testkit.Alive(pid) }, 5*time.Second, 10*time.Millisecond,
			"worker %d outlived wpm plugin check", pid)
	}
}

// Every plugin shipped in plugins/ passes every step, with the default
// input {} and with one that makes cpuload report progress.
func TestPluginCheck_shippedPluginsPass(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(testkit.ModuleRoot(), "plugins"))
	require.NoError(t, err)
	plugins := filepath.Join(binDir, "plugins")
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	require.NotEmpty(t, names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r := pluginCheck(t, "check", name, "--plugins-dir", plugins)
			require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
			for _, step := range []string{"handshake", "task", "invalid", "progress", "concurrency", "crash", "memory"} {
				assert.Regexp(t, `^ok\s`, r.stepLine(t, step), step)
			}
			assert.Contains(t, r.stepLine(t, "concurrency"), "4/4 answered")
			assert.Contains(t, r.stdout, "plugin "+name+": ok, all 7 steps passed")
			assert.Empty(t, r.stderr)
			r.requireNoWorkers(t)
		})
	}

	r := pluginCheck(t, "check", "cpuload", "--plugins-dir", plugins, "--input", `{"duration": 400}`, "--concurrency", "2")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Regexp(t, `^ok\s+\d+ reports, \d+% to 100%`, r.stepLine(t, "progress"))
	assert.Regexp(t, `^ok\s+a result of \d+ bytes`, r.stepLine(t, "task"))
	assert.Contains(t, r.stepLine(t, "concurrency"), "2/2 answered; up to 2 ran at once")
	r.requireNoWorkers(t)
}

// Executables that are no plugin fail the handshake with a one-line
// reason, well within the start timeout when they exit or babble, and at
// it when they hang; the other steps are skipped and no process stays.
func TestPluginCheck_notAPlugin(t *testing.T) {
	dir := t.TempDir()
	testkit.CopyPlugin(t, "/bin/true", dir, "true")
	pidFile := filepath.Join(t.TempDir(), "hang.pid")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "babbles"), []byte("#!/bin/sh\necho hello, I am no plugin\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hangs"), []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 60\n"), 0o755))
	for _, c := range []struct {
		name    string
		reason  string
		atLeast time.Duration
	}{
		{"true", "not a wpm plugin", 0},
		{"babbles", "hello, I am no plugin", 0},
		{"hangs", "timeout", 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := pluginCheck(t, "check", c.name, "--plugins-dir", dir, "--start-timeout", "2s")
			assert.Equal(t, exitFailed, r.code)
			line := r.stepLine(t, "handshake")
			assert.Regexp(t, `^FAIL\s+no worker started`, line)
			assert.Contains(t, line, c.reason)
			for _, step := range []string{"task", "invalid", "progress", "concurrency", "crash", "memory"} {
				assert.Contains(t, r.stepLine(t, step), "skipped", step)
			}
			assert.Contains(t, r.stdout, "plugin "+c.name+": FAIL, 1 of 7 steps failed: handshake")
			assert.GreaterOrEqual(t, r.took, c.atLeast)
			assert.Less(t, r.took, 2*time.Second+3*time.Second, "bounded by the start timeout")
		})
	}
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	assert.False(t, testkit.Alive(pid), "the hanging process %d outlived wpm plugin check", pid)
}

// A plugin that starts but crashes on every task fails the task steps and
// names the crash, and the run ends with a summary and status 1.
func TestPluginCheck_crashesOnEveryTask(t *testing.T) {
	dir := t.TempDir()
	testkit.CopyPlugin(t, filepath.Join(binDir, "plugins", "misbehave"), dir, "crashtask")
	r := pluginCheck(t, "check", "crashtask", "--plugins-dir", dir, "--concurrency", "2")
	require.Equal(t, exitFailed, r.code, r.stdout+r.stderr)
	assert.Regexp(t, `^ok\s`, r.stepLine(t, "handshake"))
	task := r.stepLine(t, "task")
	assert.Regexp(t, `^FAIL\s+worker_crashed`, task)
	assert.Contains(t, task, "panic: misbehave: asked to crash")
	assert.Regexp(t, `^FAIL\s`, r.stepLine(t, "invalid"))
	assert.Regexp(t, `^FAIL\s+0/2 answered`, r.stepLine(t, "concurrency"))
	assert.Regexp(t, `^FAIL\s.*the next task: worker_crashed`, r.stepLine(t, "crash"))
	assert.Regexp(t, `(?m)^plugin crashtask: FAIL, \d of 7 steps failed: task, invalid, .*concurrency, crash`, r.stdout)
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		assert.LessOrEqual(t, len(line), 12+1+5+1+maxLine, "one bounded line a step")
	}
	r.requireNoWorkers(t)
}

// An unknown name, a missing one, or a bad flag is a usage error (2); the
// unknown name's message lists the plugins there are.
func TestPluginCheck_usage(t *testing.T) {
	plugins := filepath.Join(binDir, "plugins")
	r := pluginCheck(t, "check", "nosuch", "--plugins-dir", plugins)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `no plugin "nosuch"`)
	assert.Contains(t, r.stderr, "known plugins: ")
	assert.Contains(t, r.stderr, "cpuload")
	assert.Contains(t, r.stderr, "memusage")

	for _, args := range [][]string{
		{"check"},
		{},
		{"inspect", "cpuload"},
		{"check", "cpuload", "--concurrency", "0"},
		{"check", "cpuload", "--input", "not json"},
		{"check", "cpuload", "--start-timeout", "0s"},
		{"check", "cpuload", "--bogus"},
	} {
		r := pluginCheck(t, append(args, "--plugins-dir", plugins)...)
		assert.Equal(t, exitUsage, r.code, args)
		assert.NotEmpty(t, r.stderr, args)
	}

	r = pluginCheck(t, "--help")
	assert.Equal(t, exitOK, r.code)
	assert.Equal(t, 1, strings.Count(r.stdout, "Usage: wpm plugin check NAME"), r.stdout)
	for _, flag := range []string{"--input", "--start-timeout", "--task-timeout", "--concurrency", "--plugins-dir"} {
		assert.Contains(t, r.stdout, flag)
	}
	assert.Empty(t, r.stderr)

	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitOK, run([]string{"--help"}, env{stdout: &stdout, stderr: &stderr}))
	assert.Regexp(t, `(?m)^  plugin\s+check that a plugin`, stdout.String())
}

// In-process, under the race detector: the checker's goroutines and event
// sink, and no worker left once it returns.
func TestPluginCheck_inProcess(t *testing.T) {
	var stdout, stderr testkit.SyncBuffer
	code := run([]string{"plugin", "check", "cpuload", "--plugins-dir", filepath.Join(binDir, "plugins"),
		"--input", `{"duration": 150}`, "--concurrency", "3"}, env{stdout: &stdout, stderr: &stderr})
	require.Equal(t, exitOK, code, stdout.String()+stderr.String())
	assert.Contains(t, stdout.String(), "3/3 answered")
	testkit.RequireNoChildren(t)
}

// Node.js worker scripts are checked from the scripts folder: the test
// worker and the Node.js project's two scripts (when they are beside the
// repository) pass; a script that never answers init fails its handshake.
func TestPluginCheck_nodeScripts(t *testing.T) {
	plugins := filepath.Join(binDir, "plugins")
	scripts := filepath.Join(testkit.ModuleRoot(), "host", "testdata", "node")
	r := pluginCheck(t, "check", "worker.js", "--plugins-dir", plugins, "--scripts-dir", scripts)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "checking plugin worker.js in "+scripts)
	assert.Contains(t, r.stepLine(t, "concurrency"), "4/4 answered; up to 4 ran at once")
	r.requireNoWorkers(t)

	r = pluginCheck(t, "check", "noinit.js", "--plugins-dir", plugins, "--scripts-dir", scripts, "--start-timeout", "1s")
	require.Equal(t, exitFailed, r.code, r.stdout+r.stderr)
	assert.Regexp(t, `^FAIL\s.*initDone.*starting, but never ready`, r.stepLine(t, "handshake"))
	r.requireNoWorkers(t)

	seed := filepath.Join(testkit.ModuleRoot(), "..", "shared", "seed", "node", "workers")
	if _, err := os.Stat(seed); err != nil {
		t.Logf("the Node.js project's scripts are not beside the repository (%v); checked the test worker only", err)
		return
	}
	for _, name := range []string{"exampleWorker_CPULoad.js", "exampleWorker_MemoryUsage.js"} {
		r := pluginCheck(t, "check", name, "--plugins-dir", plugins, "--scripts-dir", seed, "--input", `{"duration": 5, "mb": 1}`)
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		r.requireNoWorkers(t)
	}
}

// The Python example passes every step; its progress is reported.
func TestPluginCheck_pythonExample(t *testing.T) {
	testkit.RequirePython(t)
	dir := t.TempDir()
	require.NoError(t, testkit.BuildPythonPlugins(dir))
	r := pluginCheck(t, "check", "wordcount", "--plugins-dir", dir, "--input", `{"text": "one two\nthree"}`)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Regexp(t, `^ok\s+\d+ reports`, r.stepLine(t, "progress"))
	assert.Contains(t, r.stdout, "plugin wordcount: ok, all 7 steps passed")
	r.requireNoWorkers(t)
}
