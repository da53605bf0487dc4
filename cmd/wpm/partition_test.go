//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Partitions (make chaos, docs/RELIABILITY.md): NATS in the root network
// namespace on the root end of a veth pair, a worker host in a namespace
// of its own behind that pair, a second worker host and an api host in
// the root namespace. The pair is cut while the host inside runs tasks,
// longer than async.ackWait and the hosts' TTL, then healed.

// partitionedConfig is the pools of the host that is cut off: two places
// for sleep-bound tasks, so that it is mid-task when cut.
const partitionedConfig = `
pools:
  - {name: S, plugin: misbehave, workers: 2, queueLimit: 64}
`

// partitionCluster is NATS, host a inside namespace n, worker host b and
// api host c, all seen by c.
type partitionCluster struct {
	n       *netns
	url     string // NATS
	a, b, c *wpmServer
}

// startPartitionCluster starts a partitionCluster with bConfig as b's
// pools; b is left out when bConfig is empty (the test starts it later).
func startPartitionCluster(t *testing.T, bConfig string) *partitionCluster {
	t.Helper()
	requireRootNet(t)
	pc := &partitionCluster{n: newNetns(t)}
	pc.url = startNATSServerOn(t, pc.n.rootIP).ClientURL()
	url := pc.url
	pc.a = startServeAt(t, pc.n.nsIP+":3000", pc.n.exec(), partitionedConfig, clusterEnv(url, "a", "worker")...)
	pc.c = clusterHost(t, url, "c", "api", "pools: []")
	if bConfig != "" {
		pc.b = clusterHost(t, url, "b", "worker", bConfig)
		waitCluster(t, pc.c, "a", "b", "c")
	} else {
		waitCluster(t, pc.c, "a", "c")
	}
	return pc
}

// markedTask is an async task whose every run appends a line to mark.
type markedTask struct {
	id, mark string
}

// submitMarked submits n sleep-bound tasks of ms through host s, each
// marking its runs in a file of its own under dir.
func submitMarked(t *testing.T, s *wpmServer, dir string, n int, ms int) []markedTask {
	t.Helper()
	var tasks []markedTask
	for i := range n {
		mark := filepath.Join(dir, fmt.Sprintf("task-%d", i))
		ids := submitAsync(t, s, 1, fmt.Sprintf(`{"fault": "sleep", "ms": %d, "mark": %q}`, ms, mark))
		tasks = append(tasks, markedTask{id: ids[0], mark: mark})
	}
	return tasks
}

// runs returns the pids of the worker processes that started task mt, one
// per start, and when the first one started.
func (mt markedTask) runs(t *testing.T) ([]int, time.Time) {
	t.Helper()
	raw, err := os.ReadFile(mt.mark)
	if os.IsNotExist(err) {
		return nil, time.Time{}
	}
	require.NoError(t, err)
	var (
		pids  []int
		first time.Time
	)
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		pid, at, ok := strings.Cut(line, " ")
		require.True(t, ok, "mark line %q", line)
		n, err := strconv.Atoi(pid)
		require.NoError(t, err)
		pids = append(pids, n)
		if first.IsZero() {
			first, err = time.Parse(time.RFC3339Nano, at)
			require.NoError(t, err)
		}
	}
	return pids, first
}

// checkRuns asserts that the ended record rec of mt shows as many
// attempts as mt really started, and a result from one of those runs; it
// returns the number of runs.
func checkRuns(t *testing.T, mt markedTask, rec map[string]any) int {
	t.Helper()
	pids, _ := mt.runs(t)
	attempts, _ := rec["attempts"].(float64)
	assert.Equal(t, len(pids), int(attempts), "task %s started %d times (worker pids %v) but its record says attempts %v: %v",
		mt.id, len(pids), pids, rec["attempts"], rec)
	if result, ok := rec["result"].(map[string]any); ok {
		pid, _ := result["pid"].(float64)
		assert.Contains(t, pids, int(pid), "task %s's result comes from a run that never started: %v", mt.id, rec)
	}
	return len(pids)
}

func TestPartition_workerHostCutOffAndHealed(t *testing.T) {
	pc := startPartitionCluster(t, hostBConfig)
	const (
		n       = 20
		ms      = 1500
		cutHold = 6 * time.Second // > async.ackWait (2 s) and the hosts' TTL (4 s)
	)
	tasks := submitMarked(t, pc.c, t.TempDir(), n, ms)
	ids := make([]string, n)
	for i, mt := range tasks {
		ids[i] = mt.id
	}
	require.Eventually(t, func() bool { return runningOn(t, pc.c, ids, "a") }, 20*time.Second, 20*time.Millisecond,
		"no task ever ran on a")

	cutAt := time.Now()
	pc.n.cut(t)
	var onA []string // the tasks a was running when cut off, as the api host saw them
	for _, id := range ids {
		if rec := getRecord(t, pc.c, id); rec["state"] == "running" && rec["host"] == "a" {
			onA = append(onA, id)
		}
	}
	waitCluster(t, pc.c, "b", "c")
	t.Logf("a dropped out of the cluster view %s after the cut", time.Since(cutAt).Round(time.Millisecond))
	time.Sleep(time.Until(cutAt.Add(cutHold)))
	// Heal once what a was running has ended elsewhere: a's stale ends
	// then meet ended records (a stale end over a run still going on is
	// TestPartition_staleEndWhileRunningElsewhere).
	for _, id := range onA {
		require.Eventually(t, func() bool { return getRecord(t, pc.c, id)["state"] == "succeeded" }, 20*time.Second,
			50*time.Millisecond, "task %s, cut off on a, never ended elsewhere", id)
	}
	pc.n.heal(t)
	healAt := time.Now()
	waitCluster(t, pc.c, "a", "b", "c")
	rejoin := time.Since(healAt)
	assert.Less(t, rejoin, 10*time.Second, "a rejoins the cluster within a few seconds of the heal")

	// Every accepted task ends succeeded, its attempts equal to its runs.
	var (
		succeeded, again, maxAttempts, runs, attempts int
		ended                                         = map[string]map[string]any{}
	)
	deadline := time.Now().Add(60 * time.Second)
	for _, mt := range tasks {
		var rec map[string]any
		require.Eventually(t, func() bool {
			rec = getRecord(t, pc.c, mt.id)
			return rec["state"] == "succeeded" || rec["state"] == "failed" || rec["state"] == "canceled"
		}, max(time.Until(deadline), time.Second), 100*time.Millisecond, "task %s never ended (last %v)", mt.id, rec)
		ended[mt.id] = rec
		if assert.Equal(t, "succeeded", rec["state"], "%v", rec) {
			succeeded++
		}
		runs += checkRuns(t, mt, rec)
		a := int(rec["attempts"].(float64))
		attempts += a
		maxAttempts = max(maxAttempts, a)
		if a > 1 {
			again++
		}
	}
	allEnded := time.Since(healAt)
	for _, id := range onA {
		assert.GreaterOrEqual(t, ended[id]["attempts"], 2.0, "task %s was running on a when it was cut off: %v", id, ended[id])
	}
	assert.Positive(t, again, "the tasks a was running when cut off ran again")

	// Nothing changes afterwards: a's stale ends, written once it is back,
	// do not overwrite an end recorded elsewhere.
	time.Sleep(4 * time.Second)
	for _, mt := range tasks {
		rec := getRecord(t, pc.c, mt.id)
		assert.Equal(t, ended[mt.id]["state"], rec["state"], "task %s changed after its end: %v", mt.id, rec)
		assert.Equal(t, ended[mt.id]["attempts"], rec["attempts"], "task %s changed after its end: %v", mt.id, rec)
		assert.Equal(t, ended[mt.id]["host"], rec["host"], "task %s changed after its end: %v", mt.id, rec)
		assert.Equal(t, ended[mt.id]["finishedAt"], rec["finishedAt"], "task %s changed after its end: %v", mt.id, rec)
	}

	report := fmt.Sprintf(`| figure | value |
|---|---|
| tasks accepted | %d |
| succeeded | %d |
| lost (accepted, never succeeded) | %d |
| running on the cut-off host at the cut | %d |
| ran more than once | %d |
| max attempts | %d |
| runs seen by the plugin / attempts recorded | %d / %d |
| cut held | %s |
| heal to back in the cluster view | %s |
| heal to every task ended | %s |
`, n, succeeded, n-succeeded, len(onA), again, maxAttempts, runs, attempts,
		cutHold, rejoin.Round(10*time.Millisecond), allEnded.Round(10*time.Millisecond))
	t.Logf("partition figures:\n%s", report)
	if path := os.Getenv("WPMTEST_CHAOS_REPORT"); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(report), 0o644))
	}
}

// A task ends on the cut-off host while another host runs it again after
// async.ackWait; the link heals while that second run goes on. The stale
// end, written once the link is back, must not take the place of the run
// in progress: the record ends with the second run, attempts 2.
//
// Known bug, skipped until fixed: async's save (runner.go), on a revision
// conflict, re-reads the record and writes again over any record not
// ended, so a's stale end replaces b's running record (host a, attempts
// 1, though the task started twice), and finish then acknowledges a's
// old delivery while b still runs the task.
func TestPartition_staleEndWhileRunningElsewhere(t *testing.T) {
	pc := startPartitionCluster(t, "")
	const ms = 6000
	mt := submitMarked(t, pc.c, t.TempDir(), 1, ms)[0]
	var aStart time.Time
	require.Eventually(t, func() bool { _, aStart = mt.runs(t); return !aStart.IsZero() }, 20*time.Second, 20*time.Millisecond,
		"the task never started on a")
	pc.b = clusterHost(t, pc.url, "b", "worker", hostBConfig)
	waitCluster(t, pc.c, "a", "b", "c")
	require.Less(t, time.Since(aStart), ms*time.Millisecond-3*time.Second,
		"b took too long to start: a would end its run before the cut")
	pc.n.cut(t)

	// a ends its run cut off; b runs the task again; heal while b runs.
	var pids []int
	require.Eventually(t, func() bool { pids, _ = mt.runs(t); return len(pids) >= 2 }, 20*time.Second, 20*time.Millisecond,
		"the task never ran again while a was cut off")
	time.Sleep(time.Until(aStart.Add(ms*time.Millisecond + 500*time.Millisecond)))
	rec := getRecord(t, pc.c, mt.id)
	require.Equal(t, "running", rec["state"], "b still runs the task at the heal: %v", rec)
	require.Equal(t, "b", rec["host"], "b still runs the task at the heal: %v", rec)
	pc.n.heal(t)

	rec = waitEnded(t, pc.c, mt.id)
	assert.Equal(t, "succeeded", rec["state"], "%v", rec)
	checkRuns(t, mt, rec)
	assert.Equal(t, "b", rec["host"], "the end recorded is b's run, not a's stale one: %v", rec)
}
