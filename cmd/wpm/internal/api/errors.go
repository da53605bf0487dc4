package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/wpmdev/wpm/host"
)

// Codes the HTTP layer adds to host's.
const (
	codeBadRequest       host.ErrorCode = "bad_request"
	codeBodyTooLarge     host.ErrorCode = "body_too_large"
	codeUnauthorized     host.ErrorCode = "unauthorized"
	codeNotFound         host.ErrorCode = "not_found"
	codeMethodNotAllowed host.ErrorCode = "method_not_allowed"
	codeNotReady         host.ErrorCode = "not_ready"
	codeInvalidConfig    host.ErrorCode = "invalid_config"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[host.ErrorCode]int{
	codeBadRequest:         http.StatusBadRequest,
	host.CodeInvalidTask:   http.StatusBadRequest,
	host.CodeUnknownPool:   http.StatusNotFound,
	host.CodeUnknownPlugin: http.StatusNotFound,
	codeBodyTooLarge:       http.StatusRequestEntityTooLarge,
	host.CodeQueueFull:     http.StatusTooManyRequests,
	host.CodeTaskFailed:    http.StatusInternalServerError,
	host.CodeWorkerCrashed: http.StatusBadGateway,
	host.CodeMemoryLimit:   http.StatusBadGateway,
	host.CodeShuttingDown:  http.StatusServiceUnavailable,
	host.CodePoolPaused:    http.StatusServiceUnavailable,
	host.CodeTaskTimeout:   http.StatusGatewayTimeout,
	codeUnauthorized:       http.StatusUnauthorized,
	codeNotFound:           http.StatusNotFound,
	codeMethodNotAllowed:   http.StatusMethodNotAllowed,
	codeNotReady:           http.StatusServiceUnavailable,
	codeInvalidConfig:      http.StatusBadRequest,
	codeOverloaded:         http.StatusServiceUnavailable,
	codeUnknownTask:        http.StatusNotFound,
	codeTaskEnded:          http.StatusConflict,
	codeTaskNotEnded:       http.StatusConflict,
	codeNotRetryable:       http.StatusConflict,
	codeKeyReused:          http.StatusUnprocessableEntity,
	codeStorageFull:        http.StatusServiceUnavailable,
	codeAsyncUnavailable:   http.StatusServiceUnavailable,
	codeUnknownSchedule:    http.StatusNotFound,
	codeScheduleExists:     http.StatusConflict,
	host.CodeCanceled:      499, // client closed request; nobody reads it
	host.CodeInternal:      http.StatusInternalServerError,
}

// Error is an error the API answers with its own code and message.
type Error struct {
	Code    host.ErrorCode
	Message string
	TaskID  string
	// Detail holds a dead worker's last stderr lines, when it ran elsewhere.
	Detail string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func badRequest(msg string) error { return &Error{Code: codeBadRequest, Message: msg} }

// errorBody is SPEC §3's shape of every error.
type errorBody struct {
	OK    bool        `json:"ok"`
	ID    string      `json:"id,omitempty"`
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    host.ErrorCode `json:"code"`
	Message string         `json:"message"`
	// Detail holds a dead worker's last stderr lines.
	Detail string `json:"detail,omitempty"`
}

// describe turns any error a handler returned into its code, message,
// task ID and detail.
func describe(err error) (code host.ErrorCode, body errorBody) {
	var apiErr *Error
	var taskErr *host.TaskError
	var httpErr *echo.HTTPError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &apiErr):
		return apiErr.Code, errorBody{ID: apiErr.TaskID, Error: errorDetail{Code: apiErr.Code, Message: apiErr.Message, Detail: apiErr.Detail}}
	case errors.As(err, &tooLarge):
		code = codeBodyTooLarge
		body.Error.Message = "the request body is larger than the server's limit (http.bodyLimit); send a smaller task"
	case errors.As(err, &taskErr):
		code = host.Code(err)
		body.ID = taskErr.TaskID
		body.Error.Message = taskErr.Err.Error()
		body.Error.Detail = taskErr.Detail
	case errors.As(err, &httpErr):
		code, body.Error.Message = fromEcho(httpErr)
	default:
		code = host.Code(err)
		body.Error.Message = err.Error()
	}
	body.Error.Code = code
	return code, body
}

// fromEcho maps echo's own errors (no route, wrong method, ...) to codes.
func fromEcho(e *echo.HTTPError) (code host.ErrorCode, message string) {
	switch e.Code {
	case http.StatusNotFound:
		return codeNotFound, "no such endpoint; see GET /v1/openapi.json or the README for the API"
	case http.StatusMethodNotAllowed:
		return codeMethodNotAllowed, "this endpoint does not take that method"
	case http.StatusRequestEntityTooLarge:
		return codeBodyTooLarge, "the request body is larger than the server's limit (http.bodyLimit)"
	case http.StatusUnauthorized:
		return codeUnauthorized, "a valid bearer token is required: send Authorization: Bearer <http.authToken>"
	case http.StatusBadRequest:
		return codeBadRequest, "bad request"
	}
	return host.CodeInternal, http.StatusText(e.Code)
}

// status returns the HTTP status of code.
func status(code host.ErrorCode) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
