package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Pools returns every pool's settings and live state (GET /v1/pools).
func (c *Client) Pools(ctx context.Context) (*PoolList, error) {
	var list PoolList
	return &list, c.getJSON(ctx, "/v1/pools", nil, &list)
}

// Pool returns one pool's settings and live state (GET /v1/pools/{pool}).
func (c *Client) Pool(ctx context.Context, name string) (*Pool, error) {
	var p Pool
	return &p, c.getJSON(ctx, "/v1/pools/"+url.PathEscape(name), nil, &p)
}

// Plugins returns the plugins in the server's plugins directory, by name
// (GET /v1/plugins).
func (c *Client) Plugins(ctx context.Context) ([]Plugin, error) {
	var list struct {
		Plugins []Plugin `json:"plugins"`
	}
	return list.Plugins, c.getJSON(ctx, "/v1/plugins", nil, &list)
}

// Cluster returns the cluster's live hosts, by name (GET /v1/cluster).
func (c *Client) Cluster(ctx context.Context) ([]Host, error) {
	var v struct {
		Hosts []Host `json:"hosts"`
	}
	return v.Hosts, c.getJSON(ctx, "/v1/cluster", nil, &v)
}

// Health returns nil while the server's process serves (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	var v struct{}
	return c.getJSON(ctx, "/healthz", nil, &v)
}

// Ready asks whether every pool has a ready worker (GET /readyz). A server
// that is not ready answers the Readiness with Ready false and
// [ErrNotReady]; one shutting down answers nil and [ErrShuttingDown].
func (c *Client) Ready(ctx context.Context) (*Readiness, error) {
	a, err := c.do(ctx, &request{method: http.MethodGet, path: "/readyz", idempotent: true})
	body := []byte(nil)
	var apiErr *Error
	switch {
	case err == nil:
		body = a.body
	case errors.As(err, &apiErr) && apiErr.Code == CodeNotReady:
		body = apiErr.body
	default:
		return nil, err
	}
	var rd Readiness
	if derr := decode(body, "/readyz", &rd); derr != nil {
		return nil, derr
	}
	return &rd, err
}

// Reload makes the server re-read its configuration and apply it without
// failing a task (POST /v1/admin/reload); it returns the pools that run
// now. A configuration the server refuses is [ErrInvalidConfig], and the
// running one stays.
func (c *Client) Reload(ctx context.Context) ([]string, error) {
	a, err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/admin/reload"})
	if err != nil {
		return nil, err
	}
	var v struct {
		Pools []string `json:"pools"`
	}
	return v.Pools, decode(a.body, "/v1/admin/reload", &v)
}
