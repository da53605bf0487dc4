//go:build linux

package host_test

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// waitGone waits, at most d, for the process pid to exit, and reports
// whether it did. It waits on a pidfd, which becomes readable when the
// process exits; a pid that no longer names a process is gone.
func waitGone(pid int, d time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(time.Until(deadline).Milliseconds()))
		if errors.Is(err, unix.EINTR) && time.Now().Before(deadline) {
			continue
		}
		return err == nil && n > 0
	}
}
