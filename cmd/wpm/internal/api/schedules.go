package api

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

	"github.com/labstack/echo/v4"

	"github.com/wpmdev/wpm/queue"
)

// Codes of schedules.
const (
	codeUnknownSchedule = queue.CodeUnknownSchedule
	codeScheduleExists  = queue.CodeScheduleExists
)

// Routes of schedules.
const (
	routeSchedules      = "/v1/schedules"
	routeSchedule       = "/v1/schedules/:name"
	routeSchedulePause  = "/v1/schedules/:name/pause"
	routeScheduleResume = "/v1/schedules/:name/resume"
)

// scheduleRoutes serves the schedules (queue/schedule.go).
func (s *Server) scheduleRoutes(apiRoute []echo.MiddlewareFunc) {
	s.echo.POST(routeSchedules, s.createSchedule, apiRoute...)
	s.echo.GET(routeSchedules, s.listSchedules, apiRoute...)
	s.echo.GET(routeSchedule, s.getSchedule, apiRoute...)
	s.echo.DELETE(routeSchedule, s.deleteSchedule, apiRoute...)
	s.echo.POST(routeSchedulePause, s.pauseSchedule, apiRoute...)
	s.echo.POST(routeScheduleResume, s.resumeSchedule, apiRoute...)
}

// scheduleRequest is the body of POST /v1/schedules.
type scheduleRequest struct {
	Name     string          `json:"name"`
	Pool     string          `json:"pool"`
	Plugin   string          `json:"plugin"`
	Input    json.RawMessage `json:"input"`
	Cron     string          `json:"cron"`
	Every    string          `json:"every"`
	Timezone string          `json:"timezone"`
}

// scheduleList is the body of GET /v1/schedules.
type scheduleList struct {
	Schedules []queue.Schedule `json:"schedules"`
}

func (s *Server) createSchedule(c echo.Context) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	var req scheduleRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest(scheduleBodyError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the body must hold one JSON object, the schedule, and nothing after it")
	}
	if string(req.Input) == "null" {
		req.Input = nil
	}
	sched, err := e.CreateSchedule(c.Request().Context(), queue.Schedule{Name: req.Name, Pool: req.Pool, Plugin: req.Plugin,
		Input: req.Input, Cron: req.Cron, Every: req.Every, Timezone: req.Timezone})
	if err != nil {
		return scheduleError(req.Name, err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/schedules/"+url.PathEscape(sched.Name))
	return c.JSON(http.StatusCreated, sched)
}

// scheduleBodyError says what is wrong with a schedule's JSON, naming the
// field when one is to blame.
func scheduleBodyError(err error) string {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("field %s must be a %s, got a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Sprintf("the body has %s; a schedule takes name, pool or plugin, input, cron or every, and timezone", strings.TrimPrefix(err.Error(), "json: "))
	}
	return "the body must be a JSON object {\"name\", \"pool\" or \"plugin\", \"input\", \"cron\" or \"every\", \"timezone\"}: " + err.Error()
}

// scheduleError turns the queue's errors about schedule name into the
// API's.
func scheduleError(name string, err error) error {
	err = taskError("", err)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Code == codeUnknownSchedule {
		apiErr.Message = clipName(apiErr.Message, name)
	}
	return err
}

func (s *Server) listSchedules(c echo.Context) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	list, err := e.ListSchedules(c.Request().Context())
	if err != nil {
		return scheduleError("", err)
	}
	return c.JSON(http.StatusOK, scheduleList{Schedules: list})
}

func (s *Server) getSchedule(c echo.Context) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	sched, err := e.GetSchedule(c.Request().Context(), c.Param("name"))
	if err != nil {
		return scheduleError(c.Param("name"), err)
	}
	return c.JSON(http.StatusOK, sched)
}

func (s *Server) deleteSchedule(c echo.Context) error {
	return s.actOnSchedule(c, (*queue.Engine).DeleteSchedule)
}

func (s *Server) pauseSchedule(c echo.Context) error {
	return s.actOnSchedule(c, (*queue.Engine).PauseSchedule)
}

func (s *Server) resumeSchedule(c echo.Context) error {
	return s.actOnSchedule(c, (*queue.Engine).ResumeSchedule)
}

// actOnSchedule applies act to the named schedule and answers with it.
func (s *Server) actOnSchedule(c echo.Context, act func(*queue.Engine, context.Context, string) (queue.Schedule, error)) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	name := c.Param("name")
	sched, err := act(e, c.Request().Context(), name)
	if err != nil {
		return scheduleError(name, err)
	}
	return c.JSON(http.StatusOK, sched)
}
