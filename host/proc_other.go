//go:build !linux

package host

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr starts a worker in its own process group. Without Linux's
// parent-death signal a worker may outlive a host that is killed.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// limitData is not supported here: memory is bounded by the watchdog alone.
func limitData(int, uint64) error { return nil }

// rssReader is unavailable here; reads report an error and the watchdog
// stays idle.
type rssReader struct{}

func openRSS(int) (*rssReader, error) { return nil, os.ErrNotExist }

func (r *rssReader) read() (uint64, error) { return 0, os.ErrNotExist }

func (r *rssReader) close() error { return nil }

// fileIdentity is empty where inode and change time are not at hand.
func fileIdentity(os.FileInfo) string { return "" }

// startWorker runs start; without a subreaper there is nothing to record.
func startWorker(start func() error, _ func() int) error { return start() }

// workerReaped does nothing here: a descendant that left the worker's
// process group may outlive it.
func workerReaped(int) {}
