package api

import (
	"fmt"
	"strconv"
)

// maxMemoryLimitMB is the largest memory limit, in MB, a caller may ask a
// one-shot for when oneShot.memoryLimitMB sets none: 1 PiB, more than any
// machine has, and far from overflowing the byte counts built from it.
const maxMemoryLimitMB = 1 << 30

// memoryLimitCap returns the largest memory limit a caller may ask for,
// and where that maximum comes from.
func (s *Server) memoryLimitCap() (maxMB int64, from string) {
	if s.opts.OneShotMemoryLimitMB > 0 {
		return int64(s.opts.OneShotMemoryLimitMB), "oneShot.memoryLimitMB, the most a caller may ask for"
	}
	return maxMemoryLimitMB, "1 PiB"
}

// memoryLimitMB checks n, a one-shot memory limit asked for as what (a
// query parameter or a field), and returns it.
func (s *Server) memoryLimitMB(what string, n int64) (int, error) {
	if maxMB, _ := s.memoryLimitCap(); n < 1 || n > maxMB {
		return 0, s.badMemoryLimit(what, strconv.FormatInt(n, 10))
	}
	return int(n), nil
}

// badMemoryLimit is the error of a memory limit asked for as what that is
// not a whole number of MB in range; got shows what the caller sent.
func (s *Server) badMemoryLimit(what, got string) error {
	maxMB, from := s.memoryLimitCap()
	return badRequest(fmt.Sprintf("%s must be a whole number of MB from 1 to %d (%s), got %s", what, maxMB, from, got))
}
