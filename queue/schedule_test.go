package queue

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// A delayed task is scheduled, and not started, until its runAt; then it
// runs.
func TestSchedule_delayedTaskWaits(t *testing.T) {
	e := newEngine(t)
	runAt := time.Now().Add(2 * time.Second)
	task, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "echo"}`), RunAt: runAt})
	require.NoError(t, err)
	require.Equal(t, StateScheduled, task.State)
	require.NotNil(t, task.RunAt)
	assert.False(t, task.RunAt.Before(runAt), "runAt is rounded up, never down")
	assert.InDelta(t, 1, testutil.ToFloat64(e.counters.delayed.WithLabelValues("M")), 0.5, "wpm_async_tasks_delayed_total")

	time.Sleep(1200 * time.Millisecond)
	got, err := e.Get(context.Background(), task.ID)
	require.NoError(t, err)
	assert.Equal(t, StateScheduled, got.State)
	assert.Zero(t, got.Attempts)

	done := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateSucceeded, done.State, "%+v", done)
	assert.False(t, done.StartedAt.Before(*task.RunAt), "started %s, due %s", done.StartedAt, task.RunAt)
	assert.Equal(t, 1, done.Attempts)

	past, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "echo"}`), RunAt: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, StateQueued, past.State, "a runAt in the past runs now")
	assert.Nil(t, past.RunAt)
	assert.Equal(t, StateSucceeded, waitFor(t, e, past.ID, ended).State)
}

// A canceled delayed task never runs: its schedule is gone.
func TestSchedule_cancelDelayed(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	task, err := e.Submit(ctx, Request{Pool: "M", Input: []byte(`{"fault": "echo"}`), RunAt: time.Now().Add(time.Second)})
	require.NoError(t, err)
	canceled, err := e.Cancel(ctx, task.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCanceled, canceled.State)
	_, err = e.stream.GetLastMsgForSubject(ctx, delayPrefix+task.ID)
	assert.ErrorIs(t, err, jetstream.ErrMsgNotFound, "the schedule message is removed")

	time.Sleep(2500 * time.Millisecond)
	got, err := e.Get(ctx, task.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCanceled, got.State)
	assert.Zero(t, got.Attempts)
}

// A store made by an older wpm (a task stream without message schedules)
// is updated; a delayed task survives a stop and runs after the restart,
// though it came due while the engine was down.
func TestSchedule_delayedAcrossRestart(t *testing.T) {
	opts := testOptions(t.TempDir())
	srv, err := startServer(opts.withDefaults())
	require.NoError(t, err)
	nc, err := nats.Connect("", nats.InProcessServer(srv.srv))
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	old := jetstream.StreamConfig{Name: streamName, Subjects: []string{subjectPrefix + ">"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}
	_, err = js.CreateStream(context.Background(), old)
	require.NoError(t, err)
	nc.Close()
	srv.stop()

	mgr := newManager(t, testPools())
	e := startEngine(t, mgr, opts)
	info, err := e.stream.Info(context.Background())
	require.NoError(t, err)
	require.True(t, info.Config.AllowMsgSchedules, "the older stream now allows schedules")
	task, err := e.Submit(context.Background(), Request{Pool: "M", Input: []byte(`{"fault": "echo"}`), RunAt: time.Now().Add(1500 * time.Millisecond)})
	require.NoError(t, err)
	stopEngine(t, e)
	time.Sleep(2 * time.Second) // due while down

	e = startEngine(t, mgr, opts)
	done := waitFor(t, e, task.ID, ended)
	assert.Equal(t, StateSucceeded, done.State, "%+v", done)
	assert.Equal(t, 1, done.Attempts)
}

// scheduleTasks lists the tasks a schedule made.
func scheduleTasks(t *testing.T, e *Engine, name string) []Task {
	t.Helper()
	all, err := e.List(context.Background(), Filter{Limit: 1000})
	require.NoError(t, err)
	var out []Task
	for _, task := range all {
		if task.Schedule == name {
			out = append(out, task)
		}
	}
	return out
}

// A schedule every 2s makes 3 to 5 tasks in 7.5s, each named after it;
// paused it makes none; deleted it is gone.
func TestSchedule_every(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	s, err := e.CreateSchedule(ctx, Schedule{Name: "tick", Pool: "M", Input: []byte(`{"fault": "echo"}`), Every: "2s"})
	require.NoError(t, err)
	assert.Equal(t, SourceAPI, s.Source)
	require.NotNil(t, s.NextRun)
	_, err = e.CreateSchedule(ctx, Schedule{Name: "tick", Pool: "M", Every: "2s"})
	require.ErrorIs(t, err, ErrScheduleExists)

	time.Sleep(7500 * time.Millisecond)
	_, err = e.PauseSchedule(ctx, "tick")
	require.NoError(t, err)
	var (
		made []Task
		got  Schedule
	)
	// A tick taken just before the pause is recorded in its schedule just
	// after its task is made.
	require.Eventually(t, func() bool {
		made = scheduleTasks(t, e, "tick")
		got, err = e.GetSchedule(ctx, "tick")
		return err == nil && len(got.LastRuns) == len(made)
	}, 5*time.Second, 50*time.Millisecond)
	assert.GreaterOrEqual(t, len(made), 3)
	assert.LessOrEqual(t, len(made), 5)
	assert.True(t, got.Paused)
	assert.Nil(t, got.NextRun)
	assert.InDelta(t, len(made), testutil.ToFloat64(e.counters.scheduleRuns.WithLabelValues("tick")), 0.5, "wpm_async_schedule_runs_total")
	for _, task := range made {
		assert.Equal(t, StateSucceeded, waitFor(t, e, task.ID, ended).State)
	}

	time.Sleep(2500 * time.Millisecond)
	assert.Len(t, scheduleTasks(t, e, "tick"), len(made), "a paused schedule makes no task")
	resumed, err := e.ResumeSchedule(ctx, "tick")
	require.NoError(t, err)
	assert.False(t, resumed.Paused)
	require.NotNil(t, resumed.NextRun)
	require.Eventually(t, func() bool { return len(scheduleTasks(t, e, "tick")) > len(made) }, 5*time.Second, 100*time.Millisecond)

	_, err = e.DeleteSchedule(ctx, "tick")
	require.NoError(t, err)
	_, err = e.GetSchedule(ctx, "tick")
	require.ErrorIs(t, err, ErrUnknownSchedule)
}

// Each tick makes one task with two hosts on one queue.
func TestSchedule_oncePerTickTwoHosts(t *testing.T) {
	pools := []host.PoolConfig{{Name: "M", Plugin: "misbehave", Workers: 1}}
	opts, addr := listenOptions(t)
	opts.Name = "a"
	first := startEngine(t, newManager(t, pools), opts)
	secondHost(t, addr, "b", pools)

	_, err := first.CreateSchedule(context.Background(), Schedule{Name: "both", Pool: "M", Input: []byte(`{"fault": "echo"}`), Every: "1s"})
	require.NoError(t, err)
	time.Sleep(5500 * time.Millisecond)
	_, err = first.PauseSchedule(context.Background(), "both")
	require.NoError(t, err)
	made := scheduleTasks(t, first, "both")
	assert.GreaterOrEqual(t, len(made), 4)
	assert.LessOrEqual(t, len(made), 6, "one task per tick, not one per host")
}

// Bad schedules are refused naming the field.
func TestCheckSchedule(t *testing.T) {
	for _, c := range []struct {
		s     Schedule
		field string
	}{
		{Schedule{Pool: "M", Every: "1s"}, "name"},
		{Schedule{Name: "a b", Pool: "M", Every: "1s"}, "name"},
		{Schedule{Name: "a", Every: "1s"}, "pool"},
		{Schedule{Name: "a", Pool: "M", Plugin: "x", Every: "1s"}, "pool"},
		{Schedule{Name: "a", Pool: "M"}, "cron"},
		{Schedule{Name: "a", Pool: "M", Every: "500ms"}, "every"},
		{Schedule{Name: "a", Pool: "M", Every: "soon"}, "every"},
		{Schedule{Name: "a", Pool: "M", Cron: "* * * * *"}, "cron"},
		{Schedule{Name: "a", Pool: "M", Cron: "61 * * * * *"}, "cron"},
		{Schedule{Name: "a", Pool: "M", Cron: "0 * * * * *", Timezone: "Mars/Olympus"}, "timezone"},
		{Schedule{Name: "a", Pool: "M", Every: "1s", Input: []byte(`{`)}, "input"},
	} {
		err := CheckSchedule(c.s)
		require.ErrorIs(t, err, ErrBadSchedule, "%+v", c.s)
		assert.Contains(t, err.Error(), ": "+c.field+" ", "%+v", c.s)
	}
	require.NoError(t, CheckSchedule(Schedule{Name: "ok", Pool: "M", Cron: "0 */5 * * * *", Timezone: "Europe/Paris"}))
	require.NoError(t, CheckSchedule(Schedule{Name: "ok", Plugin: "x", Cron: "@daily"}))
}

// Config-declared schedules are made, updated and removed; API-made ones
// stay.
func TestSchedule_reconcile(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	_, err := e.CreateSchedule(ctx, Schedule{Name: "api", Pool: "M", Cron: "0 0 0 1 1 *"})
	require.NoError(t, err)
	require.NoError(t, e.ReconcileSchedules(ctx, []Schedule{{Name: "cfg", Pool: "M", Cron: "0 0 0 1 1 *"}}))
	got, err := e.GetSchedule(ctx, "cfg")
	require.NoError(t, err)
	assert.Equal(t, SourceConfig, got.Source)

	require.NoError(t, e.ReconcileSchedules(ctx, []Schedule{{Name: "cfg", Pool: "M", Cron: "0 0 0 1 2 *"}}))
	got, err = e.GetSchedule(ctx, "cfg")
	require.NoError(t, err)
	assert.Equal(t, "0 0 0 1 2 *", got.Cron)
	assert.Equal(t, time.February, got.NextRun.Month())

	require.NoError(t, e.ReconcileSchedules(ctx, nil))
	_, err = e.GetSchedule(ctx, "cfg")
	require.ErrorIs(t, err, ErrUnknownSchedule)
	_, err = e.GetSchedule(ctx, "api")
	require.NoError(t, err)
}

// A cron schedule in a time zone ticks through NATS, and a schedule may
// run one-shots of a plugin.
func TestSchedule_cronOneShot(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	s, err := e.CreateSchedule(ctx, Schedule{Name: "cron", Plugin: "misbehave", Input: []byte(`{"fault": "echo"}`), Cron: "* * * * * *", Timezone: "Asia/Kolkata"})
	require.NoError(t, err)
	require.NotNil(t, s.NextRun)
	assert.WithinDuration(t, time.Now(), *s.NextRun, 2*time.Second)
	var made []Task
	require.Eventually(t, func() bool { made = scheduleTasks(t, e, "cron"); return len(made) >= 2 }, 10*time.Second, 100*time.Millisecond)
	done := waitFor(t, e, made[0].ID, ended)
	assert.Equal(t, StateSucceeded, done.State, "%+v", done)
	assert.Empty(t, done.Pool)
	assert.Equal(t, "misbehave", done.Plugin)
	_, err = e.DeleteSchedule(ctx, "cron")
	require.NoError(t, err)
	n := len(scheduleTasks(t, e, "cron"))
	time.Sleep(2 * time.Second)
	assert.LessOrEqual(t, len(scheduleTasks(t, e, "cron")), n+1, "a deleted schedule stops ticking (one tick may be in flight)")
}
