package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad_schedules(t *testing.T) {
	path := mustWriteFile(t, "wpm.yaml", onePool+`
async: { maxDelay: 1h }
schedules:
  - { name: nightly, pool: CPU, input: { duration: 100, tags: [a, b] }, cron: "0 0 3 * * *", timezone: Europe/Paris }
  - { name: often, plugin: cpuload, every: 90s }
`)
	c, err := Load(Options{File: path})
	require.NoError(t, err)
	assert.Equal(t, time.Hour, c.Async.MaxDelay)
	q := c.QueueSchedules()
	require.Len(t, q, 2)
	assert.Equal(t, "nightly", q[0].Name)
	assert.JSONEq(t, `{"duration": 100, "tags": ["a", "b"]}`, string(q[0].Input))
	assert.Equal(t, "Europe/Paris", q[0].Timezone)
	assert.Equal(t, "1m30s", q[1].Every)
	assert.Nil(t, q[1].Input)
}

func TestLoad_badSchedules(t *testing.T) {
	for file, want := range map[string]string{
		`schedules: [{ name: x, pool: CPU, every: 500ms }]`:                                 "schedules[0].every: must be a Go duration of at least 1s",
		`schedules: [{ name: x, pool: CPU, cron: "* * * * *" }]`:                            "schedules[0].cron: ",
		`schedules: [{ name: x, pool: CPU }]`:                                               "schedules[0].cron: or every",
		`schedules: [{ pool: CPU, every: 1s }]`:                                             "schedules[0].name: is empty",
		`schedules: [{ name: x, pool: GPU, every: 1s }]`:                                    `schedules[0].pool: "GPU" is no pool`,
		`schedules: [{ name: x, pool: CPU, cron: "0 * * * * *", timezone: Nowhere }]`:       "schedules[0].timezone: ",
		`schedules: [{ name: x, pool: CPU, every: 1s }, { name: x, pool: CPU, every: 2s }]`: "schedules[1].name: \"x\" is the name of an earlier schedule",
		`schedules: [{ name: x, pool: CPU, every: 1s, colour: red }]`:                       `unknown key "schedules[0].colour"`,
		`async: { maxDelay: 0 }`:                                                            "async.maxDelay: must be more than 0",
	} {
		_, probs := mustFail(t, onePool+file)
		require.Len(t, probs, 1, "%s: %q", file, probs)
		assert.Contains(t, probs[0], want, file)
	}
}
