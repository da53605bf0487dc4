// Package testkit is test support shared by wpm's packages: it builds the
// plugin binaries once per test binary and checks that no worker process
// outlives a test.
package testkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Plugins are the import paths built by BuildPlugins, by binary name.
var Plugins = map[string]string{
	"cpuload":   "./plugins/cpuload",
	"memusage":  "./plugins/memusage",
	"misbehave": "./internal/testplugins/misbehave",
	"logcrash":  "./internal/testplugins/logcrash",
}

// PythonPlugins are the Python plugins built by BuildPythonPlugins, by
// name: their directories, each with a __main__.py.
var PythonPlugins = map[string]string{
	"wordcount": "examples/plugins/wordcount",
	"pyfaults":  "internal/testplugins/pyfaults",
}

// Python is Debian's interpreter, the one with python3-grpcio and
// python3-protobuf, which Python plugins run with.
const Python = "/usr/bin/python3"

// BuildPythonPlugins packs every plugin in PythonPlugins with the SDK
// into a zipapp in dir, as make build does (internal/tools/pyzipapp).
func BuildPythonPlugins(dir string) error {
	for name, src := range PythonPlugins {
		cmd := exec.Command("go", "run", "./internal/tools/pyzipapp", src, filepath.Join(dir, name))
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pack %s: %w\n%s", name, err, out)
		}
	}
	return nil
}

var pythonOK = sync.OnceValue(func() error {
	out, err := exec.Command(Python, "-c", "import grpc, google.protobuf").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s can not import grpc and google.protobuf (install python3-grpcio python3-protobuf: make deps): %w\n%s", Python, err, out)
	}
	return nil
})

// HavePython reports whether Debian's Python with grpc and protobuf is
// there to run the Python plugins.
func HavePython() bool { return pythonOK() == nil }

// RequirePython fails tb unless Debian's Python with grpc and protobuf is
// there to run the Python plugins (make test installs them: make deps).
func RequirePython(tb testing.TB) {
	tb.Helper()
	if err := pythonOK(); err != nil {
		tb.Fatal(err)
	}
}

// ModuleRoot returns the repository's root directory.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BuildPlugins builds every plugin in Plugins into dir (made if missing),
// the way the Makefile does (CGO_ENABLED=0, so no -race: the race detector
// needs cgo). Call it once from TestMain.
func BuildPlugins(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, pkg := range Plugins {
		args = append(args, pkg)
	}
	return goBuild(args...)
}

// BuildWPM builds cmd/wpm into dir and returns the binary's path.
func BuildWPM(dir string) (string, error) {
	out := filepath.Join(dir, "wpm")
	return out, goBuild("build", "-o", out, "./cmd/wpm")
}

func goBuild(args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = ModuleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// CopyPlugin copies the binary src to dir/name, executable, and returns its
// path. Tests use it to make a plugin under another name.
func CopyPlugin(tb testing.TB, src, dir, name string) string {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatalf("read plugin: %v", err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		tb.Fatalf("write plugin: %v", err)
	}
	return dst
}

// Children returns the pids of this process's live child processes.
func Children() []int {
	return ChildrenOf(os.Getpid())
}

// ChildrenOf returns the pids of pid's live (not zombie) child processes.
func ChildrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, ok := parentOf(child)
		if ok && ppid == pid && state != "Z" {
			kids = append(kids, child)
		}
	}
	return kids
}

// Alive reports whether pid is a live, non-zombie process.
func Alive(pid int) bool {
	_, state, ok := parentOf(pid)
	return ok && state != "Z"
}

// WaitStopped waits until every thread of pid is stopped (state T), as
// it is some time after a SIGSTOP: kill returns before the threads stop,
// and one may still answer meanwhile. It fails tb after 5 s.
func WaitStopped(tb testing.TB, pid int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !allStopped(pid) {
		if time.Now().After(deadline) {
			tb.Fatalf("process %d never stopped", pid)
		}
		time.Sleep(time.Millisecond) // the kernel tells no one when a thread stops
	}
}

// allStopped reports whether every thread of pid is stopped.
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		i := bytes.LastIndexByte(b, ')')
		if err != nil || i < 0 || len(b) < i+3 || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// parentOf reads a process's parent pid and state from /proc/PID/stat.
func parentOf(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0], err == nil
}

// RequireNoChildren fails tb unless every child process of this test
// binary is gone within a few seconds.
func RequireNoChildren(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids := Children()
		if len(kids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("worker processes left behind: %v", kids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RunMain is a TestMain body for packages that start workers: it makes a
// temporary root directory, calls setup with it (to build plugins there),
// runs the tests, and then fails the run if goroutines leaked or worker
// processes were left behind. It returns the exit status for os.Exit.
func RunMain(m *testing.M, setup func(root string) error) int {
	return RunMainTeardown(m, func(root string) (func(), error) { return func() {}, setup(root) })
}

// RunMainTeardown is [RunMain] for packages whose tests share processes
// that setup starts (a wpm serve, say): the teardown setup returns runs
// after the tests, before the checks for leaks and leftover processes.
func RunMainTeardown(m *testing.M, setup func(root string) (teardown func(), err error)) int {
	root, err := os.MkdirTemp("", "wpm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	teardown, err := setup(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	teardown()
	if code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		// go-plugin's MuxBroker.Accept waits up to 5 s for a broker stream
		// a plugin may never dial (a worker's progress stream, offered with
		// its first watched task, is dialled only at its first report):
		// look again once such waits are over.
		time.Sleep(brokerAcceptTimeout)
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			return 1
		}
	}
	if kids := Children(); len(kids) > 0 {
		fmt.Fprintln(os.Stderr, "leftover worker processes:", kids)
		return 1
	}
	return 0
}

// brokerAcceptTimeout outlasts go-plugin's MuxBroker.Accept timeout (5 s).
const brokerAcceptTimeout = 6 * time.Second

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers, for
// capturing a logger's or a process's output in a test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
