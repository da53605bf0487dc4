package async

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SignatureHeader carries the HMAC-SHA256 of a callback's body, keyed
// with async.callbackSecret, as "sha256=<hex>".
const SignatureHeader = "X-Wpm-Signature"

// Callback delivery: attempts, and the bound on each.
const (
	callbackAttempts = 5
	callbackTimeout  = 10 * time.Second
)

// ErrCallbackRefused means a callback URL is not allowed.
var ErrCallbackRefused = errors.New("callback refused")

// checkCallback checks that raw is an http(s) URL starting with one of
// the allowed prefixes.
func (e *Engine) checkCallback(raw string) error {
	if len(e.opts.CallbackAllow) == 0 {
		return fmt.Errorf("%w: callbacks are off on this server (async.callbackAllow is empty); poll GET /v1/tasks/{id}?wait=30s instead", ErrCallbackRefused)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: callbackUrl must be an absolute http or https URL", ErrCallbackRefused)
	}
	for _, prefix := range e.opts.CallbackAllow {
		if strings.HasPrefix(raw, prefix) {
			return nil
		}
	}
	return fmt.Errorf("%w: callbackUrl is not under any prefix of async.callbackAllow (%s)", ErrCallbackRefused, strings.Join(e.opts.CallbackAllow, ", "))
}

// sign returns the signature header's value for body, or "" without a
// secret.
func sign(secret string, body []byte) string {
	if secret == "" {
		return ""
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// notify posts t, which has ended, to its callback URL in the background,
// retrying with back-off; a callback still undelivered at the end of the
// engine's grace period is dropped (the record stays readable).
func (e *Engine) notify(t Task) {
	if t.CallbackURL == "" || !t.State.Ended() {
		return
	}
	body, err := json.Marshal(t)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cbClosed {
		e.logger.Warn("callback dropped: wpm is stopping", "task", t.ID)
		return
	}
	e.callbacks.Go(func() { e.deliver(t.ID, t.CallbackURL, body) })
}

// deliver makes the attempts of one callback.
func (e *Engine) deliver(id, target string, body []byte) {
	wait := e.opts.CallbackBackoff
	for attempt := 1; attempt <= callbackAttempts; attempt++ {
		err := e.post(target, body)
		if err == nil {
			return
		}
		e.logger.Warn("callback failed", "task", id, "attempt", attempt, "error", err)
		select {
		case <-e.cbCtx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
	e.logger.Error("callback given up", "task", id, "attempts", callbackAttempts)
}

// post sends one attempt; any answer but 2xx is a failure.
func (e *Engine) post(target string, body []byte) error {
	ctx, cancel := context.WithTimeout(e.cbCtx, callbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wpm")
	if sig := sign(e.opts.CallbackSecret, body); sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the callback URL answered %s", resp.Status)
	}
	return nil
}

// newCallbackClient returns the client of callbacks: it follows no
// redirect, so that nothing outside async.callbackAllow is contacted.
func newCallbackClient() *http.Client {
	return &http.Client{
		Timeout: callbackTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("callbacks follow no redirects")
		},
	}
}
