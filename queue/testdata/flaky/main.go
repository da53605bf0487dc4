// Command flaky is a test plugin for asynchronous tasks. Its input is
// {"once": "<path>", "ms": N, "bytes": N}: when the file at once exists it
// removes it and dies (so only the first attempt crashes); otherwise it
// sleeps ms milliseconds and answers {"pid": …, "pad": "<bytes x's>"}.
package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/wpmdev/wpm/shared"
)

type flaky struct{}

type request struct {
	Once  string `json:"once"`
	Ms    int    `json:"ms"`
	Bytes int    `json:"bytes"`
}

func (flaky) Run(ctx context.Context, input []byte) ([]byte, error) {
	var req request
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, shared.InvalidInput("flaky: %v", err)
	}
	if req.Once != "" {
		if err := os.Remove(req.Once); err == nil {
			os.Exit(3)
		}
	}
	select {
	case <-time.After(time.Duration(req.Ms) * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return json.Marshal(map[string]any{"pid": os.Getpid(), "pad": strings.Repeat("x", req.Bytes)})
}

func main() { shared.Serve(flaky{}) }
