package main

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wpmdev/wpm/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mustRun runs a memusage task on input and decodes its result.
func mustRun(tb testing.TB, ctx context.Context, input string) result {
	tb.Helper()
	out, err := memUsage{}.Run(ctx, []byte(input))
	require.NoError(tb, err, input)
	var r result
	require.NoError(tb, json.Unmarshal(out, &r), "output %s", out)
	return r
}

func TestMemUsage_Run_invalidInput(t *testing.T) {
	for _, c := range []struct{ name, in, field, want string }{
		{"empty", ``, "mb", "must be a JSON object"},
		{"array", `[64]`, "mb", "must be a JSON object"},
		{"number body", `300`, "mb", "must be a JSON object"},
		{"broken JSON", `{"mb": 1,`, "mb", "not a valid JSON object"},
		{"unknown field", `{"mb": 1, "gb": 1}`, "gb", `unknown field "gb"`},
		{"missing mb", `{"duration": 10}`, "mb", `"mb" is required`},
		{"null mb", `{"mb": null}`, "mb", `"mb" is required`},
		{"string mb", `{"mb": "300"}`, "mb", `"mb" must be a whole number from 0 to 65536, got "300"`},
		{"bool mb", `{"mb": false}`, "mb", `got false`},
		{"negative mb", `{"mb": -5}`, "mb", `got -5`},
		{"fractional mb", `{"mb": 0.5}`, "mb", `got 0.5`},
		{"too much", `{"mb": 65537}`, "mb", `got 65537`},
		{"huge mb", `{"mb": 1e12}`, "mb", `got 1e12`},
		{"string duration", `{"mb": 1, "duration": "long"}`, "duration", `"duration" must be a whole number from 0 to 3600000, got "long"`},
		{"bool duration", `{"mb": 1, "duration": true}`, "duration", `got true`},
		{"negative duration", `{"mb": 1, "duration": -1}`, "duration", `got -1`},
		{"fractional duration", `{"mb": 1, "duration": 1.5}`, "duration", `got 1.5`},
		{"over an hour", `{"mb": 1, "duration": 3600001}`, "duration", `got 3600001`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := memUsage{}.Run(context.Background(), []byte(c.in))
			require.ErrorIs(t, err, shared.ErrInvalidInput)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), `"`+c.field+`"`, "the message names the field")
		})
	}
}

func TestMemUsage_Run_holdsMemory(t *testing.T) {
	start := time.Now()
	r := mustRun(t, context.Background(), `{"mb": 64, "duration": 20}`)
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
	assert.EqualValues(t, 64, r.MB)
	assert.EqualValues(t, 20, r.DurationMs)
	assert.Equal(t, os.Getpid(), r.PID)
	if runtime.GOOS != "linux" {
		t.Skip("resident sizes come from /proc")
	}
	assert.GreaterOrEqual(t, r.PeakRSSBytes, uint64(64<<20), "every page was written, so it was resident")
	assert.GreaterOrEqual(t, r.RSSBytes, uint64(64<<20), "and still is when measured")
	assert.GreaterOrEqual(t, r.PeakRSSBytes, r.RSSBytes)
}

func TestMemUsage_Run_defaults(t *testing.T) {
	out, err := memUsage{}.Run(context.Background(), []byte(`{"mb": 0}`))
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(out, &fields))
	assert.ElementsMatch(t, []string{"mb", "durationMs", "pid", "peakRssBytes", "rssBytes"}, keys(fields))
	assert.EqualValues(t, 0, fields["mb"])
	assert.EqualValues(t, 0, fields["durationMs"], "duration defaults to 0")
}

func TestMemUsage_Run_concurrent(t *testing.T) {
	const tasks = 4
	errs := make([]error, tasks)
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Go(func() {
			_, errs[i] = memUsage{}.Run(context.Background(), []byte(`{"mb": 4, "duration": 5}`))
		})
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
}

func TestMemUsage_Run_cancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := memUsage{}.Run(ctx, []byte(`{"mb": 1, "duration": 60000}`))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, shared.ErrInvalidInput)
	assert.Less(t, time.Since(start), 2*time.Second)

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	_, err = memUsage{}.Run(done, []byte(`{"mb": 256}`))
	require.ErrorIs(t, err, context.Canceled, "a canceled task does not fault in its block first")
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
