package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Schedule is a recurring asynchronous task: each tick of Cron or Every
// makes one task on Pool (or a one-shot of Plugin) with Input.
type Schedule struct {
	// Name identifies it: 1 to 64 letters, digits, - and _.
	Name string `json:"name"`
	// Pool, or Plugin for a one-shot, runs its tasks.
	Pool   string `json:"pool,omitempty"`
	Plugin string `json:"plugin,omitempty"`
	// Input is each task's JSON input; empty means {}.
	Input json.RawMessage `json:"input,omitempty"`
	// Cron is 6 fields, seconds first (or @hourly, @daily, ...), in
	// Timezone (an IANA name; UTC when empty).
	Cron     string `json:"cron,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	// Every is a Go duration of at least 1s, when Cron is empty.
	Every string `json:"every,omitempty"`
	// Paused, Source ("api" or "config"), CreatedAt, Since, NextRun and
	// LastRuns are the server's; CreateSchedule ignores them.
	Paused    bool          `json:"paused,omitempty"`
	Source    string        `json:"source,omitempty"`
	CreatedAt time.Time     `json:"createdAt,omitzero"`
	Since     time.Time     `json:"since,omitzero"`
	NextRun   *time.Time    `json:"nextRun,omitempty"`
	LastRuns  []ScheduleRun `json:"lastRuns,omitempty"`
}

// ScheduleRun is one tick of a schedule: the task it made.
type ScheduleRun struct {
	TaskID string    `json:"taskId"`
	At     time.Time `json:"at"`
}

// scheduleBody is what POST /v1/schedules takes.
type scheduleBody struct {
	Name     string          `json:"name"`
	Pool     string          `json:"pool,omitempty"`
	Plugin   string          `json:"plugin,omitempty"`
	Input    json.RawMessage `json:"input,omitempty"`
	Cron     string          `json:"cron,omitempty"`
	Every    string          `json:"every,omitempty"`
	Timezone string          `json:"timezone,omitempty"`
}

func schedulePath(name string) string { return "/v1/schedules/" + url.PathEscape(name) }

// CreateSchedule makes a schedule (POST /v1/schedules). A name in use is
// [ErrScheduleExists]; a bad field [ErrBadRequest] naming it; an unknown
// pool or plugin [ErrUnknownPool] or [ErrUnknownPlugin].
func (c *Client) CreateSchedule(ctx context.Context, s Schedule) (*Schedule, error) {
	body, err := json.Marshal(scheduleBody{Name: s.Name, Pool: s.Pool, Plugin: s.Plugin, Input: s.Input, Cron: s.Cron, Every: s.Every, Timezone: s.Timezone})
	if err != nil {
		return nil, err
	}
	return c.scheduleAnswer(ctx, &request{method: http.MethodPost, path: "/v1/schedules", body: body})
}

// Schedules lists every schedule, by name (GET /v1/schedules).
func (c *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	var list struct {
		Schedules []Schedule `json:"schedules"`
	}
	if err := c.getJSON(ctx, "/v1/schedules", nil, &list); err != nil {
		return nil, err
	}
	return list.Schedules, nil
}

// Schedule returns one schedule, with its next run and last runs (GET
// /v1/schedules/{name}); an unknown one is [ErrUnknownSchedule].
func (c *Client) Schedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleAnswer(ctx, &request{method: http.MethodGet, path: schedulePath(name), idempotent: true})
}

// DeleteSchedule deletes a schedule and returns it as it was; the tasks
// it made stay.
func (c *Client) DeleteSchedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleAnswer(ctx, &request{method: http.MethodDelete, path: schedulePath(name)})
}

// PauseSchedule stops a schedule's ticks until ResumeSchedule.
func (c *Client) PauseSchedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleAnswer(ctx, &request{method: http.MethodPost, path: schedulePath(name) + "/pause", idempotent: true})
}

// ResumeSchedule starts a paused schedule's ticks again.
func (c *Client) ResumeSchedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleAnswer(ctx, &request{method: http.MethodPost, path: schedulePath(name) + "/resume", idempotent: true})
}

// scheduleAnswer sends r and decodes the schedule it answers.
func (c *Client) scheduleAnswer(ctx context.Context, r *request) (*Schedule, error) {
	a, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	var s Schedule
	return &s, decode(a.body, r.path, &s)
}
