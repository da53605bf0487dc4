package client

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"1": time.Second,
		"0": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		d, ok := parseRetryAfter(v, now)
		assert.True(t, ok, v)
		assert.Equal(t, want, d, v)
	}
	for _, v := range []string{"", "-1", "soon"} {
		_, ok := parseRetryAfter(v, now)
		assert.False(t, ok, v)
	}
}

func TestError_Is(t *testing.T) {
	err := error(&Error{StatusCode: 429, Code: CodeQueueFull, Message: "full"})
	assert.ErrorIs(t, err, ErrQueueFull)
	assert.NotErrorIs(t, err, ErrOverloaded)
	assert.NotErrorIs(t, &Error{StatusCode: 502}, &Error{StatusCode: 502}, "no code, no identity")
	assert.Equal(t, "GET http://h/x: 502 Bad Gateway", (&Error{StatusCode: 502, Method: "GET", URL: "http://h/x"}).Error())
	assert.Equal(t, "task_failed: boom", (&Error{Code: CodeTaskFailed, Message: "boom"}).Error())
}
