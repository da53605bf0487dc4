//go:build linux

package main

import (
	"os/exec"
	"runtime"
	"sync"
)

// start starts cmd from one OS thread that never exits. Children get a
// parent-death signal (command), which Linux sends when the *thread* that
// started them exits, and the Go runtime may end threads: a wpm started
// from such a thread would be told to shut down in the middle of a case.
func start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	lockedThread()(func() { done <- cmd.Start() })
	return <-done
}

// lockedThread returns the function that runs jobs on the one locked
// thread, starting that thread on first use.
var lockedThread = sync.OnceValue(func() func(func()) {
	jobs := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the program
		for job := range jobs {
			job()
		}
	}()
	return func(job func()) { jobs <- job }
})
