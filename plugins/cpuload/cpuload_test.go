package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wpmdev/wpm/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mustRun runs a cpuload task on input and decodes its result.
func mustRun(tb testing.TB, ctx context.Context, input string) result {
	tb.Helper()
	out, err := cpuLoad{}.Run(ctx, []byte(input))
	require.NoError(tb, err, input)
	var r result
	require.NoError(tb, json.Unmarshal(out, &r), "output %s", out)
	return r
}

func TestCPULoad_Run_invalidInput(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"empty", ``, "must be a JSON object"},
		{"array", `[1000]`, "must be a JSON object"},
		{"string body", `"fast"`, "must be a JSON object"},
		{"number body", `100`, "must be a JSON object"},
		{"null body", `null`, "must be a JSON object"},
		{"broken JSON", `{"duration": `, "not a valid JSON object"},
		{"unknown field", `{"duration": 1, "extra": 2}`, `unknown field "extra"`},
		{"field name case", `{"Duration": 1}`, `unknown field "Duration"`},
		{"missing", `{}`, `"duration" is required`},
		{"null", `{"duration": null}`, `"duration" is required`},
		{"string", `{"duration": "abc"}`, `"duration" must be a whole number from 0 to 3600000, got "abc"`},
		{"numeric string", `{"duration": "300"}`, `got "300"`},
		{"bool", `{"duration": true}`, `got true`},
		{"array value", `{"duration": [1]}`, `got [1]`},
		{"negative", `{"duration": -1}`, `got -1`},
		{"fraction", `{"duration": 2.5}`, `got 2.5`},
		{"over an hour", `{"duration": 3600001}`, `got 3600001`},
		{"huge", `{"duration": 1e400}`, `got 1e400`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := cpuLoad{}.Run(context.Background(), []byte(c.in))
			require.ErrorIs(t, err, shared.ErrInvalidInput)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), `"duration"`, "the message names the field")
		})
	}
}

func TestCPULoad_Run_output(t *testing.T) {
	r := mustRun(t, context.Background(), `{"duration": 5}`)
	assert.EqualValues(t, 5, r.RequestedMs)
	assert.GreaterOrEqual(t, r.ElapsedMs, 5.0)
	assert.Equal(t, os.Getpid(), r.PID)
	assert.Positive(t, r.Iterations)

	out, err := cpuLoad{}.Run(context.Background(), []byte(`{"duration": 0}`))
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(out, &fields))
	assert.ElementsMatch(t, []string{"requestedMs", "elapsedMs", "pid", "iterations"}, keys(fields))
	assert.EqualValues(t, 0, fields["requestedMs"])

	r = mustRun(t, context.Background(), `{"duration": 1e1}`)
	assert.EqualValues(t, 10, r.RequestedMs, "a whole number may be written with an exponent")
}

func TestCPULoad_Run_cancelStopsEarly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := cpuLoad{}.Run(ctx, []byte(`{"duration": 60000}`))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, shared.ErrInvalidInput)
	assert.Contains(t, err.Error(), "stopped after")
	assert.Less(t, time.Since(start), 2*time.Second)

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	_, err = cpuLoad{}.Run(done, []byte(`{"duration": 60000}`))
	require.ErrorIs(t, err, context.Canceled)
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The plugin's progress reports, as a unit test sees them through
// shared.WithProgressTo: rising, ending at 1.
func TestCPULoad_Run_reportsProgress(t *testing.T) {
	var got []float64
	ctx := shared.WithProgressTo(context.Background(), func(f float64, _ string) { got = append(got, f) })
	mustRun(t, ctx, `{"duration": 250}`)
	require.NotEmpty(t, got)
	assert.IsNonDecreasing(t, got)
	assert.Equal(t, 1.0, got[len(got)-1])
}
