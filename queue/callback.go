package queue

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
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
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

// A callback URL is compared with async.callbackAllow after both are
// parsed and normalised, never as text: a string prefix let
// http://127.0.0.1:9999@127.0.0.1:9998/x (user information) pass an entry
// http://127.0.0.1:9999 and go to port 9998. Scheme, host and port must be
// equal (default ports made explicit, host case-insensitive); the path is
// compared by segments once unreserved percent-escapes are decoded and "."
// and ".." resolved. What can not be normalised without guessing how the
// receiver reads it (user information, a fragment, a backslash, an encoded
// slash or backslash, a host name with other characters than letters,
// digits, "-", "_" and ".") is refused. The POST goes to the normalised URL,
// exactly the one checked.

// callbackURL is a callback URL or an entry of async.callbackAllow, parsed
// and normalised.
type callbackURL struct {
	scheme, host, port string
	// segs are the path's segments after the leading "/", normalised; a
	// path ending in "/" has a last segment "".
	segs  []string
	query string
}

// parseCallbackURL parses and normalises raw; its errors say what is wrong
// with raw, without naming it.
func parseCallbackURL(raw string) (callbackURL, error) {
	if strings.ContainsRune(raw, '\\') {
		return callbackURL{}, errors.New("holds a backslash, which receivers read differently; write the URL without one")
	}
	if strings.ContainsRune(raw, '#') {
		return callbackURL{}, errors.New("has a fragment (#...), which is never sent; leave it out")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return callbackURL{}, fmt.Errorf("is not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		return callbackURL{}, errors.New("is not an absolute http or https URL like http://127.0.0.1:1880/wpm/done")
	}
	if u.User != nil {
		return callbackURL{}, errors.New("carries user information (user@ or user:password@ before the host); leave it out: a callback is authenticated by its X-Wpm-Signature")
	}
	var c callbackURL
	c.scheme, c.query = u.Scheme, u.RawQuery
	if c.host, err = normaliseHost(u.Hostname()); err != nil {
		return callbackURL{}, err
	}
	if c.port, err = normalisePort(u.Scheme, u.Port()); err != nil {
		return callbackURL{}, err
	}
	if c.segs, err = normalisePath(u.EscapedPath()); err != nil {
		return callbackURL{}, err
	}
	return c, nil
}

// normaliseHost lower-cases a host name and drops its trailing dot, and
// writes an IP address in its canonical form.
func normaliseHost(h string) (string, error) {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", errors.New("has an IPv6 zone (%25...); use an address without one")
		}
		return a.String(), nil
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || strings.TrimLeft(h, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
		return "", fmt.Errorf("has a host %q that is not a host name or IP address; use letters, digits, '-', '_' and '.' only", h)
	}
	return h, nil
}

// normalisePort makes a scheme's default port explicit and drops leading
// zeros.
func normalisePort(scheme, p string) (string, error) {
	if p == "" {
		if scheme == "https" {
			return "443", nil
		}
		return "80", nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("has a port %q that is not 1 to 65535", p)
	}
	return strconv.Itoa(n), nil
}

// normalisePath splits an escaped path into segments, decodes the escapes
// of unreserved characters, writes the others in upper case, and resolves
// "." and ".." (RFC 3986 §5.2.4).
func normalisePath(p string) ([]string, error) {
	if p == "" {
		p = "/"
	}
	in := strings.Split(p[1:], "/")
	out := make([]string, 0, len(in))
	for i, raw := range in {
		seg, err := normaliseSegment(raw)
		if err != nil {
			return nil, err
		}
		last := i == len(in)-1
		switch seg {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
			continue
		}
		if last {
			out = append(out, "") // "/a/b/.." is "/a/"
		}
	}
	if len(out) == 0 {
		out = append(out, "")
	}
	return out, nil
}

// normaliseSegment decodes the percent-escapes of unreserved characters in
// one escaped path segment and writes the others in upper case; an escaped
// "/" or backslash is refused: receivers differ on whether it splits the path.
func normaliseSegment(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errBrokenEscape
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", errBrokenEscape
		}
		switch c := byte(v); {
		case c == '/' || c == '\\':
			return "", errors.New("encodes a slash or backslash (%2F, %5C) in its path; write the path without them")
		case unreserved(c):
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
		i += 2
	}
	return b.String(), nil
}

// errBrokenEscape is normaliseSegment's error for a "%" not followed by
// two hexadecimal digits.
var errBrokenEscape = errors.New("has a broken percent-escape in its path; write % as %25 and escapes as %XX")

// unreserved reports whether c is unreserved in URLs (RFC 3986 §2.3).
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0
}

// String is the normalised URL, with the scheme's default port left out.
func (c callbackURL) String() string {
	host := c.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p, _ := normalisePort(c.scheme, ""); c.port != p {
		host += ":" + c.port
	}
	s := c.scheme + "://" + host + "/" + strings.Join(c.segs, "/")
	if c.query != "" {
		s += "?" + c.query
	}
	return s
}

// allows reports whether entry, an entry of async.callbackAllow, allows
// target: same scheme, host and port, and a path under the entry's. An
// entry "/cb" allows /cb and /cb/...; "/cb/" allows /cb/... only; neither
// allows /cbx.
func (entry callbackURL) allows(target callbackURL) bool {
	if entry.scheme != target.scheme || entry.host != target.host || entry.port != target.port {
		return false
	}
	prefix, dir := entry.segs, false
	if n := len(prefix); prefix[n-1] == "" {
		prefix, dir = prefix[:n-1], true
	}
	if len(target.segs) < len(prefix) || !slices.Equal(target.segs[:len(prefix)], prefix) {
		return false
	}
	return !dir || len(target.segs) > len(prefix)
}

// parseAllowEntry parses an entry of async.callbackAllow. wholeOrigin is
// true for an entry with no path, such as http://host:9999: it allows
// every URL of that scheme, host and port (it was a text prefix once).
func parseAllowEntry(entry string) (c callbackURL, wholeOrigin bool, err error) {
	c, err = parseCallbackURL(entry)
	if err == nil && c.query != "" {
		err = errors.New("has a query (?...); an entry is a scheme, host, port and path prefix")
	}
	if err != nil {
		return callbackURL{}, false, fmt.Errorf("%q %w", entry, err)
	}
	u, _ := url.Parse(entry)
	return c, u.EscapedPath() == "", nil
}

// CheckCallbackAllow returns why entry can not be an entry of
// async.callbackAllow, or nil: an entry is an absolute http or https URL,
// without user information, query or fragment, whose path is the prefix
// (by segments) that callback URLs must be under.
func CheckCallbackAllow(entry string) error {
	_, _, err := parseAllowEntry(entry)
	return err
}

// parseAllow parses async.callbackAllow, warning of entries with no path.
func parseAllow(entries []string, logger hclog.Logger) ([]callbackURL, error) {
	out := make([]callbackURL, len(entries))
	for i, entry := range entries {
		c, wholeOrigin, err := parseAllowEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("async.callbackAllow[%d] %w; write an http or https URL prefix like http://127.0.0.1:1880/wpm/", i, err)
		}
		if wholeOrigin {
			logger.Warn("an async.callbackAllow entry with no path allows every URL of its scheme, host and port (it is no text prefix: "+
				"http://host:9999 does not allow http://host:99990 or http://host:9999@elsewhere); end it with a path like /wpm/ to narrow it",
				"entry", entry)
		}
		out[i] = c
	}
	return out, nil
}

// checkCallback returns raw normalised, the URL its callback is posted
// to, when an entry of async.callbackAllow allows it.
func (e *Engine) checkCallback(raw string) (string, error) {
	if len(e.allow) == 0 {
		return "", fmt.Errorf("%w: callbacks are off on this server (async.callbackAllow is empty); poll GET /v1/tasks/{id}?wait=30s instead", ErrCallbackRefused)
	}
	c, err := parseCallbackURL(raw)
	if err != nil {
		return "", fmt.Errorf("%w: query parameter callbackUrl %q %w", ErrCallbackRefused, raw, err)
	}
	for _, entry := range e.allow {
		if entry.allows(c) {
			return c.String(), nil
		}
	}
	return "", fmt.Errorf("%w: query parameter callbackUrl %q is not under any entry of async.callbackAllow (%s); send a URL under one of them (same scheme, host and port, path below the entry's)",
		ErrCallbackRefused, raw, strings.Join(e.opts.CallbackAllow, ", "))
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

// Pending callbacks are durable (at least once): a task that asked for one
// says in its record that it will come, so a kill of wpm must not lose it.
// When such a task ends, its final record is stored in the work-queue
// stream WPM_CALLBACKS (subject wpm.callbacks.<id>, message id = task id,
// so a second store is dropped) before the task's own message is
// acknowledged: a kill between the record's end and the store hands the
// task's message out again, and the runner, finding the task ended, stores
// the callback then. A delivery loop on every host with an allowlist takes
// the stored callbacks off a durable consumer and posts them; each attempt
// is one delivery of the message, so the attempt count (NumDelivered) and
// the back-off (a delayed nak) live in NATS and survive restarts, and no
// goroutine waits out a back-off. A message is acknowledged, and so gone,
// only after a 2xx or after callbackAttempts attempts. A stream (not a
// field on the record plus a scan at start) because the consumer already
// gives what a scan would have to rebuild: redelivery after a kill, one
// host per callback in a cluster, delays, and no scan of every record.

// Names of the callbacks' stream and consumer.
const (
	callbackStream   = "WPM_CALLBACKS"
	callbackPrefix   = "wpm.callbacks."
	callbackConsumer = "callbacks"
	// callbackConcurrency caps the callbacks one host posts at once.
	callbackConcurrency = 8
)

// callbackSubject is the subject of task id's callback.
func callbackSubject(id string) string { return callbackPrefix + id }

// setUpCallbacks makes (or updates) the callbacks' stream and consumer.
func (e *Engine) setUpCallbacks(ctx context.Context) error {
	var err error
	e.cbStream, err = ensureStream(ctx, e.js, e.workQueue(callbackStream, callbackPrefix))
	if err != nil {
		return fmt.Errorf("make the callback stream %s: %w", callbackStream, err)
	}
	e.cbCons, err = ensureConsumer(ctx, e.js, callbackStream, e.callbackConsumerConfig())
	if err != nil {
		return fmt.Errorf("make the consumer of %s: %w", callbackStream, err)
	}
	return nil
}

// callbackConsumerConfig is the durable consumer's of stored callbacks.
func (e *Engine) callbackConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       callbackConsumer,
		FilterSubject: callbackPrefix + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.opts.AckWait,
		MaxDeliver:    -1,
	}
}

// storeCallback stores the callback of t, when t has ended and asked for
// one, for the delivery loop; storing it again is harmless.
func (e *Engine) storeCallback(ctx context.Context, t Task) error {
	if t.CallbackURL == "" || !t.State.Ended() {
		return nil
	}
	body, err := encode(t) // a result kept beside the record is read at delivery
	if err != nil {
		return err
	}
	if _, err := e.js.Publish(ctx, callbackSubject(t.ID), body, jetstream.WithMsgID(t.ID)); err != nil {
		return fmt.Errorf("store the callback of task %s: %w", t.ID, err)
	}
	e.mu.Lock()
	e.cbPending[t.ID] = struct{}{}
	e.mu.Unlock()
	select {
	case e.cbWake <- struct{}{}:
	default:
	}
	return nil
}

// ackEnded acknowledges the message of a task that has ended, t being its
// record as stored, once the task's callback, if it asked for one, is
// stored; when it can not be, the message is handed back, to be seen again
// (ended) and its callback stored then.
func (e *Engine) ackEnded(ctx context.Context, msg jetstream.Msg, t Task) {
	if err := e.storeCallback(ctx, t); err != nil {
		e.logger.Warn("can not store a task's callback now; trying again", "task", t.ID, "error", err)
		_ = msg.NakWithDelay(e.opts.PollInterval)
		return
	}
	_ = msg.Ack()
}

// ackRead is ackEnded for a task ended by another (a cancel): it reads
// the record first.
func (e *Engine) ackRead(ctx context.Context, msg jetstream.Msg, id string) {
	t, _, err := e.get(ctx, id)
	switch {
	case errors.Is(err, ErrUnknownTask):
		_ = msg.Ack() // no record: nothing to call back with
	case err != nil:
		e.logger.Warn("can not read an ended task's record now; trying again", "task", id, "error", err)
		_ = msg.NakWithDelay(e.opts.PollInterval)
	default:
		e.ackEnded(ctx, msg, t)
	}
}

// deliverLoop posts the stored callbacks, a few at once, until cbCtx ends.
// It runs only on hosts with an async.callbackAllow: others can send none.
func (e *Engine) deliverLoop() {
	slots := make(chan struct{}, callbackConcurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-e.cbCtx.Done():
			return
		}
		msg, err := fetchOne(e.cbCons)
		if err != nil || msg == nil {
			<-slots
			if err != nil {
				e.logger.Debug("fetch failed", "stream", callbackStream, "error", err)
				e.needRepair()
			}
			// Callbacks stored here may have been sent by another host.
			e.forgetSent(e.cbCtx, callbackConcurrency)
			idle(e.cbCtx, e.cbWake, e.opts.PollInterval)
			continue
		}
		e.callbacks.Go(func() {
			defer func() { <-slots }()
			e.deliver(msg)
		})
	}
}

// deliver makes one attempt of one stored callback: on a 2xx, or on the
// last attempt, the message is acknowledged; otherwise it comes back after
// the back-off. An attempt cut short by Stop leaves it for the next start.
func (e *Engine) deliver(msg jetstream.Msg) {
	var t Task
	if err := json.Unmarshal(msg.Data(), &t); err != nil || t.ID == "" {
		e.logger.Error("dropping a stored callback that is no task record", "subject", msg.Subject(), "error", err)
		e.ackCallback(msg, "")
		return
	}
	attempt := 1
	if md, err := msg.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	// Checked again: the allowlist may have changed since the submit, or
	// differ on this host; a refusal counts as a failed attempt, so that
	// another host may send it.
	target, err := e.checkCallback(t.CallbackURL)
	body := msg.Data()
	if err == nil && t.ResultSize > 0 { // the result is kept beside the record
		if t, err = e.withResult(e.cbCtx, t); err == nil {
			body, err = encode(t)
		}
	}
	if err == nil {
		stopBeat := e.heartbeat(msg)
		err = e.post(target, body)
		stopBeat()
	}
	switch {
	case err == nil:
		e.ackCallback(msg, t.ID)
	case e.cbCtx.Err() != nil:
		e.logger.Warn("callback interrupted: wpm is stopping; it is sent after the next start", "task", t.ID)
	case attempt >= callbackAttempts:
		e.logger.Error("callback given up", "task", t.ID, "attempts", attempt, "error", err)
		e.ackCallback(msg, t.ID)
	default:
		e.logger.Warn("callback failed; trying again", "task", t.ID, "attempt", attempt, "error", err)
		_ = msg.NakWithDelay(e.opts.CallbackBackoff << (attempt - 1))
	}
}

// ackCallback acknowledges a stored callback, which removes it, and stops
// counting it as pending here.
func (e *Engine) ackCallback(msg jetstream.Msg, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), callbackTimeout)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		e.logger.Warn("can not acknowledge a callback; it may be sent again", "task", id, "error", err)
	}
	e.mu.Lock()
	delete(e.cbPending, id)
	e.mu.Unlock()
}

// forgetSent forgets the callbacks this engine stored that have left the
// stream (sent or given up, here or by another host), looking up at most
// limit of them (all when limit < 0), and returns how many it still
// counts as pending.
func (e *Engine) forgetSent(ctx context.Context, limit int) int {
	e.mu.Lock()
	ids := make([]string, 0, len(e.cbPending))
	for id := range e.cbPending {
		if len(ids) == limit {
			break
		}
		ids = append(ids, id)
	}
	e.mu.Unlock()
	for _, id := range ids {
		_, err := e.cbStream.GetLastMsgForSubject(ctx, callbackSubject(id))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			e.mu.Lock()
			delete(e.cbPending, id)
			e.mu.Unlock()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.cbPending)
}

// stopCallbacks lets the callbacks this engine stored be sent until ctx
// ends, then stops the delivery loop and waits for it; the callbacks not
// sent by then stay stored and are sent after the next start.
func (e *Engine) stopCallbacks(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for e.forgetSent(ctx, -1) > 0 {
		select {
		case <-ctx.Done():
			e.logger.Warn("callbacks still unsent at the end of the grace period stay stored; they are sent after the next start")
		case <-tick.C:
			continue
		}
		break
	}
	e.stopCbs()
	e.callbacks.Wait()
	e.client.CloseIdleConnections()
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
