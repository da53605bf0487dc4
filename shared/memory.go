package shared

import (
	"bytes"
	"os"
	"strconv"
)

// ResidentMemory returns the calling process's peak and current resident
// size in bytes, read from VmHWM and VmRSS in /proc/self/status, or zeros
// where that file does not exist (anything but Linux). Plugins use it to
// report what a task cost.
func ResidentMemory() (peak, current uint64) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	return statusBytes(status, "VmHWM"), statusBytes(status, "VmRSS")
}

// statusBytes returns the value of the line "key:   123 kB" of a
// /proc/PID/status file in bytes, or 0 if there is no such line.
func statusBytes(status []byte, key string) uint64 {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key+":"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0
		}
		kb, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}
