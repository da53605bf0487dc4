package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runtime.memoryLimit becomes wpm's own soft memory limit, as the Go
// runtime reports it in /metrics.
func TestServe_runtimeMemoryLimit(t *testing.T) {
	s := startServeConfig(t, misbehaveConfig, "WPM_RUNTIME_MEMORYLIMIT=300MiB")
	resp, err := http.Get(s.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(raw), "\ngo_gc_gomemlimit_bytes 3.145728e+08\n")
}

// The in-flight body budget against bin/wpm: 40 clients send 9.5 MB
// bodies at once against the default budget (256 MB). Every client reads a
// whole JSON answer, 200 or 503 overloaded (none a reset: a refused body is
// read and dropped), and wpm's peak resident memory (VmHWM) stays near the
// budget: 524 MiB before bodies were read into buffers of their exact size.
func TestServe_inflightBodyBudget(t *testing.T) {
	const size, clients, budget = 9_500_000, 40, 256_000_000
	s := startServeConfig(t, "pools:\n  - {name: M, plugin: misbehave, workers: 2, queueLimit: 64}\n")
	body := append(append([]byte(`{"fault":"sleep","ms":1,"lines":["`), bytes.Repeat([]byte("x"), size-40)...), `"]}`...)
	got := make(chan string, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() { got <- postOnce(s.url+"/v1/pools/M/tasks", body) })
	}
	wg.Wait()
	close(got)
	tally := map[string]int{}
	for g := range got {
		tally[g]++
	}
	assert.Equal(t, clients, tally["200"]+tally["503 overloaded"], "every client reads a 200 or a 503: %v", tally)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	require.NoError(t, err)
	hwm := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	require.NotNil(t, hwm, "%s", status)
	kb, err := strconv.Atoi(string(hwm[1]))
	require.NoError(t, err)
	t.Logf("answers %v; wpm's peak RSS (VmHWM) %d MiB against a budget of %d MiB", tally, kb>>10, budget>>20)
	assert.Less(t, kb<<10, budget+96<<20, "wpm's peak RSS stays near the budget")
}

// postOnce posts body to url on a connection of its own and says what came
// back: "<status> <error code>", or what went wrong.
func postOnce(url string, body []byte) string {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		msg := err.Error()
		return "error: " + msg[strings.LastIndex(msg, ": ")+2:] // the cause, not the addresses
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	var answer struct{ Error struct{ Code string } }
	switch {
	case err != nil:
		return fmt.Sprintf("%d, then reading: %v", resp.StatusCode, err)
	case json.Unmarshal(raw, &answer) != nil:
		return fmt.Sprintf("%d, not JSON: %.80q", resp.StatusCode, raw)
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, answer.Error.Code))
}
