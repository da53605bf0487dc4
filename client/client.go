package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of the retries of 429 and 503 answers (see the package doc).
const (
	// DefaultRetries is how many times a request is repeated at most.
	DefaultRetries = 3
	// DefaultMaxRetryWait is the longest Retry-After the client waits for;
	// an answer asking for longer is returned at once.
	DefaultMaxRetryWait = 30 * time.Second
)

// maxAnswerBytes bounds how much of an answer the client reads.
const maxAnswerBytes = 64 << 20

// Client is a client of one wpm server's HTTP API. It is safe for
// concurrent use.
type Client struct {
	base         string
	token        string
	hc           *http.Client
	retries      int
	maxRetryWait time.Duration
}

// Option configures a [Client].
type Option func(*Client)

// WithToken sends token as a bearer token with every request, for a server
// with http.authToken set.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sends the requests with hc instead of
// [http.DefaultClient]. Event streams last long: give hc no Timeout, and
// bound requests with their context instead.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetries sets how many times at most a request answered 429 or 503
// with Retry-After is repeated (0: never) and the longest Retry-After the
// client waits for. The package doc says which requests are repeated.
func WithRetries(n int, maxWait time.Duration) Option {
	return func(c *Client) { c.retries, c.maxRetryWait = max(n, 0), maxWait }
}

// New returns a client of the server at baseURL, such as
// "http://127.0.0.1:3000" (a path prefix is kept, a trailing slash
// dropped).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http:// or https:// and a host", baseURL)
	}
	c := &Client{
		base:         strings.TrimRight(baseURL, "/"),
		hc:           http.DefaultClient,
		retries:      DefaultRetries,
		maxRetryWait: DefaultMaxRetryWait,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// request is one API request before it is sent.
type request struct {
	method string
	path   string // escaped, starting with /
	query  url.Values
	body   []byte // nil: no body
	header http.Header
	// idempotent: sending it twice does what sending it once does.
	idempotent bool
}

func (r *request) url(base string) string {
	u := base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	return u
}

// answer is a 2xx answer, read whole.
type answer struct {
	header http.Header
	body   []byte
}

// do sends r, repeating it on 429 and 503 as the package doc says, and
// returns a 2xx answer or an error: an [*Error] for any other answer.
func (c *Client) do(ctx context.Context, r *request) (*answer, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, r, "application/json")
		if err != nil {
			return nil, err
		}
		a, err := readAnswer(resp, r)
		if err == nil {
			return a, nil
		}
		var apiErr *Error
		if !errors.As(err, &apiErr) || attempt >= c.retries || !c.mayRepeat(ctx, r, apiErr) {
			return nil, err
		}
		t := time.NewTimer(apiErr.RetryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (waiting to retry after: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// mayRepeat reports whether r, answered e, is to be sent again after e's
// Retry-After.
func (c *Client) mayRepeat(ctx context.Context, r *request, e *Error) bool {
	if e.StatusCode != http.StatusTooManyRequests && e.StatusCode != http.StatusServiceUnavailable {
		return false
	}
	if !e.hasRetryAfter || e.RetryAfter > c.maxRetryWait {
		return false
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < e.RetryAfter {
		return false
	}
	return r.idempotent || e.Code == CodeQueueFull || e.Code == CodeOverloaded
}

// send sends r once and returns the response, whatever its status.
func (c *Client) send(ctx context.Context, r *request, accept string) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url(c.base), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", accept)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.hc.Do(req)
}

// readAnswer reads resp whole and closes it: a 2xx answer, or an
// [*Error].
func readAnswer(resp *http.Response, r *request) (*answer, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", r.method, resp.Request.URL, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return &answer{header: resp.Header, body: body}, nil
	}
	return nil, apiError(resp, body)
}

// apiError makes the [*Error] of a non-2xx answer.
func apiError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode, Method: resp.Request.Method, URL: resp.Request.URL.String(), body: body}
	e.RetryAfter, e.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	var shape struct {
		ID    string `json:"id"`
		Error struct {
			Code    Code   `json:"code"`
			Message string `json:"message"`
			Detail  string `json:"detail"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &shape) == nil && shape.Error.Code != "" {
		e.Code, e.Message, e.Detail, e.TaskID = shape.Error.Code, shape.Error.Message, shape.Error.Detail, shape.ID
	}
	return e
}

// getJSON sends a GET of path (escaped) and decodes the answer into v.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, v any) error {
	a, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: query, idempotent: true})
	if err != nil {
		return err
	}
	return decode(a.body, path, v)
}

// decode unmarshals an answer's body into v.
func decode(body []byte, what string, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("client: the answer of %s is not what wpm answers: %w", what, err)
	}
	return nil
}
