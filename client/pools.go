package client

import (
	"context"
	"net/http"
	"net/url"
)

// PoolPaused is the answer of [Client.Pause] and [Client.Resume].
type PoolPaused struct {
	Pool   string `json:"pool"`
	Paused bool   `json:"paused"`
}

// Pause pauses a pool for the whole cluster, until [Client.Resume] and
// across restarts (POST /v1/pools/{pool}/pause): its queued asynchronous
// tasks wait, running ones finish, and synchronous tasks are refused with
// [ErrPoolPaused]. An unknown pool is [ErrUnknownPool]; a server without
// asynchronous tasks answers [ErrAsyncUnavailable]. Repeating it changes
// nothing, so it is retried like a read.
func (c *Client) Pause(ctx context.Context, pool string) (*PoolPaused, error) {
	return c.setPaused(ctx, pool, "pause")
}

// Resume undoes [Client.Pause] (POST /v1/pools/{pool}/resume): the pool's
// queued tasks run again.
func (c *Client) Resume(ctx context.Context, pool string) (*PoolPaused, error) {
	return c.setPaused(ctx, pool, "resume")
}

func (c *Client) setPaused(ctx context.Context, pool, verb string) (*PoolPaused, error) {
	path := "/v1/pools/" + url.PathEscape(pool) + "/" + verb
	a, err := c.do(ctx, &request{method: http.MethodPost, path: path, idempotent: true})
	if err != nil {
		return nil, err
	}
	var v PoolPaused
	return &v, decode(a.body, path, &v)
}
