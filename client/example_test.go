package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/wpmdev/wpm/client"
)

// A task on a pool, an asynchronous task awaited, and a typed error.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(serverURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}

	res, err := c.Run(ctx, "CPU", json.RawMessage(`{"duration": 10}`))
	if err != nil {
		log.Fatal(err)
	}
	var out struct {
		RequestedMs int `json:"requestedMs"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ran on", res.Pool, "for", out.RequestedMs, "ms")

	acc, err := c.Submit(ctx, client.SubmitRequest{Pool: "CPU", Input: json.RawMessage(`{"duration": 20}`)})
	if err != nil {
		log.Fatal(err)
	}
	task, err := c.Wait(ctx, acc.ID, 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("async task", task.State)

	_, err = c.Run(ctx, "GPU", json.RawMessage(`{}`))
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Code, errors.Is(err, client.ErrUnknownPool))
	}
	// Output:
	// ran on CPU for 10 ms
	// async task succeeded
	// 404 unknown_pool true
}

// Following an asynchronous task's events until it finished.
func ExampleClient_TaskEvents() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(serverURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}
	acc, err := c.Submit(ctx, client.SubmitRequest{Pool: "CPU", Input: json.RawMessage(`{"duration": 200}`)})
	if err != nil {
		log.Fatal(err)
	}
	var progressed bool
	for e, err := range c.TaskEvents(ctx, acc.ID, client.EventsOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		switch e.Type {
		case client.EventTaskProgress:
			progressed = true
		case client.EventTaskFinished:
			fmt.Println("finished:", e.Code, "with progress reports:", progressed)
		}
	}
	// Output:
	// finished: ok with progress reports: true
}
