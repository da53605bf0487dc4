// Package api is wpm's HTTP API: echo handlers over a [host.Manager], the
// seed-compatible /example endpoints and the native /v1 ones, with one
// table that maps error codes to HTTP statuses and one error handler that
// writes every error in the same JSON shape.
package api
