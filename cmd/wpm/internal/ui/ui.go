// Package ui is wpm's dashboard: one page and its script and style,
// embedded in the binary, that show the pools, workers and tasks live
// through the event stream (GET /v1/events) and run tasks.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard: GET /ui/ is the page, /ui/<file> its
// files, and /ui and /ui/index.html redirect to /ui/. They hold no data,
// so they need no token; the page asks for it.
func Handler() http.Handler {
	files, _ := fs.Sub(static, "static") // the directory is embedded
	fileServer := http.StripPrefix("/ui/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch r.URL.Path {
		case "/ui", "/ui/index.html":
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
			return
		case "/ui/":
			http.ServeFileFS(w, r, files, "index.html")
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}
