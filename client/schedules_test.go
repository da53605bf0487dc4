package client_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/client"
)

// A delayed submit is scheduled, then runs; a schedule is made, read,
// paused, resumed and deleted through the client.
func TestClient_delayAndSchedules(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	acc, err := c.Submit(ctx, client.SubmitRequest{Pool: "M", Input: json.RawMessage(`{"fault": "echo"}`), Delay: time.Second})
	require.NoError(t, err)
	assert.Equal(t, client.StateScheduled, acc.State)
	task, err := c.Wait(ctx, acc.ID, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, client.StateSucceeded, task.State)
	require.NotNil(t, task.RunAt)
	_, err = c.Submit(ctx, client.SubmitRequest{Pool: "M", Delay: time.Second, RunAt: time.Now()})
	require.Error(t, err)

	s, err := c.CreateSchedule(ctx, client.Schedule{Name: "client-test", Pool: "M", Input: json.RawMessage(`{"fault": "echo"}`), Every: "1s"})
	require.NoError(t, err)
	assert.Equal(t, "api", s.Source)
	_, err = c.CreateSchedule(ctx, client.Schedule{Name: "client-test", Pool: "M", Every: "1s"})
	require.ErrorIs(t, err, client.ErrScheduleExists)
	_, err = c.CreateSchedule(ctx, client.Schedule{Name: "bad", Pool: "M", Cron: "* * *"})
	require.ErrorIs(t, err, client.ErrBadRequest)
	require.Eventually(t, func() bool {
		got, err := c.Schedule(ctx, "client-test")
		return err == nil && len(got.LastRuns) > 0
	}, 10*time.Second, 100*time.Millisecond)
	got, err := c.Schedule(ctx, "client-test")
	require.NoError(t, err)
	made, err := c.Wait(ctx, got.LastRuns[0].TaskID, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "client-test", made.Schedule)

	paused, err := c.PauseSchedule(ctx, "client-test")
	require.NoError(t, err)
	assert.True(t, paused.Paused)
	resumed, err := c.ResumeSchedule(ctx, "client-test")
	require.NoError(t, err)
	assert.False(t, resumed.Paused)
	list, err := c.Schedules(ctx)
	require.NoError(t, err)
	assert.Contains(t, names(list), "client-test")
	_, err = c.DeleteSchedule(ctx, "client-test")
	require.NoError(t, err)
	_, err = c.Schedule(ctx, "client-test")
	require.ErrorIs(t, err, client.ErrUnknownSchedule)
}

func names(list []client.Schedule) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}
