package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/host"
)

// Request bodies held at once are bounded by http.inflightBodyLimit: a
// request is charged its Content-Length before its body is read, until its
// task ends; one that does not fit gets 503 overloaded at once, with
// Retry-After.
func TestAPI_inflightBodyLimit(t *testing.T) {
	const limit = 100_000
	s := newServer(t, withInflightBodyLimit(limit))
	body, err := io.ReadAll(bigBody(60_000))
	require.NoError(t, err)

	// A request whose body is on its way holds its length.
	slow := s.dial(t)
	slow.send(t, fmt.Sprintf("POST /v1/pools/M/tasks HTTP/1.1\nHost: wpm\nContent-Type: application/json\nContent-Length: %d\n\n", len(body)))
	_, err = slow.Write(body[:10])
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.api.InflightBodyBytes() == int64(len(body)) }, 5*time.Second, time.Millisecond)

	// Another that would go over the budget is refused, its body dropped.
	a := s.do(t, http.MethodPost, "/v1/pools/CPU/tasks", bigBody(50_000))
	requireError(t, a, http.StatusServiceUnavailable, "overloaded")
	assert.Equal(t, "1", a.Header.Get("Retry-After"))
	assert.Contains(t, a.Raw, "http.inflightBodyLimit")
	// So is one of unknown length: it is charged the body limit.
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/plugins/misbehave/run", io.MultiReader(bigBody(10)))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// Once the first task ends, its bytes are free again.
	_, err = slow.Write(body[10:])
	require.NoError(t, err)
	a, _ = slow.answer(t)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	require.Eventually(t, func() bool { return s.api.InflightBodyBytes() == 0 }, 5*time.Second, time.Millisecond)
	a = s.do(t, http.MethodPost, "/v1/pools/M/tasks", bigBody(50_000))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	a = s.do(t, http.MethodPost, "/v1/plugins/misbehave/run", io.MultiReader(bigBody(10)))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Zero(t, s.api.InflightBodyBytes())
	s.requireStillServes(t)
}

// withBigBodies raises the body limit to n and adds pool BIG (misbehave,
// one worker, a long queue) for tasks with big inputs.
func withBigBodies(n int64) serverOption {
	return func(c *host.Config, o *api.Options) {
		o.BodyLimitBytes = n
		c.Pools = append(c.Pools, host.PoolConfig{Name: "BIG", Plugin: "misbehave", Workers: 1, QueueLimit: 64})
	}
}

// Over the budget, every client still reads its answer: 40 clients send
// 9.5 MB bodies at once against a budget of three; each reads a whole
// JSON 200 or 503 overloaded, none a reset (the refused body was left
// unread and the connection closed under the client still sending it).
func TestAPI_inflightBodyLimit_refusedReadTheirAnswer(t *testing.T) {
	const size, clients = 9_500_000, 40
	s := newServer(t, withBigBodies(10<<20), withInflightBodyLimit(3*size))
	body := append(append([]byte(`{"fault":"sleep","ms":1,"lines":["`), bytes.Repeat([]byte("x"), size-40)...), `"]}`...)
	got := make(chan string, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Post(s.URL+"/v1/pools/BIG/tasks", "application/json", bytes.NewReader(body))
			if err != nil {
				msg := err.Error()
				got <- "error: " + msg[strings.LastIndex(msg, ": ")+2:] // the cause, not the addresses
				return
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			var answer struct {
				OK    bool
				Error struct{ Code string }
			}
			switch {
			case err != nil:
				got <- fmt.Sprintf("%d, then reading: %v", resp.StatusCode, err)
			case json.Unmarshal(raw, &answer) != nil:
				got <- fmt.Sprintf("%d, not JSON: %.80q", resp.StatusCode, raw)
			default:
				got <- fmt.Sprintf("%d %s", resp.StatusCode, answer.Error.Code)
			}
		})
	}
	wg.Wait()
	close(got)
	tally := map[string]int{}
	for g := range got {
		tally[g]++
	}
	assert.Positive(t, tally["200 "], "%v", tally)
	assert.Positive(t, tally["503 overloaded"], "%v", tally)
	assert.Equal(t, clients, tally["200 "]+tally["503 overloaded"], "every client reads a 200 or a 503: %v", tally)
	require.Eventually(t, func() bool { return s.api.InflightBodyBytes() == 0 }, 10*time.Second, time.Millisecond)
	s.requireStillServes(t)
}

// A one-shot is charged twice its body: net/rpc encodes a copy of it that
// lives as long as the one-shot's process.
func TestAPI_inflightBodyLimit_oneShotChargedTwice(t *testing.T) {
	s := newServer(t)
	const size = 1000
	slow := s.dial(t)
	slow.send(t, fmt.Sprintf("POST /v1/plugins/misbehave/run HTTP/1.1\nHost: wpm\nContent-Type: application/json\nContent-Length: %d\n\n{", size))
	require.Eventually(t, func() bool { return s.api.InflightBodyBytes() == 2*size }, 5*time.Second, time.Millisecond)
}
