package shared

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStatusBytes(t *testing.T) {
	status := []byte("Name:\tmemusage\nVmPeak:\t  900 kB\nVmHWM:\t   70000 kB\nVmRSS:\t   65536 kB\nThreads:\t5\n")
	assert.EqualValues(t, 70000<<10, statusBytes(status, "VmHWM"))
	assert.EqualValues(t, 64<<20, statusBytes(status, "VmRSS"))
	assert.Zero(t, statusBytes(status, "VmSwap"), "missing line")
	assert.Zero(t, statusBytes(status, "Threads"), "not in kB")
	assert.Zero(t, statusBytes([]byte("VmRSS:\tlots kB\n"), "VmRSS"))
}

func TestResidentMemory(t *testing.T) {
	peak, current := ResidentMemory()
	assert.Positive(t, current)
	assert.GreaterOrEqual(t, peak, current)
}
