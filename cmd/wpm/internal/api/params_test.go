package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A one-shot's memory limit must be a whole number of MB no higher than
// oneShot.memoryLimitMB; values that used to overflow into a malformed
// GOMEMLIMIT (502) are 400s naming the parameter and the range.
func TestAPI_memoryLimit_range(t *testing.T) {
	s := newServer(t, withOneShotMemoryLimit(512))
	for _, v := range []string{"17592186044416", "9223372036854775807", "99999999999999999999", "513", "0", "1.5"} {
		a := s.post(t, "/v1/plugins/cpuload/run?memoryLimitMB="+v, `{"duration": 1}`)
		requireError(t, a, http.StatusBadRequest, "bad_request")
		assert.Contains(t, a.Raw, "memoryLimitMB must be a whole number of MB from 1 to 512 (oneShot.memoryLimitMB", v)

		a = s.post(t, "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {"duration": 1}, "workerMemoryLimit": `+v+`}`)
		requireError(t, a, http.StatusBadRequest, "bad_request")
		assert.Contains(t, a.Raw, "workerMemoryLimit", v)
	}
	a := s.post(t, "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {}, "workerMemoryLimit": 513}`)
	assert.Contains(t, a.Raw, "from 1 to 512", "the message names the maximum")
	a = s.post(t, "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {}, "workerMemoryLimit": 1.5}`)
	assert.Contains(t, a.Raw, `"workerMemoryLimit\" must be a whole number, got number 1.5`)

	a = s.post(t, "/v1/plugins/cpuload/run?memoryLimitMB=512", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	a = s.post(t, "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {"duration": 1}, "workerMemoryLimit": 512}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
}

// Without a configured maximum, the limit still has a range.
func TestAPI_memoryLimit_rangeWithoutMaximum(t *testing.T) {
	s := newServer(t, withOneShotMemoryLimit(0))
	a := s.post(t, "/v1/plugins/cpuload/run?memoryLimitMB=17592186044416", `{"duration": 1}`)
	requireError(t, a, http.StatusBadRequest, "bad_request")
	assert.Contains(t, a.Raw, "from 1 to 1073741824 (1 PiB)")
	a = s.post(t, "/v1/plugins/cpuload/run?memoryLimitMB=4097", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
}
