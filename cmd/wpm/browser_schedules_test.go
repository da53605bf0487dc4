package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scheduleShown is the part of GET /v1/schedules/{name} the schedules
// view's test checks.
type scheduleShown struct {
	Name     string
	Pool     string
	Every    string
	Paused   bool
	NextRun  *string
	LastRuns []struct {
		TaskID string `json:"taskId"`
	}
}

// onScheduleRow is a script evaluating expr with r, the row of schedule
// name, or null while there is none.
func onScheduleRow(name, expr string) string {
	return fmt.Sprintf(`(() => { const r = document.querySelector('tr[data-schedule=%q]'); return r ? (%s) : null })()`, name, expr)
}

// fillSchedule fills the schedules view's form and sends it.
func fillSchedule(name, target, input, kind, spec string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.SetValue("#sched-name", name),
		chromedp.SetValue("#sched-target", target),
		chromedp.SetValue("#sched-input", input),
		chromedp.SetValue("#sched-kind", kind),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#sched-kind').dispatchEvent(new Event('change'))`),
		chromedp.SetValue("#sched-spec", spec),
		chromedp.Click("#sched-create"),
	}
}

// The schedules view: a schedule made through its form ticks and shows its
// runs' tasks; the API's errors show beside the form; Pause, Resume and
// Delete act on it, and a run's link opens its task.
func TestBrowser_schedules(t *testing.T) {
	const name = "ui-every-2s"
	srv := startServe(t)
	ctx := newBrowser(t)
	// get reads the schedule afresh (into a new value: absent fields stay zero).
	get := func() (int, scheduleShown) {
		var s scheduleShown
		return getJSON(t, srv.url+"/v1/schedules/"+name, &s), s
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.url+"/ui/schedules"), chromedp.WaitVisible("#schedule-form")))
	tzShown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#sched-tz').offsetParent !== null`))
	require.NoError(t, err)
	assert.False(t, tzShown, "every takes no time zone")
	waitJS[bool](t, ctx, "the pools and plugins offered",
		`!!document.querySelector('#sched-target option[value="pool:CPU"]') && !!document.querySelector('#sched-target option[value="plugin:cpuload"]')`)
	require.NoError(t, chromedp.Do(ctx, fillSchedule(name, "pool:CPU", `{"duration": 10}`, "every", "2s")...))

	// Made, it ticks every 2 s: its row shows its tasks as they are made.
	waitJS[bool](t, ctx, "the schedule's row with its next run",
		onScheduleRow(name, `r.dataset.paused === 'false' && r.innerText.includes('every 2s') && r.innerText.includes('pool CPU')`))
	assert.Empty(t, text(t, ctx, "#sched-error"))
	waitJS[bool](t, ctx, "a last run's task link", onScheduleRow(name, `!!r.querySelector('a[data-task][href^="/ui/tasks/"]')`))
	code, s := get()
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "CPU", s.Pool)
	assert.Equal(t, "2s", s.Every)
	assert.False(t, s.Paused)

	// The API's errors show beside the form, naming what is wrong.
	require.NoError(t, chromedp.Do(ctx, fillSchedule(name, "pool:CPU", `{"duration": 10}`, "every", "5s")...))
	dup := waitJS[string](t, ctx, "the duplicate refused", `document.querySelector('#sched-error').textContent`)
	assert.Contains(t, dup, name)
	assert.Contains(t, dup, "exists")
	require.NoError(t, chromedp.Do(ctx, fillSchedule(name+"-cron", "pool:CPU", `{}`, "cron", "61 * * * * *")...))
	bad := waitJS[string](t, ctx, "the bad cron refused",
		`(t => t.includes('61 * * * * *') ? t : '')(document.querySelector('#sched-error').textContent)`)
	assert.Contains(t, bad, "cron")
	tzShown, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#sched-tz').offsetParent !== null`))
	require.NoError(t, err)
	assert.True(t, tzShown, "a cron takes a time zone")
	assert.Equal(t, 1, countRows(t, ctx), "no row for the refused schedules")

	// Pause: the row and the API say paused, and its runs stay put.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`tr[data-schedule="`+name+`"] button[data-act="pause"]`)))
	waitJS[bool](t, ctx, "the schedule shown paused",
		onScheduleRow(name, `r.dataset.paused === 'true' && !!r.querySelector('button[data-act="resume"]') && r.cells[3].innerText === 'paused'`))
	code, s = get()
	require.Equal(t, http.StatusOK, code)
	assert.True(t, s.Paused)
	assert.Nil(t, s.NextRun)

	// A run's link opens its task in the page; back, the view is shown again.
	id := waitJS[string](t, ctx, "the newest run's task", onScheduleRow(name, `r.querySelector('a[data-task]').dataset.task`))
	assert.Contains(t, runIDs(s), id)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(fmt.Sprintf(`tr[data-schedule=%q] a[data-task=%q]`, name, id))))
	waitJS[bool](t, ctx, "the task's address", fmt.Sprintf(`location.pathname === '/ui/tasks/%s' && document.querySelector('#view-schedules').hidden`, id))
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`history.back()`)))
	waitJS[bool](t, ctx, "the schedules view again",
		`location.pathname === '/ui/schedules' && !document.querySelector('#view-schedules').hidden && !!document.querySelector('tr[data-schedule]')`)

	// Resume: ticking again.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`tr[data-schedule="`+name+`"] button[data-act="resume"]`)))
	waitJS[bool](t, ctx, "the schedule shown resumed",
		onScheduleRow(name, `r.dataset.paused === 'false' && !!r.querySelector('button[data-act="pause"]') && r.cells[3].innerText !== 'paused'`))
	code, s = get()
	require.Equal(t, http.StatusOK, code)
	assert.False(t, s.Paused)
	assert.NotNil(t, s.NextRun)
	screenshot(t, ctx, "ui-schedules")

	// Delete asks first: refused, nothing happens; confirmed, it is gone.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`window.confirm = (m) => { window.asked = m; return false; }`),
		chromedp.Click(`tr[data-schedule="`+name+`"] button[data-act="delete"]`)))
	asked := waitJS[string](t, ctx, "the confirmation asked", `window.asked || ''`)
	assert.Contains(t, asked, name)
	code, _ = get()
	require.Equal(t, http.StatusOK, code, "a delete not confirmed deletes nothing")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(`tr[data-schedule="`+name+`"] button[data-act="delete"]`)))
	waitJS[bool](t, ctx, "the row gone", `!document.querySelector('tr[data-schedule]') && !document.querySelector('#sched-empty').hidden`)
	var gone struct{ Error struct{ Code string } }
	require.Equal(t, http.StatusNotFound, getJSON(t, srv.url+"/v1/schedules/"+name, &gone))
	assert.Equal(t, "unknown_schedule", gone.Error.Code)
}

// countRows returns how many schedules the view shows.
func countRows(t *testing.T, ctx context.Context) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-schedule]').length`))
	require.NoError(t, err)
	return n
}

func runIDs(s scheduleShown) []string {
	ids := make([]string, 0, len(s.LastRuns))
	for _, r := range s.LastRuns {
		ids = append(ids, r.TaskID)
	}
	return ids
}
