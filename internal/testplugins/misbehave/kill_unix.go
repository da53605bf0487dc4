//go:build unix

package main

import (
	"os"
	"syscall"
)

// killSelf sends SIGKILL to this process.
func killSelf() error {
	return syscall.Kill(os.Getpid(), syscall.SIGKILL)
}
