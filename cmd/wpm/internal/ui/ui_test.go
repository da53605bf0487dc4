package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wpmdev/wpm/cmd/wpm/internal/ui"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	ui.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestHandler(t *testing.T) {
	resp, body := get(t, "/ui/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'", "nothing loads from outside")
	assert.Contains(t, body, `src="/ui/app.js"`)
	for path, typ := range map[string]string{"/ui/app.js": "text/javascript", "/ui/tasks.js": "text/javascript", "/ui/schedules.js": "text/javascript", "/ui/style.css": "text/css", "/ui/icon.svg": "image/svg+xml"} {
		resp, body := get(t, path)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, resp.Header.Get("Content-Type"), typ, path)
		assert.NotEmpty(t, body, path)
	}
	resp, _ = get(t, "/ui/nope.js")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	for _, path := range []string{"/ui/tasks/a/b", "/ui/schedules/x"} {
		resp, _ = get(t, path)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
}

// The views' addresses are the page, so that a link to a task opens it.
func TestHandler_views(t *testing.T) {
	for _, path := range []string{"/ui/tasks", "/ui/tasks/", "/ui/tasks/01JABCDEF", "/ui/tasks/01JABCDEF/", "/ui/schedules"} {
		resp, body := get(t, path)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/html", path)
		assert.Contains(t, body, `src="/ui/tasks.js"`, path)
	}
}
