package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A wpm process that makes its own socket directory, $TMPDIR/wpm-sockets-*,
// claims it with an exclusive flock on a lock file inside it and holds the
// lock until Shutdown. A directory whose lock nobody holds belongs to a wpm
// that is gone, and the next one to start removes it. Locks, unlike pids,
// mean the same in every PID namespace that shares the temporary directory.
const (
	socketDirPrefix = "wpm-sockets-"
	stagingPrefix   = "." + socketDirPrefix // a directory being made
	socketLockName  = "wpm.lock"
	claimAttempts   = 5
	abandonedAfter  = time.Minute // a staging directory older than this was abandoned
)

// openSocketDir makes the directory workers put their sockets in and
// removes what dead workers of an earlier run left there. The default is a
// new $TMPDIR/wpm-sockets-<pid>-<random>, locked for the manager's life;
// the unlocked directories of wpm processes that are gone (killed before
// they could clean up) are removed first.
func (m *Manager) openSocketDir() error {
	dir := m.cfg.SocketDir
	if dir == "" {
		removeStaleSocketDirs(os.TempDir())
		var err error
		if dir, m.dirLock, err = claimSocketDir(os.TempDir()); err != nil {
			return fmt.Errorf("socket directory: %w", err)
		}
		m.ownSocket = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	stale, _ := filepath.Glob(filepath.Join(dir, "plugin-dir*"))
	for _, s := range stale {
		_ = os.RemoveAll(s)
	}
	m.socketDir = dir
	return nil
}

// releaseSocketDir removes the socket directory the manager made, then
// gives up its lock. It is for Shutdown, once every worker is gone.
func (m *Manager) releaseSocketDir() {
	_ = os.RemoveAll(m.socketDir)
	if m.dirLock != nil {
		_ = m.dirLock.Close() // closing the only fd releases the flock
	}
}

// removeStaleSocketDirs removes the socket directories in tmp whose lock
// no live wpm holds, and directories a wpm abandoned while making one.
func removeStaleSocketDirs(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, socketDirPrefix+"*"))
	staging, _ := filepath.Glob(filepath.Join(tmp, stagingPrefix+"*"))
	for _, d := range staging {
		if fi, err := os.Lstat(d); err == nil && time.Since(fi.ModTime()) > abandonedAfter {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		removeIfUnlocked(d)
	}
}

// removeIfUnlocked removes dir if it is a directory whose lock it can take.
// It removes it while holding the lock, so a wpm that holds its own lock
// never loses its directory.
func removeIfUnlocked(dir string) {
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return
	}
	lock, err := lockSocketDir(dir)
	if err != nil {
		return // in use, or not ours to judge
	}
	_ = os.RemoveAll(dir)
	_ = lock.Close()
}

// claimSocketDir makes a new socket directory in tmp and returns it with
// its held lock. The directory is made and locked under a staging name
// that cleanup leaves alone, then renamed: no other wpm sees it unlocked.
func claimSocketDir(tmp string) (string, *os.File, error) {
	var errs []error
	for range claimAttempts {
		staging, err := os.MkdirTemp(tmp, fmt.Sprintf("%s%d-", stagingPrefix, os.Getpid()))
		if err != nil {
			return "", nil, err
		}
		lock, err := lockSocketDir(staging)
		if err == nil {
			dir := filepath.Join(tmp, strings.TrimPrefix(filepath.Base(staging), "."))
			if err = os.Rename(staging, dir); err == nil {
				return dir, lock, nil
			}
			_ = lock.Close()
		}
		errs = append(errs, err)
		_ = os.RemoveAll(staging)
	}
	return "", nil, fmt.Errorf("claim a directory in %s: %w", tmp, errors.Join(errs...))
}

// lockSocketDir takes the exclusive lock of dir without waiting, creating
// its lock file if missing, and returns the open lock file. It fails if
// another process holds the lock, or if the lock file was removed or
// replaced before the lock was taken (the directory is then no one's).
func lockSocketDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, socketLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := sameFile(f, path); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// sameFile checks that path still names the open file f.
func sameFile(f *os.File, path string) error {
	held, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat lock: %w", err)
	}
	now, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("stat lock: %w", err)
	}
	if !os.SameFile(held, now) {
		return fmt.Errorf("lock %s was replaced", path)
	}
	return nil
}
