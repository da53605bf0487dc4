//go:build linux

package host

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Nothing a plugin starts outlives it (issue 8 item 1). A worker leads its
// own process group, which wpm kills when the worker goes; a descendant
// that called setsid (or setpgid) has left that group. To find those, the
// first worker start makes wpm a child subreaper (PR_SET_CHILD_SUBREAPER):
// a descendant whose parent dies is re-parented to wpm instead of to init,
// so it shows up as a child of wpm that is none of its workers. Whenever a
// worker is reaped, sweepOrphans kills such children and reaps each by its
// pid (never wait4(-1), which would take exit statuses os/exec waits for).
//
// Why a subreaper and not a cgroup per worker: it needs no privilege, no
// delegated cgroup tree and no cgroup v2 (wpm runs as a plain user and in
// containers), costs one prctl, and the kernel does the tracking. Its cost:
// the setting is process-wide, and a child of the process that wpm did not
// start is told from an orphan only by its process group. Children the
// embedding program starts in its own process group (os/exec's default)
// are left alone; one started in a new process group is taken for an
// orphan once it is re-parented or started, so a program embedding host
// must not start such children of its own. A descendant that is
// re-parented while its worker lives is killed at the next sweep: it has
// no parent to end it.
var orphans = struct {
	once    sync.Once
	enabled bool

	forking sync.RWMutex // held for reading while a worker is started, for writing by a sweep
	mu      sync.Mutex   // guards workers
	workers map[int]struct{}

	sweeping sync.Mutex // one sweep at a time
}{workers: make(map[int]struct{})}

// becomeSubreaper makes this process a child subreaper, once. It is called
// before the first worker starts.
func becomeSubreaper() {
	orphans.once.Do(func() {
		orphans.enabled = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
	})
}

// startWorker runs start, which starts a worker process, and records the
// worker's pid (as pid returns it) before any sweep can see it.
func startWorker(start func() error, pid func() int) error {
	becomeSubreaper()
	orphans.forking.RLock()
	defer orphans.forking.RUnlock()
	if err := start(); err != nil {
		return err
	}
	orphans.mu.Lock()
	orphans.workers[pid()] = struct{}{}
	orphans.mu.Unlock()
	return nil
}

// workerReaped forgets a worker that os/exec has reaped, and ends what its
// death left behind.
func workerReaped(pid int) {
	orphans.mu.Lock()
	delete(orphans.workers, pid)
	orphans.mu.Unlock()
	sweepOrphans()
}

// sweepRounds bounds the sweeps of one call: killing an orphan re-parents
// its own children to wpm, which the next round finds.
const sweepRounds = 8

// orphanReapTimeout bounds the wait for one killed orphan.
const orphanReapTimeout = 2 * time.Second

// sweepOrphans kills the children of this process that are orphans of
// plugins and reaps them, until none is left.
func sweepOrphans() {
	if !orphans.enabled {
		return
	}
	orphans.sweeping.Lock()
	defer orphans.sweeping.Unlock()
	for range sweepRounds {
		kids := adoptedChildren()
		if len(kids) == 0 {
			return
		}
		for _, pid := range kids {
			_ = unix.Kill(pid, unix.SIGKILL) // our child: its pid is ours until we reap it
		}
		for _, pid := range kids {
			_ = reapChild(pid, orphanReapTimeout)
		}
	}
}

// adoptedChildren lists the children of this process that are not its
// live workers and are outside its own process group.
func adoptedChildren() []int {
	orphans.forking.Lock() // no worker is between its fork and its record
	defer orphans.forking.Unlock()
	self, group := os.Getpid(), unix.Getpgrp()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	orphans.mu.Lock()
	defer orphans.mu.Unlock()
	var kids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, worker := orphans.workers[pid]; worker {
			continue
		}
		if ppid, pgrp, ok := parentAndGroup(pid); ok && ppid == self && pgrp != group {
			kids = append(kids, pid)
		}
	}
	return kids
}

// parentAndGroup reads a process's parent pid and process group from
// /proc/PID/stat.
func parentAndGroup(pid int) (ppid, pgrp int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(b[i+1:]) // state ppid pgrp ...
	if len(fields) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(string(fields[1]))
	pgrp, err2 := strconv.Atoi(string(fields[2]))
	return ppid, pgrp, err1 == nil && err2 == nil
}

// reapChild waits, at most d, for the child pid to exit, and reaps it.
// The wait is on a pidfd, so it is bounded without polling.
func reapChild(pid int, d time.Duration) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds()))
		if errors.Is(err, unix.EINTR) && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for %d: %w", pid, err)
		}
		if n == 0 {
			return fmt.Errorf("%d did not exit within %s", pid, d)
		}
		break
	}
	var ws unix.WaitStatus
	_, err = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	return err
}
