package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dashboard is served at /ui/; /ui and /ui/index.html lead there.
func TestUI_servedAtSlash(t *testing.T) {
	s := newServer(t)
	a := s.doRaw(t, http.MethodGet, "/ui/", nil, "")
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Contains(t, a.Header.Get("Content-Type"), "text/html")
	assert.Contains(t, a.Raw, `src="/ui/app.js"`)
	for _, path := range []string{"/ui", "/ui/index.html"} {
		a := s.doRaw(t, http.MethodGet, path, nil, "")
		assert.Equal(t, http.StatusMovedPermanently, a.Status, path)
		assert.Equal(t, "/ui/", a.Header.Get("Location"), path)
	}
	// A view's address is the page too, so that a link to a task opens
	// it; like the page, it needs no token.
	for _, path := range []string{"/ui/tasks", "/ui/tasks/01JAB", "/ui/schedules"} {
		a := s.doRaw(t, http.MethodGet, path, nil, "")
		assert.Equal(t, http.StatusOK, a.Status, path)
		assert.Contains(t, a.Raw, `src="/ui/tasks.js"`, path)
	}
}
