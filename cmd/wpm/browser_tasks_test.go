package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dashboard's task views (tasks.js), driven in Chromium against a real
// bin/wpm serve on the shipped config, whose pool CPU runs cpuload.

// submitCPU submits an async task of pool CPU with body (and query, e.g.
// "&delay=1h") and returns its id.
func submitCPU(t *testing.T, s *wpmServer, body, query string) string {
	t.Helper()
	status, _, answer, err := postTask(s.url+"/v1/pools/CPU/tasks?async=true"+query, body)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, status, "%v", answer)
	return answer["id"].(string)
}

// waitTry is waitJS for an expr that may throw while the view is being
// drawn (an element not there yet): a throw counts as not yet.
func waitTry[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	return waitJS[T](t, ctx, what, "(()=>{try{return ("+expr+")}catch(e){return null}})()")
}

// listed is a script listing the task ids the list shows, in order.
const listed = `[...document.querySelectorAll('#task-list tr[data-task]')].map(r => r.dataset.task)`

// clickJS clicks the element sel, found as it is clicked: the views
// redraw their nodes, so one found first may be gone when chromedp
// clicks it.
func clickJS(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		found, err := chromedp.Evaluate[bool](fmt.Sprintf(`(()=>{const e=document.querySelector(%q); if (e) e.click(); return !!e})()`, sel))(ctx, tg)
		if err == nil && !found {
			err = fmt.Errorf("no element %s to click", sel)
		}
		return chromedp.Void{}, err
	}
}

// /ui/tasks lists tasks that ended before the page opened, newest first,
// pages through them with the cursor, filters them (the filter in the
// address), and shows new tasks and their ends live.
func TestBrowser_taskList(t *testing.T) {
	srv := startServe(t)
	var ids []string
	for range 30 {
		ids = append(ids, submitCPU(t, srv, `{"duration": 0}`, ""))
	}
	bad := submitCPU(t, srv, `{"duration": "abc"}`, "")
	for _, id := range ids {
		waitEnded(t, srv, id)
	}
	require.Equal(t, "failed", waitEnded(t, srv, bad)["state"])

	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/tasks")))
	first := waitTry[[]string](t, ctx, "the first page", `(()=>{const l=`+listed+`; return l.length === 25 ? l : null})()`)
	assert.Equal(t, bad, first[0], "newest first")
	assert.Equal(t, ids[29], first[1])
	assert.Equal(t, ids[6], first[24])
	waitTry[bool](t, ctx, "the failed task's row", fmt.Sprintf(`document.querySelector('#task-list tr[data-task=%q]').dataset.state === 'failed'`, bad))
	assert.Contains(t, text(t, ctx, fmt.Sprintf(`#task-list tr[data-task=%q] .err`, bad)), "invalid_task")
	screenshot(t, ctx, "ui-tasks")

	require.NoError(t, chromedp.Do(ctx, clickJS("#tasks-older")))
	second := waitTry[[]string](t, ctx, "the second page", `(()=>{const l=`+listed+`; return l.length === 6 ? l : null})()`)
	assert.Equal(t, []string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, second)
	assert.True(t, waitTry[bool](t, ctx, "no page after the last", `document.querySelector('#tasks-older').disabled`))
	require.NoError(t, chromedp.Do(ctx, clickJS("#tasks-newer")))
	waitTry[bool](t, ctx, "the first page again", fmt.Sprintf(`(`+listed+`)[0] === %q`, bad))

	// A filter through the form.
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue("#filter-state", "failed"), clickJS(`#task-filter button[type="submit"]`)))
	waitTry[bool](t, ctx, "only the failed task", fmt.Sprintf(`(()=>{const l=`+listed+`; return l.length === 1 && l[0] === %q})()`, bad))
	loc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname + location.search`))
	require.NoError(t, err)
	assert.Equal(t, "/ui/tasks?state=failed", loc)

	// Live: with no filter, a new task appears, runs and ends without a
	// reload.
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue("#filter-state", ""), clickJS(`#task-filter button[type="submit"]`)))
	waitTry[bool](t, ctx, "the whole list again", `(`+listed+`).length === 25`)
	live := submitCPU(t, srv, `{"duration": 2000}`, "")
	row := fmt.Sprintf(`document.querySelector('#task-list tr[data-task=%q]')`, live)
	waitTry[bool](t, ctx, "the new task running", fmt.Sprintf(`(()=>{const r=%s; return !!r && r.dataset.state === 'running'})()`, row))
	assert.Equal(t, live, waitTry[[]string](t, ctx, "the list", listed)[0])
	waitTry[bool](t, ctx, "the new task succeeded", fmt.Sprintf(`(()=>{const r=%s; return !!r && r.dataset.state === 'succeeded'})()`, row))

	// A row's link opens the task's view in the page.
	require.NoError(t, chromedp.Do(ctx, clickJS(fmt.Sprintf(`#task-list tr[data-task=%q] a`, bad))))
	waitTry[bool](t, ctx, "the task's view", fmt.Sprintf(`location.pathname === '/ui/tasks/%s' && !document.querySelector('#view-task').hidden && document.querySelector('#task-state').dataset.state === 'failed'`, bad))
}

// /ui/tasks/{id} follows a running task: its progress, its events, then
// its result and attempt; Run again makes a new task with the same input.
func TestBrowser_taskPage(t *testing.T) {
	srv := startServe(t)
	id := submitCPU(t, srv, `{"duration": 3000}`, "&priority=high")
	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/tasks/"+id)))
	first := waitTry[float64](t, ctx, "the task's progress",
		`(()=>{const p=document.querySelector('#task-progress'); const f=p ? +p.dataset.fraction : 0; return f > 0 && f < 0.9 ? f : 0})()`)
	waitTry[bool](t, ctx, "its started and progress events", `!!document.querySelector('#task-events tr[data-event="task.started"]') && !!document.querySelector('#task-events tr[data-event="task.progress"]')`)
	screenshot(t, ctx, "ui-task-running-view")
	later := waitTry[float64](t, ctx, "the progress rising",
		fmt.Sprintf(`(()=>{const p=document.querySelector('#task-progress'); const f=p ? +p.dataset.fraction : 0; return f > %g ? f : 0})()`, first))
	assert.Greater(t, later, first)
	waitTry[bool](t, ctx, "the task succeeded", `document.querySelector('#task-state').dataset.state === 'succeeded' && !!document.querySelector('#task-result')`)
	assert.Contains(t, text(t, ctx, "#task-result"), `"requestedMs": 3000`)
	assert.Contains(t, text(t, ctx, "#task-input"), `"duration": 3000`)
	assert.Contains(t, text(t, ctx, "#task-facts"), "high")
	waitTry[bool](t, ctx, "its finished event", `!!document.querySelector('#task-events tr[data-event="task.finished"]')`)
	attempt := text(t, ctx, `#task-attempts tbody tr`)
	assert.Contains(t, attempt, "ok")
	var rec taskRecord
	require.Equal(t, http.StatusOK, getJSON(t, srv.url+"/v1/tasks/"+id, &rec))
	assert.Contains(t, attempt, fmt.Sprint(rec.WorkerPID), "the attempt's worker")
	assert.True(t, waitTry[bool](t, ctx, "Cancel off for an ended task", `document.querySelector('#task-cancel').disabled && document.querySelector('#task-retry').disabled`))
	screenshot(t, ctx, "ui-task-view")

	require.NoError(t, chromedp.Do(ctx, clickJS("#task-again")))
	again := waitTry[string](t, ctx, "the new task's view",
		fmt.Sprintf(`(()=>{const m=location.pathname.match(/^\/ui\/tasks\/(.+)$/); return m && m[1] !== %q ? m[1] : ""})()`, id))
	waitTry[bool](t, ctx, "the new task running or done", `['running', 'succeeded'].includes(document.querySelector('#task-state').dataset.state)`)
	var rerun struct {
		Input    map[string]int
		Priority string
		Pool     string
		RetryOf  string
	}
	require.Equal(t, http.StatusOK, getJSON(t, srv.url+"/v1/tasks/"+again, &rerun))
	assert.Equal(t, map[string]int{"duration": 3000}, rerun.Input)
	assert.Equal(t, "high", rerun.Priority)
	assert.Equal(t, "CPU", rerun.Pool)
	assert.Empty(t, rerun.RetryOf, "run again is a new task, not a retry")
}

// Retry on a failed task opens its retry, which links back to it, and it
// to its retry; Cancel cancels a task that waits for its time.
func TestBrowser_taskRetryAndCancel(t *testing.T) {
	srv := startServe(t)
	bad := submitCPU(t, srv, `{"duration": "abc"}`, "")
	require.Equal(t, "failed", waitEnded(t, srv, bad)["state"])
	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/tasks/"+bad)))
	waitTry[bool](t, ctx, "the failed task and its error", `document.querySelector('#task-state').dataset.state === 'failed' && !!document.querySelector('#task-error')`)
	assert.Contains(t, text(t, ctx, "#task-error"), "invalid_task")
	assert.Contains(t, text(t, ctx, "#task-error"), `"duration" must be a whole number`)
	require.NoError(t, chromedp.Do(ctx, clickJS("#task-retry")))
	retry := waitTry[string](t, ctx, "the retry's view",
		fmt.Sprintf(`(()=>{const m=location.pathname.match(/^\/ui\/tasks\/(.+)$/); return m && m[1] !== %q && document.querySelector('#task-retry-of') ? m[1] : ""})()`, bad))
	assert.Equal(t, bad, text(t, ctx, "#task-retry-of"))
	var rec struct{ RetryOf string }
	require.Equal(t, http.StatusOK, getJSON(t, srv.url+"/v1/tasks/"+retry, &rec))
	assert.Equal(t, bad, rec.RetryOf)
	screenshot(t, ctx, "ui-task-retry")
	require.NoError(t, chromedp.Do(ctx, clickJS("#task-retry-of a")))
	waitTry[bool](t, ctx, "the first task, retried by the second", fmt.Sprintf(`location.pathname === '/ui/tasks/%s' && (document.querySelector('#task-retried-by') || {}).innerText === %q`, bad, retry))

	later := submitCPU(t, srv, `{"duration": 10}`, "&delay=1h")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/tasks/"+later)))
	waitTry[bool](t, ctx, "the delayed task, cancelable", `document.querySelector('#task-state').dataset.state === 'scheduled' && !document.querySelector('#task-cancel').disabled`)
	assert.Contains(t, text(t, ctx, "#task-facts"), "Runs at")
	require.NoError(t, chromedp.Do(ctx, clickJS("#task-cancel")))
	waitTry[bool](t, ctx, "the task canceled", `document.querySelector('#task-state').dataset.state === 'canceled'`)
	var canceled struct{ State string }
	require.Equal(t, http.StatusOK, getJSON(t, srv.url+"/v1/tasks/"+later, &canceled))
	assert.Equal(t, "canceled", canceled.State)
	// An unknown task says so.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/tasks/nope")))
	waitTry[bool](t, ctx, "the unknown task's error", `document.querySelector('#task-load-error').textContent.includes('nope')`)
}

// On a host of role api, which runs no pool, the dashboard shows the
// cluster's pools with the hosts that run them, pauses them for the
// cluster, and runs a task on one from the form.
func TestBrowser_clusterPoolsOnAPIHost(t *testing.T) {
	url := startNATS(t)
	clusterHost(t, url, "a", "all", hostAConfig)
	clusterHost(t, url, "b", "worker", hostBConfig)
	api := clusterHost(t, url, "c", "api", "pools: []")
	waitCluster(t, api, "a", "b", "c")

	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(api.url+"/ui/")))
	waitTry[bool](t, ctx, "pool S on hosts a and b, T on a",
		`document.querySelector('[data-pool="S"][data-cluster]').querySelectorAll('tr[data-host]').length === 2 &&
		 !!document.querySelector('[data-pool="S"] tr[data-host="a"]') && !!document.querySelector('[data-pool="S"] tr[data-host="b"]') &&
		 document.querySelector('[data-pool="S"] [data-hosts]').dataset.hosts === '2' &&
		 !!document.querySelector('[data-pool="T"][data-cluster] tr[data-host="a"]')`)
	screenshot(t, ctx, "ui-cluster-pools")

	require.NoError(t, chromedp.Do(ctx, clickJS(`[data-pool="S"] button[data-pause="pause"]`)))
	waitTry[bool](t, ctx, "S shown paused", `!!document.querySelector('[data-pool="S"] [data-paused]') && !!document.querySelector('[data-pool="S"] button[data-pause="resume"]')`)
	var pools struct {
		Cluster map[string]struct{ Paused bool }
	}
	require.Equal(t, http.StatusOK, getJSON(t, api.url+"/v1/pools", &pools))
	assert.True(t, pools.Cluster["S"].Paused)
	require.NoError(t, chromedp.Do(ctx, clickJS(`[data-pool="S"] button[data-pause="resume"]`)))
	waitTry[bool](t, ctx, "S shown resumed", `!document.querySelector('[data-pool="S"] [data-paused]')`)

	// The form offers the cluster's pools, and runs a task on one.
	waitTry[bool](t, ctx, "the form's choice of T, with its plugin", `document.querySelector('#run-target option[value="pool:T"]').textContent === 'T (misbehave)'`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue("#run-target", "pool:T"),
		chromedp.SetValue("#run-input", `{"fault": "sleep", "ms": 10}`),
		chromedp.Click("#run-button")))
	waitTry[bool](t, ctx, "the task's answer", `document.querySelector('#run-result').dataset.ok === 'true'`)
}

// A task whose worker crashes at each of its three attempts (two
// retries) shows the three attempts, each with its worker and cause, and
// the dead worker's last words.
func TestBrowser_taskAttempts(t *testing.T) {
	srv := startServeConfig(t, `
shutdown: {grace: 5s}
pools:
  - {name: M, plugin: misbehave, workers: 1, queueLimit: 8, retries: {max: 2, backoff: 100ms, maxBackoff: 200ms}}
`)
	status, _, answer, err := postTask(srv.url+"/v1/pools/M/tasks?async=true", `{"fault": "crash", "lines": ["the last words"]}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, status, "%v", answer)
	id := answer["id"].(string)
	require.Equal(t, "failed", waitEnded(t, srv, id)["state"])

	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/tasks/"+id)))
	causes := waitTry[[]string](t, ctx, "three attempts",
		`(()=>{const r=[...document.querySelectorAll('#task-attempts tbody tr')]; return r.length === 3 ? r.map(x => x.dataset.cause) : null})()`)
	assert.Equal(t, []string{"worker_crashed", "worker_crashed", "worker_crashed"}, causes)
	pids := waitTry[[]string](t, ctx, "the attempts' workers", `[...document.querySelectorAll('#task-attempts tbody tr td:nth-child(3)')].map(td => td.innerText)`)
	assert.Len(t, pids, 3)
	for _, pid := range pids {
		assert.Regexp(t, `^[1-9][0-9]*$`, pid, "each attempt names its worker")
	}
	assert.NotEqual(t, pids[0], pids[1], "a crashed worker is replaced")
	assert.Contains(t, text(t, ctx, "#task-error-detail"), "the last words")
	waitTry[bool](t, ctx, "every attempt's events", `document.querySelectorAll('#task-events tr[data-event="task.started"]').length === 3 && document.querySelectorAll('#task-events tr[data-event="task.finished"]').length === 3`)
	screenshot(t, ctx, "ui-task-attempts")
}

// A link to a task on a wpm with a token opens the token form, then the
// task: the views read the API with the token too.
func TestBrowser_taskLinkWithToken(t *testing.T) {
	const token = "task-link-token"
	srv := startServe(t, "WPM_HTTP_AUTHTOKEN="+token)
	req, err := http.NewRequest(http.MethodPost, srv.url+"/v1/pools/CPU/tasks?async=true", strings.NewReader(`{"duration": 10}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var a struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/tasks/"+a.ID), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token), chromedp.Click(`#login-form button[type="submit"]`)))
	waitTry[bool](t, ctx, "the task, read with the token", `!document.querySelector('#view-task').hidden && document.querySelector('#task-state').dataset.state === 'succeeded' && document.querySelector('#task-input').innerText.includes('"duration": 10')`)
	require.NoError(t, chromedp.Do(ctx, clickJS(`#nav a[data-view="tasks"]`)))
	waitTry[bool](t, ctx, "the list, read with the token", fmt.Sprintf(`(`+listed+`)[0] === %q`, a.ID))
}
