package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// wpmNew runs the built bin/wpm new with args in the folder dir.
func wpmNew(t *testing.T, dir string, args ...string) checkRun {
	t.Helper()
	return runIn(t, dir, nil, filepath.Join(binDir, "wpm"), append([]string{"new"}, args...)...)
}

// runIn runs name with args in dir, with extra environment, bounded to
// two minutes, and returns how it ended.
func runIn(t *testing.T, dir string, extraEnv []string, name string, args ...string) checkRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := checkRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else {
		require.NoError(t, err, "%s %s", name, strings.Join(args, " "))
	}
	t.Logf("%s %s → %d in %s\n%s%s", filepath.Base(name), strings.Join(args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
	return r
}

// goEnv is the environment the scaffolded Go module builds in: its
// requirements are added from the checkout's go.mod (-mod=mod), and its
// modules come from the module cache.
func goEnv() []string {
	return []string{"GOFLAGS=-mod=mod " + os.Getenv("GOFLAGS"), "CGO_ENABLED=0"}
}

// A Go plugin outside the checkout: a go.mod whose replace points at the
// checkout; it builds, its test passes, and so does wpm plugin check.
func TestNew_goOutsideCheckout(t *testing.T) {
	root := filepath.Clean(testkit.ModuleRoot())
	dir := filepath.Join(t.TempDir(), "greet")
	r := wpmNew(t, t.TempDir(), "plugin", "greet", "--dir", dir, "--wpm-module", root)
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, f := range []string{"main.go", "main_test.go", "go.mod", "go.sum"} {
		assert.Contains(t, r.stdout, "wrote "+filepath.Join(dir, f))
	}
	assert.Contains(t, r.stdout, "go test ./...")
	assert.Contains(t, r.stdout, "wpm plugin check greet --plugins-dir bin")
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	assert.Contains(t, string(gomod), "module greet\n")
	assert.Contains(t, string(gomod), "replace github.com/wpmdev/wpm => "+root+"\n")

	fmtd := runIn(t, dir, nil, "gofmt", "-l", ".")
	require.Equal(t, 0, fmtd.code)
	assert.Empty(t, fmtd.stdout, "gofmt would change these")
	build := runIn(t, dir, goEnv(), "go", "build", "-o", filepath.Join("bin", "greet"), ".")
	require.Equal(t, 0, build.code, build.stderr)
	tests := runIn(t, dir, goEnv(), "go", "test", "-count=1", "./...")
	require.Equal(t, 0, tests.code, tests.stdout+tests.stderr)

	c := pluginCheck(t, "check", "greet", "--plugins-dir", filepath.Join(dir, "bin"))
	require.Equal(t, exitOK, c.code, c.stdout+c.stderr)
	assert.Regexp(t, `^ok\s+invalid_task;`, c.stepLine(t, "invalid"))
	assert.Regexp(t, `^ok\s+\d+ reports, \d+% to 100%`, c.stepLine(t, "progress"))
	assert.Contains(t, c.stdout, "plugin greet: ok, all 7 steps passed")
	c.requireNoWorkers(t)
}

// Without --wpm-module, outside the checkout, the checkout is the one the
// binary was built from.
func TestNew_goFindsCheckout(t *testing.T) {
	dir := t.TempDir()
	r := wpmNew(t, dir, "plugin", "x_1", "--dir", "x")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "wrote "+filepath.Join("x", "go.mod"))
	gomod, err := os.ReadFile(filepath.Join(dir, "x", "go.mod"))
	require.NoError(t, err)
	assert.Contains(t, string(gomod), "replace github.com/wpmdev/wpm => "+filepath.Clean(testkit.ModuleRoot())+"\n")
}

// A Python plugin: its unittest passes under Debian's Python, it packs
// with pyzipapp, and it passes wpm plugin check.
func TestNew_python(t *testing.T) {
	testkit.RequirePython(t)
	root := filepath.Clean(testkit.ModuleRoot())
	dir := filepath.Join(t.TempDir(), "word-count")
	r := wpmNew(t, t.TempDir(), "plugin", "word-count", "--lang", "python", "--dir", dir)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "wrote "+filepath.Join(dir, "__main__.py"))
	assert.Contains(t, r.stdout, "wrote "+filepath.Join(dir, "test_word_count.py"))
	assert.Contains(t, r.stdout, "go run ./internal/tools/pyzipapp "+dir)

	tests := runIn(t, dir, nil, testkit.Python, "test_word_count.py", "-v")
	require.Equal(t, 0, tests.code, tests.stdout+tests.stderr)
	assert.Contains(t, tests.stderr, "OK")

	plugins := t.TempDir()
	pack := runIn(t, root, nil, "go", "run", "./internal/tools/pyzipapp", dir, filepath.Join(plugins, "word-count"))
	require.Equal(t, 0, pack.code, pack.stderr)
	c := pluginCheck(t, "check", "word-count", "--plugins-dir", plugins)
	require.Equal(t, exitOK, c.code, c.stdout+c.stderr)
	assert.Regexp(t, `^ok\s+invalid_task;`, c.stepLine(t, "invalid"))
	assert.Regexp(t, `^ok\s+\d+ reports`, c.stepLine(t, "progress"))
	assert.Contains(t, c.stdout, "plugin word-count: ok, all 7 steps passed")
	c.requireNoWorkers(t)
}

// A Node.js script: its node:test passes, and it passes wpm plugin check
// from its folder alone (no plugins directory there).
func TestNew_node(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "workers")
	r := wpmNew(t, t.TempDir(), "plugin", "adder", "--lang", "node", "--dir", dir)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "wrote "+filepath.Join(dir, "adder.js"))
	assert.Contains(t, r.stdout, "wrote "+filepath.Join(dir, "adder.test.js"))
	assert.Contains(t, r.stdout, "wpm plugin check adder.js --scripts-dir "+dir)

	tests := runIn(t, dir, nil, "node", "--test", "adder.test.js")
	require.Equal(t, 0, tests.code, tests.stdout+tests.stderr)
	assert.Contains(t, tests.stdout, "# pass 1")

	c := pluginCheck(t, "check", "adder.js", "--scripts-dir", dir)
	require.Equal(t, exitOK, c.code, c.stdout+c.stderr)
	assert.Regexp(t, `^ok\s+\d+ reports`, c.stepLine(t, "progress"))
	assert.Contains(t, c.stdout, "plugin adder.js: ok, all 7 steps passed")
	c.requireNoWorkers(t)
}

// Bad names, bad flags and files that exist are usage errors (2), and
// nothing is written.
func TestNew_refuses(t *testing.T) {
	cwd := t.TempDir()
	for _, name := range []string{"a b", "../up", "x.js", "dir/x", "é", "_x", strings.Repeat("a", 65)} {
		dir := filepath.Join(t.TempDir(), "p")
		r := wpmNew(t, cwd, "plugin", name, "--dir", dir)
		assert.Equal(t, exitUsage, r.code, name)
		assert.Contains(t, r.stderr, "letters, digits, - and _", name)
		assert.NoDirExists(t, dir, name)
	}

	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(main, []byte("package keep\n"), 0o644))
	r := wpmNew(t, cwd, "plugin", "greet", "--dir", dir)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "not overwriting what exists: "+main)
	assert.Contains(t, r.stderr, "nothing was written")
	b, err := os.ReadFile(main)
	require.NoError(t, err)
	assert.Equal(t, "package keep\n", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing else written")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"plugin", "adder", "--lang", "node"}, "needs --dir"},
		{[]string{"plugin", "greet"}, "not in wpm's checkout"},
		{[]string{"plugin", "greet", "--lang", "rust", "--dir", "x"}, "choose go, python or node"},
		{[]string{"plugin", "greet", "--dir", "x", "--wpm-module", cwd}, "no go.mod of module github.com/wpmdev/wpm"},
		{[]string{"plugin"}, "like: wpm new plugin greet"},
		{[]string{"thing", "greet"}, "like: wpm new plugin greet"},
		{[]string{"plugin", "greet", "--bogus"}, "--bogus"},
	} {
		r := wpmNew(t, cwd, c.args...)
		assert.Equal(t, exitUsage, r.code, c.args)
		assert.Contains(t, r.stderr, c.want, c.args)
	}
	entries, err = os.ReadDir(cwd)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written in the working directory")

	r = wpmNew(t, cwd, "--help")
	assert.Equal(t, exitOK, r.code)
	assert.Equal(t, 1, strings.Count(r.stdout, "Usage: wpm new plugin NAME"), r.stdout)
	for _, flag := range []string{"--lang", "--dir", "--wpm-module"} {
		assert.Contains(t, r.stdout, flag)
	}
	assert.Empty(t, r.stderr)
}
