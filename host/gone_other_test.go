//go:build !linux

package host_test

import (
	"time"

	"github.com/wpmdev/wpm/internal/testkit"
)

// waitGone can not wait for a process here; it reports whether pid is
// gone at once.
func waitGone(pid int, _ time.Duration) bool { return !testkit.Alive(pid) }
