package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// The dashboard's tests drive Debian's Chromium through chromedp against a
// real bin/wpm serve. They never skip: without Chromium they fail, saying
// what to install. Each saves a screenshot under bin/ for review.

// browserWait bounds every wait for the page.
const browserWait = 20 * time.Second

// chromiumPath finds Chromium or fails the test with one line saying what
// to install.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the dashboard's browser tests need Chromium: install Debian's chromium package (apt-get install -y chromium); .ci/run does")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, ended (and
// its processes killed) when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 45*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc() // kills Chromium and waits for it
	})
	require.NoError(t, chromedp.Do(ctx), "start Chromium")
	return ctx
}

// waitJS waits until expr, evaluated in the page after each change of its
// DOM, is truthy, and returns its value.
func waitJS[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(browserWait)))
	require.NoError(t, err, "waiting for %s", what)
	return v
}

// text returns the text of the element sel, read in one evaluation: the
// page re-renders its nodes, so a node looked up first may be gone when
// read.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)))
	require.NoError(t, err, "text of %s", sel)
	return s
}

// screenshot saves the page as bin/<name>.png in the module.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := filepath.Join(testkit.ModuleRoot(), "bin")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// workersShown is a script listing the live workers' pids the page shows
// for pool.
func workersShown(pool string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('[data-pool=%q] tr[data-pid]:not(.gone)')].map(r => +r.dataset.pid).filter(p => p > 0)`, pool)
}

func TestBrowser_poolsAndWorkers(t *testing.T) {
	srv := startServe(t)
	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/")))
	waitJS[bool](t, ctx, "both shipped pools with two workers each",
		`(`+workersShown("CPU")+`).length === 2 && (`+workersShown("MEM")+`).length === 2`)
	waitJS[bool](t, ctx, "the page following /v1/events", `document.querySelector('#conn').textContent === 'live'`)
	// The stats events, one a second, draw the RSS history and the queue chart.
	waitJS[bool](t, ctx, "RSS histories and the queue chart",
		`document.querySelectorAll('[data-pool] tr[data-pid] .spark polyline').length === 4 && !!document.querySelector('#chart-queue polyline')`)
	screenshot(t, ctx, "ui-pools")
}

// onTaskRow is a script evaluating expr with r, the newest task's row, or
// null while there is none.
func onTaskRow(expr string) string {
	return `(() => { const r = document.querySelector('#tasks tr[data-task]'); return r ? (` + expr + `) : null })()`
}

// runFromForm serves the shipped config, opens the page and runs input on
// pool CPU from the form, async or not.
func runFromForm(t *testing.T, input string, async bool) context.Context {
	t.Helper()
	srv := startServe(t)
	ctx := newBrowser(t)
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(srv.url + "/ui/"),
		chromedp.WaitVisible(`[data-pool="CPU"] tr[data-pid]`),
		chromedp.SetValue("#run-target", "pool:CPU"),
		chromedp.SetValue("#run-input", input),
	}
	if async {
		steps = append(steps, chromedp.Click("#run-async"))
	}
	require.NoError(t, chromedp.Do(ctx, append(steps, chromedp.Click("#run-button"))...))
	return ctx
}

func TestBrowser_taskProgress(t *testing.T) {
	ctx := runFromForm(t, `{"duration": 3000}`, false)
	first := waitJS[float64](t, ctx, "the task's first progress",
		onTaskRow(`r.dataset.state === 'running' && +r.dataset.fraction > 0 && +r.dataset.fraction < 0.9 ? +r.dataset.fraction : 0`))
	screenshot(t, ctx, "ui-task-running")
	later := waitJS[float64](t, ctx, "the progress rising",
		onTaskRow(fmt.Sprintf(`+r.dataset.fraction > %g ? +r.dataset.fraction : 0`, first)))
	assert.Greater(t, later, first)
	waitJS[bool](t, ctx, "the task's result",
		onTaskRow(`r.dataset.state === 'succeeded' && document.querySelector('#run-result').dataset.ok === 'true'`))
	assert.Contains(t, text(t, ctx, "#run-result"), `"requestedMs": 3000`)
	screenshot(t, ctx, "ui-task-done")
}

// An async task from the form: queued, its progress followed through its
// events by its own id, then its record shown.
func TestBrowser_asyncTask(t *testing.T) {
	ctx := runFromForm(t, `{"duration": 2500}`, true)
	id := waitJS[string](t, ctx, "the async task's id", `document.querySelector('#run-result').dataset.task || ""`)
	row := func(expr string) string {
		return fmt.Sprintf(`(() => { const r = document.querySelector('#tasks tr[data-task=%q]'); return r ? (%s) : null })()`, id, expr)
	}
	first := waitJS[float64](t, ctx, "the async task's progress under its own id",
		row(`r.dataset.state === 'running' && +r.dataset.fraction > 0 && +r.dataset.fraction < 0.9 ? +r.dataset.fraction : 0`))
	waitJS[bool](t, ctx, "its progress in the form", `document.querySelector('#run-result').textContent.includes('%')`)
	screenshot(t, ctx, "ui-async-running")
	later := waitJS[float64](t, ctx, "the progress rising", row(fmt.Sprintf(`+r.dataset.fraction > %g ? +r.dataset.fraction : 0`, first)))
	assert.Greater(t, later, first)
	waitJS[bool](t, ctx, "the async task's record",
		row(`r.dataset.state === 'succeeded' && document.querySelector('#run-result').dataset.ok === 'true'`))
	shown := text(t, ctx, "#run-result")
	assert.Contains(t, shown, `"state": "succeeded"`)
	assert.Contains(t, shown, `"requestedMs": 2500`)
	assert.Contains(t, shown, id)
	screenshot(t, ctx, "ui-async-done")
}

func TestBrowser_workerKilled(t *testing.T) {
	srv := startServe(t)
	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/")))
	pids := waitJS[[]int](t, ctx, "the CPU pool's workers", `(()=>{const p=`+workersShown("CPU")+`; return p.length === 2 ? p : null})()`)
	victim := pids[0]
	// The worker is a child of the wpm serve this test started.
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	waitJS[bool](t, ctx, "the worker shown exited",
		fmt.Sprintf(`!!document.querySelector('[data-pool="CPU"] tr.gone[data-pid="%d"]')`, victim))
	waitJS[bool](t, ctx, "a replacement worker",
		fmt.Sprintf(`(()=>{const p=%s; return p.length === 2 && !p.includes(%d)})()`, workersShown("CPU"), victim))
	log := text(t, ctx, `[data-pool="CPU"] .worker-log`)
	assert.Contains(t, log, "pid "+strconv.Itoa(victim)+" exited")
	assert.Contains(t, log, "replacing pid "+strconv.Itoa(victim))
	screenshot(t, ctx, "ui-worker-replaced")
}

func TestBrowser_auth(t *testing.T) {
	const token = "browser-test-token"
	srv := startServe(t, "WPM_HTTP_AUTHTOKEN="+token)
	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/"), chromedp.WaitVisible("#token")))
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-pool], #tasks tr[data-task]').length + (document.querySelector('#main').hidden ? 0 : 100)`))
	require.NoError(t, err)
	assert.Zero(t, shown, "nothing shows before the token is entered")
	screenshot(t, ctx, "ui-auth-login")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys("#token", "wrong"),
		chromedp.Click(`#login-form button[type="submit"]`),
	))
	waitJS[bool](t, ctx, "the wrong token refused", `document.querySelector('#login-error').textContent.includes('refused')`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys("#token", token),
		chromedp.Click(`#login-form button[type="submit"]`),
		chromedp.WaitVisible(`[data-pool="CPU"]`),
	))
	waitJS[bool](t, ctx, "the live stream with the token", `document.querySelector('#conn').textContent === 'live'`)
	screenshot(t, ctx, "ui-auth-in")
}

// A pool's Pause button pauses it for the cluster (the page and the API
// say paused), and Resume resumes it.
func TestBrowser_pauseResume(t *testing.T) {
	srv := startServe(t)
	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/"), chromedp.WaitVisible(`[data-pool="CPU"] button[data-pause="pause"]`),
		chromedp.Click(`[data-pool="CPU"] button[data-pause="pause"]`)))
	waitJS[bool](t, ctx, "CPU shown paused", `!!document.querySelector('[data-pool="CPU"] [data-paused]') && !!document.querySelector('[data-pool="CPU"] button[data-pause="resume"]')`)
	var pool struct{ Paused bool }
	require.Equal(t, http.StatusOK, getJSON(t, srv.url+"/v1/pools/CPU", &pool))
	assert.True(t, pool.Paused)
	screenshot(t, ctx, "ui-paused")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`[data-pool="CPU"] button[data-pause="resume"]`)))
	waitJS[bool](t, ctx, "CPU shown resumed", `!document.querySelector('[data-pool="CPU"] [data-paused]') && !!document.querySelector('[data-pool="CPU"] button[data-pause="pause"]')`)
	require.Equal(t, http.StatusOK, getJSON(t, srv.url+"/v1/pools/CPU", &pool))
	assert.False(t, pool.Paused)
}
