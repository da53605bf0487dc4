package host_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// lockName is the lock file a wpm holds in its socket directory.
const lockName = "wpm.lock"

// A socket directory is another wpm's while that wpm holds its lock,
// whatever the pid in its name: a wpm in another PID namespace sharing the
// temporary directory has a pid that means nothing here. Only directories
// whose lock nobody holds are removed.
func TestManager_socketDir_removesOnlyUnlocked(t *testing.T) {
	tmp := shortTempDir(t)
	t.Setenv("TMPDIR", tmp)
	// 2147483646 is above any pid_max: no process here has that pid.
	locked := mustMkdir(t, tmp, "wpm-sockets-2147483646-locked")
	unlocked := mustMkdir(t, tmp, "wpm-sockets-2147483646-unlocked")
	require.NoError(t, os.WriteFile(filepath.Join(unlocked, lockName), nil, 0o600))
	legacy := mustMkdir(t, tmp, "wpm-sockets-2147483646-legacy") // from a wpm without locks
	holder := holdLock(t, filepath.Join(locked, lockName))

	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{misbehavePool("M", 1)}
	m := newManagerWith(t, cfg, hclog.NewNullLogger())
	waitReady(t, m, "M")

	assert.DirExists(t, locked, "a directory locked by another process survives")
	assert.NoDirExists(t, unlocked, "a directory whose lock nobody holds is removed")
	assert.NoDirExists(t, legacy, "a directory without a lock file is removed")
	own := ownSocketDirs(t, tmp, locked)
	require.Len(t, own, 1, "the manager made one socket directory")

	second := newManagerWith(t, host.DefaultConfig(), hclog.NewNullLogger())
	assert.DirExists(t, own[0], "a second manager keeps the first one's directory")
	assert.DirExists(t, locked)
	shutdown(t, second)
	shutdown(t, m)
	assert.NoDirExists(t, own[0], "Shutdown removes the manager's directory")
	holder()
}

// holdLock starts a process that holds an exclusive flock on path until
// the returned function is called; it returns once the lock is held.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("needs flock(1):", err)
	}
	cmd := exec.Command("flock", "--nonblock", path, "sh", "-c", "echo locked; exec cat")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		_ = stdin.Close() // cat ends, then flock, which releases the lock
		timer := time.AfterFunc(5*time.Second, func() { _ = cmd.Process.Kill() })
		defer timer.Stop()
		_ = cmd.Wait()
	}
	t.Cleanup(release)
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		require.Equal(t, "locked\n", line, "flock could not take the lock")
	case <-time.After(5 * time.Second):
		require.FailNow(t, "flock never took the lock")
	}
	return release
}

// shortTempDir makes a temporary directory with a short path: a unix
// socket's path may not be much longer than 100 bytes, and t.TempDir's are
// long.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wpm")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func mustMkdir(t *testing.T, parent, name string) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	require.NoError(t, os.Mkdir(dir, 0o700))
	return dir
}

// ownSocketDirs lists the socket directories in tmp other than except.
func ownSocketDirs(t *testing.T, tmp, except string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(tmp, "wpm-sockets-*"))
	require.NoError(t, err)
	var own []string
	for _, d := range dirs {
		if d != except {
			own = append(own, d)
		}
	}
	return own
}

func shutdown(t *testing.T, m *host.Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.Shutdown(ctx))
}
