// Package ui is wpm's dashboard: one page and its script and style,
// embedded in the binary, that show the pools, workers and tasks live
// through the event stream (GET /v1/events) and run tasks.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard: GET /ui/ is the page, as are its views'
// addresses (/ui/tasks, /ui/tasks/{id}, /ui/schedules), /ui/<file> its
// files, and /ui and /ui/index.html redirect to /ui/. They hold no data,
// so they need no token; the page asks for it.
func Handler() http.Handler {
	files, _ := fs.Sub(static, "static") // the directory is embedded
	fileServer := http.StripPrefix("/ui/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch path := r.URL.Path; {
		case path == "/ui" || path == "/ui/index.html":
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
			return
		case isView(path):
			http.ServeFileFS(w, r, files, "index.html")
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}

// isView reports whether path is the address of one of the page's views,
// which the page's script tells apart (app.js, route).
func isView(path string) bool {
	switch path {
	case "/ui/", "/ui/tasks", "/ui/tasks/", "/ui/schedules", "/ui/schedules/":
		return true
	}
	id, ok := strings.CutPrefix(path, "/ui/tasks/")
	return ok && !strings.Contains(strings.TrimSuffix(id, "/"), "/")
}
