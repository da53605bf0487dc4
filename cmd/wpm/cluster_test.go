package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Scale-out (docs/SCALING.md): a real NATS server in this process and
// three bin/wpm serve processes pointed at it, with different roles and
// pool sizes.

// startNATS runs a NATS server with JetStream on a free loopback port until
// the test ends, and returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	return startNATSServer(t).ClientURL()
}

// startNATSServer is startNATS returning the server.
func startNATSServer(t *testing.T) *server.Server {
	t.Helper()
	return startNATSServerOn(t, "127.0.0.1")
}

// startNATSServerOn is startNATSServer listening on address ip.
func startNATSServerOn(t *testing.T, ip string) *server.Server {
	t.Helper()
	return startNATSServerAt(t, ip, -1, t.TempDir())
}

// startNATSServerAt is startNATSServer listening on ip:port (-1: any
// free port) with its store in dir.
func startNATSServerAt(t *testing.T, ip string, port int, dir string) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "test", Host: ip, Port: port, JetStream: true,
		StoreDir: dir, NoSigs: true, NoLog: true,
	})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second), "NATS server not ready")
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// clusterHost starts bin/wpm serve named name with role on config, on NATS
// at url; a task that was running on a host that died runs again after 2 s.
func clusterHost(t *testing.T, url, name, role, config string, env ...string) *wpmServer {
	t.Helper()
	return startServeConfig(t, config, clusterEnv(url, name, role, env...)...)
}

// clusterEnv is the environment of a cluster host named name with role
// on NATS at url, then env.
func clusterEnv(url, name, role string, env ...string) []string {
	return append([]string{"WPM_NATS_URL=" + url, "WPM_NATS_NAME=" + name, "WPM_ROLE=" + role,
		"WPM_ASYNC_ACKWAIT=2s", "WPM_LOG_LEVEL=debug"}, env...)
}

// submitAsync submits n async tasks of pool S with body through host s
// and returns their ids.
func submitAsync(t *testing.T, s *wpmServer, n int, body string) []string {
	t.Helper()
	var ids []string
	for range n {
		status, _, answer, err := postTask(s.url+"/v1/pools/S/tasks?async=true", body)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status, "%v", answer)
		ids = append(ids, answer["id"].(string))
	}
	return ids
}

// The pools: S (sleep-bound tasks) on a (1 worker) and b (3 workers); T on
// a only.
const (
	hostAConfig = `
pools:
  - {name: S, plugin: misbehave, workers: 1, queueLimit: 64}
  - {name: T, plugin: misbehave, workers: 1, queueLimit: 64}
`
	hostBConfig = `
pools:
  - {name: S, plugin: misbehave, workers: 3, queueLimit: 64}
`
)

// clusterNames returns the names of the live hosts host s sees.
func clusterNames(t *testing.T, s *wpmServer) []string {
	t.Helper()
	resp, err := http.Get(s.url + "/v1/cluster")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var v struct{ Hosts []struct{ Name string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	names := []string{}
	for _, h := range v.Hosts {
		names = append(names, h.Name)
	}
	return names
}

// waitCluster waits until host s sees exactly the hosts names.
func waitCluster(t *testing.T, s *wpmServer, names ...string) {
	t.Helper()
	require.Eventually(t, func() bool { return fmt.Sprint(clusterNames(t, s)) == fmt.Sprint(names) },
		20*time.Second, 100*time.Millisecond, "the cluster never became %v (last %v)", names, clusterNames(t, s))
}

// postTask posts body to url and returns the status, the X-Wpm-Host
// header and the decoded answer.
func postTask(url, body string) (int, string, map[string]any, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, "", nil, fmt.Errorf("not JSON: %s", raw)
	}
	return resp.StatusCode, resp.Header.Get("X-Wpm-Host"), v, nil
}

func TestCluster_apiHostSpreadsByCapacity(t *testing.T) {
	url := startNATS(t)
	a := clusterHost(t, url, "a", "all", hostAConfig)
	b := clusterHost(t, url, "b", "worker", hostBConfig)
	c := clusterHost(t, url, "c", "api", "pools: []")
	waitCluster(t, c, "a", "b", "c")
	waitCluster(t, a, "a", "b", "c")

	// wpm status on any host shows the cluster's hosts.
	out, err := exec.Command(filepath.Join(binDir, "wpm"), "status", "--url", a.url).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "cluster")
	assert.Regexp(t, `a \(this\)\s+all`, string(out))
	assert.Regexp(t, `\bc\s+api`, string(out))
	t.Logf("wpm status:\n%s", out)

	// GET /v1/pools on the api host sums the pools over the hosts.
	resp, err := http.Get(c.url + "/v1/pools")
	require.NoError(t, err)
	var pools struct {
		Pools   []any
		Cluster map[string]struct{ Hosts, Workers, Capacity int }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&pools))
	resp.Body.Close()
	assert.Empty(t, pools.Pools, "the api host runs no pool")
	assert.Equal(t, 2, pools.Cluster["S"].Hosts)
	assert.Equal(t, 4, pools.Cluster["S"].Workers)
	assert.Equal(t, 1, pools.Cluster["T"].Workers)

	// The worker host serves only the probes and /metrics.
	resp, err = http.Get(b.url + "/v1/pools")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The api host runs nothing itself; 40 sleep-bound tasks at 8
	// connections go to a and b in proportion to their places (1 and 3).
	const n = 40
	var (
		mu    sync.Mutex
		count = map[string]int{}
		wg    sync.WaitGroup
		jobs  = make(chan struct{}, n)
	)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	for range 8 {
		wg.Go(func() {
			for range jobs {
				status, ran, body, err := postTask(c.url+"/v1/pools/S/tasks", `{"fault": "sleep", "ms": 200}`)
				if !assert.NoError(t, err) || !assert.Equal(t, http.StatusOK, status, "%v", body) {
					continue
				}
				mu.Lock()
				count[ran]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("tasks by host: %v", count)
	assert.Equal(t, n, count["a"]+count["b"], "every task ran on a or b: %v", count)
	assert.Greater(t, count["b"], 3*count["a"]/2, "b has three times a's places: %v", count)
	assert.Positive(t, count["a"])

	// The seed's endpoint through the api host, and a pool nobody runs.
	status, ran, body, err := postTask(c.url+"/example/pool", `{"poolName": "T", "workerTask": {"fault": "echo"}}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, "a", ran, "only a runs T")
	assert.Equal(t, "workDone", body["type"])
	status, ran, body, err = postTask(c.url+"/v1/plugins/misbehave/run", `{"fault": "echo"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "a one-shot through the api host: %v", body)
	assert.Contains(t, []string{"a", "b"}, ran)
	status, _, body, err = postTask(c.url+"/v1/pools/nope/tasks", `{}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "unknown_pool", body["error"].(map[string]any)["code"])
}

func TestCluster_hostKilledLosesNothing(t *testing.T) {
	url := startNATS(t)
	a := clusterHost(t, url, "a", "all", hostAConfig)
	clusterHost(t, url, "b", "worker", hostBConfig)
	c := clusterHost(t, url, "c", "api", "pools: []")
	waitCluster(t, c, "a", "b", "c")

	// Async tasks queued and running on both hosts, and a sync caller
	// waiting on a task that only a runs.
	ids := submitAsync(t, c, 12, `{"fault": "sleep", "ms": 1500}`)
	type answer struct {
		status int
		code   string
		took   time.Duration
	}
	waiting := make(chan answer, 1)
	go func() {
		start := time.Now()
		status, _, body, err := postTask(c.url+"/v1/pools/T/tasks", `{"fault": "sleep", "ms": 60000}`)
		a := answer{status: status, took: time.Since(start)}
		if err == nil && body["error"] != nil {
			a.code, _ = body["error"].(map[string]any)["code"].(string)
		}
		waiting <- a
	}()
	require.Eventually(t, func() bool { return runningOn(t, c, ids, "a") }, 20*time.Second, 50*time.Millisecond,
		"no async task ever ran on a")
	time.Sleep(300 * time.Millisecond) // the sync task on T reaches a's worker
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))

	// a drops out of the cluster; the sync caller gets a clear 502.
	waitCluster(t, c, "b", "c")
	select {
	case got := <-waiting:
		assert.Equal(t, http.StatusBadGateway, got.status)
		assert.Equal(t, "worker_crashed", got.code)
		t.Logf("the sync caller on the dead host answered in %s", got.took)
	case <-time.After(30 * time.Second):
		t.Fatal("the sync caller waiting on the dead host never got an answer")
	}

	// Every async task ends succeeded, those that ran on a after a second
	// attempt on b.
	again := 0
	for _, id := range ids {
		rec := waitEnded(t, c, id)
		assert.Equal(t, "succeeded", rec["state"], "%v", rec)
		if rec["attempts"].(float64) > 1 {
			again++
			assert.Equal(t, "b", rec["host"])
			// Its attempt on a was found open when b started it again.
			hist, _ := rec["history"].([]any)
			require.Len(t, hist, int(rec["attempts"].(float64)), "%v", rec)
			lost, _ := hist[len(hist)-2].(map[string]any)
			assert.Equal(t, "a", lost["host"], "%v", rec)
			assert.Equal(t, "lost", lost["cause"], "%v", rec)
		}
	}
	assert.Positive(t, again, "the tasks a ran were run again")

	// A host that joins shows up.
	clusterHost(t, url, "d", "worker", hostBConfig)
	waitCluster(t, c, "b", "c", "d")
}

// getRecord returns async task id's record as host s shows it.
func getRecord(t *testing.T, s *wpmServer, id string) map[string]any {
	t.Helper()
	resp, err := http.Get(s.url + "/v1/tasks/" + id)
	require.NoError(t, err)
	defer resp.Body.Close()
	var rec map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rec))
	return rec
}

// waitEnded waits until async task id has ended and returns its record.
func waitEnded(t *testing.T, s *wpmServer, id string) map[string]any {
	t.Helper()
	var rec map[string]any
	require.Eventually(t, func() bool {
		rec = getRecord(t, s, id)
		return rec["state"] == "succeeded" || rec["state"] == "failed" || rec["state"] == "canceled"
	}, 60*time.Second, 100*time.Millisecond, "task %s never ended", id)
	return rec
}

// runningOn reports whether one of the tasks ids runs on the host named
// name.
func runningOn(t *testing.T, s *wpmServer, ids []string, name string) bool {
	for _, id := range ids {
		rec := getRecord(t, s, id)
		if rec["state"] == "running" && rec["host"] == name {
			return true
		}
	}
	return false
}

// A NATS outage: async submits answer 503 at once, local sync tasks go on.
// A NATS server that goes away, then restarts on its store: meanwhile the
// api host, whose view is stale, answers 503 with Retry-After (not 404
// unknown_pool, nor 500 with NATS's text); once it is back, within a few
// seconds, the hosts see each other again (their in-memory bucket is made
// again) and forwarding works.
func TestCluster_natsRestart(t *testing.T) {
	dir := t.TempDir()
	_, portText, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	port, err := strconv.Atoi(portText)
	require.NoError(t, err)
	ns := startNATSServerAt(t, "127.0.0.1", port, dir)
	a := clusterHost(t, ns.ClientURL(), "a", "all", hostAConfig)
	c := clusterHost(t, ns.ClientURL(), "c", "api", "pools: []")
	waitCluster(t, c, "a", "c")
	done := submitAsync(t, c, 1, `{"fault": "echo"}`)[0]
	waitEnded(t, c, done)

	ns.Shutdown()
	ns.WaitForShutdown()
	time.Sleep(5 * time.Second) // past the hosts' TTL: c's view is stale
	for _, req := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/pools/S/tasks", `{"fault": "echo"}`},
		{http.MethodPost, "/v1/pools/S/tasks?async=true", `{"fault": "echo"}`},
		{http.MethodGet, "/v1/tasks", ""},
		{http.MethodGet, "/v1/tasks/" + done, ""},
		{http.MethodDelete, "/v1/tasks/" + done, ""},
	} {
		r, err := http.NewRequest(req.method, c.url+req.path, strings.NewReader(req.body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s %s: %s", req.method, req.path, raw)
		assert.Contains(t, string(raw), `"code":"async_unavailable"`, "%s %s", req.method, req.path)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"), "%s %s", req.method, req.path)
	}

	restarted := time.Now()
	startNATSServerAt(t, "127.0.0.1", port, dir)
	waitCluster(t, c, "a", "c")
	waitCluster(t, a, "a", "c")
	t.Logf("the cluster view is whole again %s after the restart", time.Since(restarted).Round(100*time.Millisecond))
	require.Eventually(t, func() bool {
		status, ran, _, err := postTask(c.url+"/v1/pools/S/tasks", `{"fault": "echo"}`)
		return err == nil && status == http.StatusOK && ran == "a"
	}, 15*time.Second, 200*time.Millisecond, "forwarding works again")
	assert.Equal(t, "succeeded", getRecord(t, c, done)["state"], "the record survived the restart")
}

func TestCluster_natsOutage(t *testing.T) {
	ns := startNATSServer(t)
	a := clusterHost(t, ns.ClientURL(), "a", "all", hostAConfig)
	waitCluster(t, a, "a")
	ns.Shutdown()
	ns.WaitForShutdown()

	start := time.Now()
	status, _, body, err := postTask(a.url+"/v1/pools/S/tasks?async=true", `{"fault": "echo"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, status, "%v", body)
	assert.Equal(t, "async_unavailable", body["error"].(map[string]any)["code"])
	assert.Less(t, time.Since(start), 3*time.Second, "answered at once, not after a timeout")

	status, ran, body, err := postTask(a.url+"/v1/pools/S/tasks", `{"fault": "echo"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "%v", body)
	assert.Empty(t, ran, "a local task is not forwarded")
}

// startNATSCluster runs three NATS servers clustered with JetStream until
// the test ends, waits for their meta leader, and returns them.
func startNATSCluster(t *testing.T) []*server.Server {
	t.Helper()
	ports := make([]string, 3)
	for i := range ports {
		_, ports[i], _ = net.SplitHostPort(freeAddr(t))
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://127.0.0.1:"+p)
	}
	servers := make([]*server.Server, 3)
	for i := range servers {
		port, _ := strconv.Atoi(ports[i])
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "wpm", Host: "127.0.0.1", Port: port},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		require.NoError(t, err)
		go ns.Start()
		servers[i] = ns
		t.Cleanup(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
	}
	for _, ns := range servers {
		require.True(t, ns.ReadyForConnections(10*time.Second))
		require.Eventually(t, func() bool { return ns.Healthz(nil).Status == "ok" }, 30*time.Second, 100*time.Millisecond,
			"JetStream never became ready on %s", ns.Name())
	}
	return servers
}

// One NATS server of three goes, with replicas 3: nothing accepted is lost.
func TestCluster_natsServerLost(t *testing.T) {
	servers := startNATSCluster(t)
	var urls []string
	for _, ns := range servers {
		urls = append(urls, ns.ClientURL())
	}
	url := strings.Join(urls, ",")
	clusterHost(t, url, "a", "all", hostAConfig, "WPM_NATS_REPLICAS=3")
	clusterHost(t, url, "b", "worker", hostBConfig, "WPM_NATS_REPLICAS=3")
	c := clusterHost(t, url, "c", "api", "pools: []", "WPM_NATS_REPLICAS=3")
	waitCluster(t, c, "a", "b", "c")

	ids := submitAsync(t, c, 12, `{"fault": "sleep", "ms": 1000}`)
	servers[1].Shutdown()
	servers[1].WaitForShutdown()

	for _, id := range ids {
		rec := waitEnded(t, c, id)
		assert.Equal(t, "succeeded", rec["state"], "%v", rec)
	}
	// The two servers left go on taking tasks.
	var status int
	require.Eventually(t, func() bool {
		status, _, _, _ = postTask(c.url+"/v1/pools/S/tasks", `{"fault": "echo"}`)
		return status == http.StatusOK
	}, 30*time.Second, 200*time.Millisecond, "no sync task after the server loss (last %d)", status)
}

// A forwarded sync task answers as a local one: a 2 MiB result, over the
// NATS server's 1 MB max_payload and async.maxResultBytes, is 200 with the
// same bytes through the api host as on the host that runs the pool, and a
// crash's detail comes along.
func TestCluster_forwardedLargeResult(t *testing.T) {
	url := startNATS(t)
	a := clusterHost(t, url, "a", "all", hostAConfig)
	c := clusterHost(t, url, "c", "api", "pools: []")
	waitCluster(t, c, "a", "c")
	const body = `{"fault": "big", "mb": 2}`
	status, ran, local, err := postTask(a.url+"/v1/pools/S/tasks", body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	assert.Empty(t, ran)
	status, ran, forwarded, err := postTask(c.url+"/v1/pools/S/tasks", body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "%.300v", forwarded)
	assert.Equal(t, "a", ran)
	assert.Equal(t, local["result"].(map[string]any)["data"], forwarded["result"].(map[string]any)["data"])
	assert.Len(t, forwarded["result"].(map[string]any)["data"], 2<<20)

	// A worker that dies on the other host: its last words reach the
	// caller, as they do locally.
	status, _, crashed, err := postTask(c.url+"/v1/pools/S/tasks", `{"fault": "crash", "lines": ["last words before the crash"]}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadGateway, status, "%v", crashed)
	assert.Equal(t, "worker_crashed", crashed["error"].(map[string]any)["code"])
	assert.Contains(t, crashed["error"].(map[string]any)["detail"], "last words before the crash")

	status, _, seed, err := postTask(c.url+"/example/pool", `{"poolName": "S", "workerTask": `+body+`}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "%.300v", seed)
	assert.Len(t, seed["data"].(map[string]any)["data"], 2<<20)
}

// Any host streams any task's events: an async task submitted through the
// api host, run on a, streams from c to its task.finished; on a host that
// joined after the task ended, the stream is the record's task.finished.
func TestCluster_taskEventsFromAnyHost(t *testing.T) {
	url := startNATS(t)
	a := clusterHost(t, url, "a", "all", hostAConfig)
	c := clusterHost(t, url, "c", "api", "pools: []")
	waitCluster(t, c, "a", "c")
	waitCluster(t, a, "a", "c")
	id := submitAsync(t, c, 1, `{"fault": "sleep", "ms": 800}`)[0]
	types := taskEventTypes(t, c, id)
	assert.Contains(t, types, "task.started")
	require.NotEmpty(t, types)
	assert.Equal(t, "task.finished", types[len(types)-1], "%v", types)

	d := clusterHost(t, url, "d", "api", "pools: []")
	assert.Equal(t, []string{"task.finished"}, taskEventTypes(t, d, id))
}

// wpm tasks wait against the api host shows the progress of a task that
// runs on a worker host: the worker shares its task events over NATS, and
// the api host's /v1/tasks/{id}/events streams them.
func TestCluster_tasksWaitShowsRemoteProgress(t *testing.T) {
	url := startNATS(t)
	c := clusterHost(t, url, "c", "api", "pools: []")
	// b starts second: its first look at the cluster, at its start, sees
	// c (a worker host has no /v1/cluster to ask).
	clusterHost(t, url, "b", "worker", "pools:\n  - {name: CPU, plugin: cpuload, workers: 1}\n")
	waitCluster(t, c, "b", "c")
	out := waitShowsProgress(t, c.url, "CPU", `{"duration": 1500}`)
	var rec struct {
		State string `json:"state"`
		Host  string `json:"host"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rec), out)
	assert.Equal(t, "succeeded", rec.State)
	assert.Equal(t, "b", rec.Host, "the task ran on the worker host")
}

// taskEventTypes reads GET /v1/tasks/{id}/events on s to its end (at most
// 20 s) and returns the events' types.
func taskEventTypes(t *testing.T, s *wpmServer, id string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/tasks/"+id+"/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var types []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if typ, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			types = append(types, typ)
		}
	}
	require.NoError(t, ctx.Err(), "the stream ended by itself; got %v", types)
	return types
}

// A second host under a live host's nats.name is refused at start, naming
// the key; the first host goes on.
func TestCluster_sameNameRefused(t *testing.T) {
	url := startNATS(t)
	a := clusterHost(t, url, "a", "all", hostAConfig)
	waitCluster(t, a, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "wpm"), "serve", "--config", configFile(t, hostBConfig),
		"--addr", freeAddr(t), "--plugins-dir", filepath.Join(binDir, "plugins"))
	cmd.Env = append(append(os.Environ(), "WPM_NATS_STOREDIR="+t.TempDir()), clusterEnv(url, "a", "worker")...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, string(out), "nats.name")
	assert.Contains(t, string(out), "is live")
	waitCluster(t, a, "a")
	status, _, body, err := postTask(a.url+"/v1/pools/S/tasks", `{"fault": "echo"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "%v", body)
}
