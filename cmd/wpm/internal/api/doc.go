// Package api is wpm's HTTP API: echo handlers over a [host.Manager], the
// seed-compatible /example endpoints and the native /v1 ones, with one
// table that maps error codes to HTTP statuses and one error handler that
// writes every error in the same JSON shape.
//
// The API optionally requires a bearer token (Options.AuthToken) on every
// route but the /healthz and /readyz probes, serves Prometheus metrics on
// /metrics when given a handler, and serves its own OpenAPI 3 document
// (openapi.yaml, embedded) at /v1/openapi.json and /v1/openapi.yaml.
package api
