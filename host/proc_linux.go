//go:build linux

package host

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr starts a worker in its own process group, so killing the
// group also ends anything the plugin started, and with a parent-death
// signal, so the worker dies with the host even when the host is killed.
// The signal is SIGTERM, which shared.Serve turns into a SIGKILL of the
// plugin's whole group: a SIGKILL here would spare the plugin's children.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// killGroup sends SIGKILL to the process group led by pid. A group that is
// already gone is not an error.
func killGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	err := unix.Kill(-pid, unix.SIGKILL)
	if err != nil && err != unix.ESRCH {
		return fmt.Errorf("kill process group %d: %w", pid, err)
	}
	return nil
}

// limitData sets a hard RLIMIT_DATA on a started process at its current
// data size plus budget bytes. It must run after the Go runtime of the
// plugin has mapped its arenas: a limit set before exec stops it starting.
func limitData(pid int, budget uint64) error {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return fmt.Errorf("read worker status: %w", err)
	}
	vmData, err := statusKB(status, "VmData:")
	if err != nil {
		return err
	}
	limit := vmData*1024 + budget
	if err := unix.Prlimit(pid, unix.RLIMIT_DATA, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		return fmt.Errorf("set RLIMIT_DATA of %d: %w", pid, err)
	}
	return nil
}

// statusKB reads a "Key:   123 kB" field of /proc/PID/status.
func statusKB(status []byte, key string) (uint64, error) {
	i := bytes.Index(status, []byte(key))
	if i < 0 {
		return 0, fmt.Errorf("no %s in /proc status", key)
	}
	fields := bytes.Fields(status[i+len(key):])
	if len(fields) == 0 {
		return 0, fmt.Errorf("empty %s in /proc status", key)
	}
	return strconv.ParseUint(string(fields[0]), 10, 64)
}

// rssReader reads a process's resident set size from a kept-open
// /proc/PID/statm, which is several times cheaper than re-opening it.
type rssReader struct {
	f *os.File
}

func openRSS(pid int) (*rssReader, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return nil, err
	}
	return &rssReader{f: f}, nil
}

var pageSize = uint64(os.Getpagesize())

// read returns the resident set size in bytes. It is safe for concurrent
// use.
func (r *rssReader) read() (uint64, error) {
	var buf [128]byte
	n, err := r.f.ReadAt(buf[:], 0)
	if n == 0 && err != nil {
		return 0, err
	}
	fields := bytes.Fields(buf[:n])
	if len(fields) < 2 {
		return 0, fmt.Errorf("short statm %q", buf[:n])
	}
	pages, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * pageSize, nil
}

func (r *rssReader) close() error { return r.f.Close() }

// fileIdentity returns a file's inode and change time.
func fileIdentity(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d:%d.%d", st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
}
