package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wpmdev/wpm/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testStreams is where a test's misbehave writes.
type testStreams struct {
	stdout, stderr, pluginOut, pluginErr bytes.Buffer
}

func newTestMisbehave() (*misbehave, *testStreams) {
	s := new(testStreams)
	return newMisbehave(&s.stdout, &s.stderr, func() (io.Writer, io.Writer) {
		return &s.pluginOut, &s.pluginErr
	}), s
}

// mustAnswer runs input and decodes the answer into a map.
func mustAnswer(tb testing.TB, m *misbehave, input string) map[string]any {
	tb.Helper()
	out, err := m.Run(context.Background(), []byte(input))
	require.NoError(tb, err, input)
	var v map[string]any
	require.NoError(tb, json.Unmarshal(out, &v), "answer %s", out)
	assert.EqualValues(tb, os.Getpid(), v["pid"], "every answer has the pid")
	return v
}

func TestMisbehave_faultsAreKnown(t *testing.T) {
	for _, name := range []string{"echo", "sleep", "hang", "busyhang", "panic", "crash", "exit",
		"sigkill", "alloc", "leak", "garbage", "log", "fail", "invalid", "spawn", "mapwrite", "big", "trace"} {
		assert.Contains(t, faults, name)
	}
	assert.Len(t, faults, 18)
}

func TestMisbehave_Run_echo(t *testing.T) {
	m, _ := newTestMisbehave()
	v := mustAnswer(t, m, `{"fault": "echo", "lines": ["a"]}`)
	assert.Equal(t, map[string]any{"fault": "echo", "lines": []any{"a"}}, v["input"])

	v = mustAnswer(t, m, ` {"ms": 5} `)
	assert.Equal(t, map[string]any{"ms": 5.0}, v["input"], "no fault means echo")

	v = mustAnswer(t, m, ``)
	assert.Contains(t, v, "input")
	assert.Nil(t, v["input"], "empty input is an echo of nothing")
}

func TestMisbehave_Run_errors(t *testing.T) {
	m, _ := newTestMisbehave()
	_, err := m.Run(context.Background(), []byte(`{"fault": "fail"}`))
	require.EqualError(t, err, "misbehave: asked to fail")
	assert.NotErrorIs(t, err, shared.ErrInvalidInput)

	_, err = m.Run(context.Background(), []byte(`{"fault": "invalid"}`))
	require.ErrorIs(t, err, shared.ErrInvalidInput)

	_, err = m.Run(context.Background(), []byte(`{"fault": "nope"}`))
	require.ErrorIs(t, err, shared.ErrInvalidInput)
	assert.Contains(t, err.Error(), `unknown fault "nope"`)
	assert.Contains(t, err.Error(), `"busyhang"`, "the message names the known faults")
	assert.Contains(t, err.Error(), `"spawn"`)
}

func TestMisbehave_Run_badInput(t *testing.T) {
	m, _ := newTestMisbehave()
	for in, want := range map[string]string{
		`[1]`:                            "send a JSON object",
		`{"fault": "echo"`:               "send a JSON object",
		`{"fault": "echo", "x": 1}`:      `unknown field "x"`,
		`{"fault": 1}`:                   "fault",
		`{"fault": "sleep", "ms": "1"}`:  "ms",
		`{"fault": "sleep", "ms": -1}`:   `"ms" must be from 0`,
		`{"fault": "alloc", "mb": 1e6}`:  "mb",
		`{"fault": "exit", "code": 256}`: `"code" must be from 0 to 255`,
		`{"fault": "echo"} {}`:           "nothing after it",
	} {
		_, err := m.Run(context.Background(), []byte(in))
		require.ErrorIs(t, err, shared.ErrInvalidInput, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestMisbehave_Run_sleep(t *testing.T) {
	m, _ := newTestMisbehave()
	v := mustAnswer(t, m, `{"fault": "sleep", "ms": 5}`)
	assert.EqualValues(t, 5, v["sleptMs"])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := m.Run(ctx, []byte(`{"fault": "sleep", "ms": 60000}`))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, shared.ErrInvalidInput)
}

func TestMisbehave_Run_output(t *testing.T) {
	m, s := newTestMisbehave()
	mustAnswer(t, m, `{"fault": "log", "lines": ["first", "second"]}`)
	assert.Equal(t, "first\nsecond\n", s.stderr.String())
	assert.Zero(t, s.stdout.Len())

	s.stderr.Reset()
	mustAnswer(t, m, `{"fault": "garbage"}`)
	for _, b := range []*bytes.Buffer{&s.stdout, &s.stderr, &s.pluginOut, &s.pluginErr} {
		assert.Contains(t, b.String(), "this is not JSON")
		assert.Contains(t, b.String(), "\x02\xff")
	}
}

func TestMisbehave_Run_memory(t *testing.T) {
	m, _ := newTestMisbehave()
	v := mustAnswer(t, m, `{"fault": "alloc", "mb": 8, "ms": 1}`)
	assert.EqualValues(t, 8, v["mb"])
	assert.EqualValues(t, 1, v["ms"])

	mustAnswer(t, m, `{"fault": "leak", "mb": 1}`)
	v = mustAnswer(t, m, `{"fault": "leak", "mb": 2}`)
	assert.EqualValues(t, 2, v["mb"])
	assert.EqualValues(t, 3, v["leakedMb"], "a leak adds up")
	if runtime.GOOS == "linux" {
		assert.Positive(t, v["rssBytes"])
	}
}
