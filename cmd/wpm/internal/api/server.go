package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/cmd/wpm/internal/events"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/randid"
	"github.com/wpmdev/wpm/queue"
)

// Options configures a [Server].
type Options struct {
	// BodyLimitBytes caps request bodies; larger ones get 413.
	BodyLimitBytes int64
	// Logger receives one line per request and per task.
	Logger hclog.Logger
	// AuthToken, when not empty, is the bearer token every request must
	// carry (Authorization: Bearer <token>), except those to /healthz and
	// /readyz; others get 401 unauthorized.
	AuthToken string
	// MetricsAuth makes GET /metrics need the token too.
	MetricsAuth bool
	// Metrics serves GET /metrics (the Prometheus text format); nil leaves
	// the route out.
	Metrics http.Handler
	// Reload re-reads the configuration and applies it (POST
	// /v1/admin/reload); nil leaves the route out. Its error is answered
	// as 400 invalid_config.
	Reload func() error
	// ReadTimeout bounds reading a request, headers and body; a body that
	// stalls gets 400 and its connection is closed (default
	// DefaultReadTimeout).
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxConns caps the connections open at once (default
	// DefaultMaxConns); see [Server.LimitListener].
	MaxConns int
	// InflightBodyLimitBytes caps the request-body bytes held at once by
	// the requests being served (default DefaultInflightBodyLimitBytes, at
	// least BodyLimitBytes); beyond it a request gets 503 overloaded.
	InflightBodyLimitBytes int64
	// Events, when not nil, serves GET /v1/events and
	// /v1/tasks/{id}/events from this bus, and lets a pool task ask for
	// its progress with Accept: text/event-stream (events.go).
	Events *events.Bus
	// KeepAlive is how often an idle event stream sends a comment
	// (default DefaultKeepAlive).
	KeepAlive time.Duration
	// UI, when not nil, serves GET /ui/ (the page; /ui redirects there) and
	// what the page loads.
	UI http.Handler
	// OneShotMemoryLimitMB is the configured oneShot.memoryLimitMB: when
	// more than 0, the most memory a caller may ask a one-shot for.
	OneShotMemoryLimitMB int
	// Tasks runs asynchronous tasks (?async=true, /v1/tasks); nil answers
	// those with 503 async_unavailable. It also forwards synchronous tasks
	// of pools other hosts run (docs/SCALING.md) and serves /v1/cluster.
	Tasks *queue.Engine
	// NoWorkers is set on a host of role api: every task goes through
	// Tasks to a host that runs it.
	NoWorkers bool
	// HealthOnly is set on a host of role worker: it serves /healthz,
	// /readyz and /metrics only.
	HealthOnly bool
	// TracerProvider, when not nil, makes a span of each request,
	// continuing its traceparent (trace.go), and puts the trace id in the
	// request's and its task's log lines.
	TracerProvider trace.TracerProvider
}

// Server is wpm's HTTP API over one manager.
type Server struct {
	echo     *echo.Echo
	mgr      *host.Manager
	opts     Options
	logger   hclog.Logger
	shutting atomic.Bool
	budget   bodyBudget
	// tokenSum is the SHA-256 of Options.AuthToken; nil when auth is off.
	tokenSum []byte
}

// New builds the API over mgr.
func New(mgr *host.Manager, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.BodyLimitBytes <= 0 {
		opts.BodyLimitBytes = 10 << 20
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.InflightBodyLimitBytes <= 0 {
		opts.InflightBodyLimitBytes = DefaultInflightBodyLimitBytes
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	opts.InflightBodyLimitBytes = max(opts.InflightBodyLimitBytes, opts.BodyLimitBytes)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{echo: e, mgr: mgr, opts: opts, logger: opts.Logger}
	s.budget.limit = opts.InflightBodyLimitBytes
	// The heap that held large bodies would otherwise stay with the
	// process until the next GC cycle, which an idle server may not run
	// for minutes, and the scavenger after it.
	s.budget.drained = debug.FreeOSMemory
	if opts.AuthToken != "" {
		sum := sha256.Sum256([]byte(opts.AuthToken))
		s.tokenSum = sum[:]
	}
	e.HTTPErrorHandler = s.handleError
	if opts.TracerProvider != nil {
		e.Use(s.traceRequests)
	}
	e.Use(s.logRequests, s.authenticate, s.refuseWhileShuttingDown)

	// API routes decode their path parameters and refuse unknown query
	// parameters; those that take a task also reserve its body. The
	// probes and /metrics take what monitoring systems send.
	if opts.HealthOnly {
		s.probeRoutes()
		return s
	}
	apiRoute := []echo.MiddlewareFunc{s.decodePathParams, s.checkQuery}
	taskRoute := []echo.MiddlewareFunc{s.decodePathParams, s.checkQuery, s.checkPriority, s.reserveBody}
	e.POST("/example/pool", s.examplePool, taskRoute...)
	e.POST(routeExampleOneShot, s.exampleOneShot, taskRoute...)
	e.POST(routePoolTasks, s.submit, taskRoute...)
	e.POST(routeRun, s.runOnce, taskRoute...)
	e.GET("/v1/pools", s.listPools, apiRoute...)
	e.GET("/v1/pools/:pool", s.getPool, apiRoute...)
	s.pauseRoutes(apiRoute)
	e.GET("/v1/plugins", s.listPlugins, apiRoute...)
	e.GET(routeTasks, s.listTasks, apiRoute...)
	e.GET(routeTask, s.getTask, apiRoute...)
	e.DELETE(routeTask, s.cancelTask, apiRoute...)
	e.POST(routeRetry, s.retryTask, apiRoute...)
	s.probeRoutes()
	e.GET(routeCluster, s.cluster, apiRoute...)
	if opts.Reload != nil {
		e.POST("/v1/admin/reload", s.reload, apiRoute...)
	}
	e.GET("/v1/openapi.json", s.openAPIJSON, apiRoute...)
	e.GET("/v1/openapi.yaml", s.openAPIYAML, apiRoute...)
	s.eventRoutes(apiRoute)
	s.scheduleRoutes(apiRoute)
	return s
}

// probeRoutes serves the probes and /metrics, which every role serves.
func (s *Server) probeRoutes() {
	s.echo.GET(routeHealthz, s.healthz)
	s.echo.GET(routeReadyz, s.readyz)
	if s.opts.Metrics != nil {
		s.echo.GET(routeMetrics, echo.WrapHandler(s.opts.Metrics))
	}
}

// Handler returns the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// StartShutdown makes every later request but /healthz and /metrics answer
// 503 shutting_down. Requests already accepted go on.
func (s *Server) StartShutdown() {
	s.shutting.Store(true)
	s.closeStreams()
}

// examplePoolRequest is the Node.js seed's /example/pool body.
type examplePoolRequest struct {
	PoolName   *string         `json:"poolName"`
	WorkerTask json.RawMessage `json:"workerTask"`
}

// exampleOneShotRequest is the Node.js seed's /example/oneShot body.
type exampleOneShotRequest struct {
	WorkerScript      *string         `json:"workerScript"`
	WorkerTask        json.RawMessage `json:"workerTask"`
	WorkerMemoryLimit *int64          `json:"workerMemoryLimit"`
}

func (s *Server) examplePool(c echo.Context) error {
	var req examplePoolRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if req.PoolName == nil || *req.PoolName == "" {
		return badRequest(`"poolName" is required: the name of a pool, like "CPU"`)
	}
	if req.WorkerTask == nil {
		return badRequest(`"workerTask" is required: the task's JSON input, like {"duration": 3000}`)
	}
	c.Set(ctxName, *req.PoolName)
	if later, err := asyncWanted(c); err != nil || later {
		return s.orAsync(c, err, poolRequest(*req.PoolName, req.WorkerTask))
	}
	if s.forwardsPool(*req.PoolName) {
		return s.forward(c, poolRequest(*req.PoolName, req.WorkerTask), true)
	}
	res, err := s.mgr.Submit(c.Request().Context(), *req.PoolName, req.WorkerTask, host.Priority(priorityOf(c)))
	s.logTask(c, res, err)
	if err != nil {
		if pc, cfgErr := s.mgr.PoolConfig(*req.PoolName); cfgErr == nil && pc.Script != "" {
			return scriptError(c, err)
		}
		return err
	}
	return writeResult(c, res, true)
}

// scriptError answers a Node.js worker script's error reply as the
// Node.js project does: status 500 and the reply message, {"ok": false,
// "id", "type": "error", "data": message}. Other errors keep their shape.
func scriptError(c echo.Context, err error) error {
	te, ok := errors.AsType[*host.TaskError](err)
	if !ok || host.Code(err) != host.CodeTaskFailed {
		return err
	}
	return c.JSON(http.StatusInternalServerError, struct {
		OK   bool   `json:"ok"`
		ID   string `json:"id"`
		Type string `json:"type"`
		Data string `json:"data"`
	}{false, te.TaskID, "error", te.Err.Error()})
}

func (s *Server) exampleOneShot(c echo.Context) error {
	var req exampleOneShotRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if req.WorkerScript == nil || *req.WorkerScript == "" {
		return badRequest(`"workerScript" is required: the name of a plugin in the plugins directory, like "cpuload"`)
	}
	if req.WorkerTask == nil {
		return badRequest(`"workerTask" is required: the task's JSON input, like {"duration": 3000}`)
	}
	c.Set(ctxName, *req.WorkerScript)
	var opts host.RunOptions
	if req.WorkerMemoryLimit != nil {
		n, err := s.memoryLimitMB(`"workerMemoryLimit"`, *req.WorkerMemoryLimit)
		if err != nil {
			return err
		}
		opts.MemoryLimitMB = n
	}
	if later, err := asyncWanted(c); err != nil || later {
		return s.orAsync(c, err, oneShotRequest(*req.WorkerScript, req.WorkerTask, opts))
	}
	if s.opts.NoWorkers {
		return s.forward(c, oneShotRequest(*req.WorkerScript, req.WorkerTask, opts), true)
	}
	res, err := s.mgr.RunOnce(c.Request().Context(), *req.WorkerScript, req.WorkerTask, opts, host.Priority(priorityOf(c)))
	s.logTask(c, res, err)
	if err != nil {
		if host.IsScriptName(*req.WorkerScript) {
			return scriptError(c, err)
		}
		return err
	}
	return writeResult(c, res, true)
}

func (s *Server) submit(c echo.Context) error {
	input, err := s.taskInput(c)
	if err != nil {
		return err
	}
	if later, err := asyncWanted(c); err != nil || later {
		return s.orAsync(c, err, poolRequest(c.Param("pool"), input))
	}
	if s.forwardsPool(c.Param("pool")) {
		return s.forward(c, poolRequest(c.Param("pool"), input), false)
	}
	if s.opts.Events != nil && wantsEventStream(c) {
		return s.submitStreaming(c, c.Param("pool"), input)
	}
	res, err := s.mgr.Submit(c.Request().Context(), c.Param("pool"), input, host.Priority(priorityOf(c)))
	s.logTask(c, res, err)
	if err != nil {
		return err
	}
	return writeResult(c, res, false)
}

func (s *Server) runOnce(c echo.Context) error {
	var opts host.RunOptions
	if v := c.QueryParam("memoryLimitMB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return s.badMemoryLimit("query parameter memoryLimitMB", strconv.Quote(clip(v)))
		}
		if opts.MemoryLimitMB, err = s.memoryLimitMB("query parameter memoryLimitMB", n); err != nil {
			return err
		}
	}
	if v := c.QueryParam("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return badRequest(fmt.Sprintf("query parameter timeout must be a positive Go duration like 500ms or 2m, got %q", clip(v)))
		}
		opts.Timeout = d
	}
	input, err := s.taskInput(c)
	if err != nil {
		return err
	}
	if later, err := asyncWanted(c); err != nil || later {
		return s.orAsync(c, err, oneShotRequest(c.Param("plugin"), input, opts))
	}
	if s.opts.NoWorkers {
		return s.forward(c, oneShotRequest(c.Param("plugin"), input, opts), false)
	}
	res, err := s.mgr.RunOnce(c.Request().Context(), c.Param("plugin"), input, opts, host.Priority(priorityOf(c)))
	s.logTask(c, res, err)
	if err != nil {
		return err
	}
	return writeResult(c, res, false)
}

// writeResult writes a task's success answer: the seed's shape
// {"ok","id","type":"workDone","data"} or the native one {"ok","id","pool"
// when a pool ran it,"plugin","workerPid","durationMs","result"}. The plugin's output is
// checked to be JSON and written as it is, not decoded and encoded again;
// ids and names are plain ASCII (hex, and names host.Config.Validate and
// the plugin catalog accept), so they need no escaping.
func writeResult(c echo.Context, res host.Result, seed bool) error {
	b, err := resultJSON(res, seed)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// resultJSON is the body writeResult writes.
func resultJSON(res host.Result, seed bool) ([]byte, error) {
	if !json.Valid(res.Output) {
		return nil, &Error{Code: host.CodeTaskFailed, TaskID: res.TaskID,
			Message: "the plugin answered with output that is not valid JSON; a plugin must return a JSON value"}
	}
	b := make([]byte, 0, len(res.Output)+160)
	b = append(b, `{"ok":true,"id":"`...)
	b = append(b, res.TaskID...)
	if seed {
		b = append(b, `","type":"workDone","data":`...)
	} else {
		if res.Pool != "" {
			b = append(b, `","pool":"`...)
			b = append(b, res.Pool...)
		}
		b = append(b, `","plugin":"`...)
		b = append(b, res.Plugin...)
		b = append(b, `","workerPid":`...)
		b = strconv.AppendInt(b, int64(res.WorkerPID), 10)
		b = append(b, `,"durationMs":`...)
		b = strconv.AppendFloat(b, float64(res.Duration.Microseconds())/1000, 'f', -1, 64)
		b = append(b, `,"result":`...)
	}
	b = append(b, res.Output...)
	b = append(b, '}', '\n')
	return b, nil
}

// readBody reads the whole request body within the configured limit.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > s.opts.BodyLimitBytes {
		return nil, &http.MaxBytesError{Limit: s.opts.BodyLimitBytes}
	}
	body, err := readAll(http.MaxBytesReader(c.Response(), r.Body, s.opts.BodyLimitBytes), r.ContentLength)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		if bodyTimedOut(err) {
			closeConnection(c)
			return nil, badRequest(fmt.Sprintf("the request body did not arrive within %s (http.readTimeout); send the whole body at once, or raise http.readTimeout", s.opts.ReadTimeout))
		}
		return nil, badRequest("could not read the request body: " + err.Error())
	}
	bodyRead(c, cap(body))
	return body, nil
}

// readAll reads rd to its end. A body of known size is read into one
// buffer of exactly that size: io.ReadAll grows its buffer as it goes,
// which holds up to a quarter more than the body and leaves about four
// times the body as garbage, for every body.
func readAll(rd io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(rd)
	}
	body := make([]byte, size)
	n, err := io.ReadFull(rd, body)
	return body[:n], err
}

// taskInput reads a /v1 body: the task's input, which must be JSON.
func (s *Server) taskInput(c echo.Context) ([]byte, error) {
	body, err := s.readBody(c)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, badRequest(`the body must be the task's JSON input, like {"duration": 3000}; it is empty`)
	}
	if !json.Valid(body) {
		return nil, badRequest("the body is not valid JSON: " + jsonProblem(body))
	}
	return body, nil
}

// decode reads a JSON object body into v, strictly: field names must match
// v's json tags exactly (encoding/json alone would take "poolname" for
// "poolName"), and unknown fields and wrong types are bad requests that
// name the field.
func (s *Server) decode(c echo.Context, v any) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the body is empty; send a JSON object")
	}
	// json.Unmarshal, not a Decoder, which would copy the whole body into
	// its buffer; the fields are read as they lie in the body.
	var fields map[string]rawField
	if err := json.Unmarshal(body, &fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return badRequest(fmt.Sprintf("the body must be a JSON object, got %s", typeErr.Value))
		}
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) && syntaxErr.Offset > 0 && json.Valid(body[:min(syntaxErr.Offset-1, int64(len(body)))]) {
			return badRequest("the body holds more than one JSON value")
		}
		return badRequest("the body is not a valid JSON object: " + err.Error())
	}
	known := jsonFields(v)
	for name := range fields {
		if !slices.Contains(known, name) {
			return badRequest(fmt.Sprintf("unknown field %q; this endpoint takes %s", clip(name), strings.Join(known, ", ")))
		}
	}
	// Each field from its own value: the body is not parsed twice.
	rv := reflect.ValueOf(v).Elem()
	for i, name := range known {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		if !within(body, raw) {
			raw = bytes.Clone(raw) // the decoder handed out its own buffer
		}
		target := rv.Field(i).Addr().Interface()
		if r, ok := target.(*json.RawMessage); ok {
			*r = json.RawMessage(raw)
			continue
		}
		if err := json.Unmarshal(raw, target); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				return badRequest(fmt.Sprintf("field %q must be %s, got %s", name, jsonKind(typeErr.Type.Kind().String()), typeErr.Value))
			}
			return badRequest("the body is not a valid JSON object: " + err.Error())
		}
	}
	return nil
}

// rawField is a field's JSON as the decoder hands it over: unlike
// json.RawMessage, not copied, so a big field (a seed request's
// workerTask) is not held twice. decode keeps it only when it lies in the
// body, which is not changed while its task runs.
type rawField []byte

// UnmarshalJSON keeps b.
func (f *rawField) UnmarshalJSON(b []byte) error {
	*f = b
	return nil
}

// within reports whether part is a slice of body's own bytes: a slice
// body[i:j] has cap(body)-i capacity, so its first byte is body[i].
func within(body, part []byte) bool {
	i := cap(body) - cap(part)
	return len(part) > 0 && i >= 0 && i < len(body) && &body[i] == &part[0]
}

// fieldNames caches jsonFields by type.
var fieldNames sync.Map // reflect.Type → []string

// jsonFields lists the json names of a struct pointer's fields.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
	if names, ok := fieldNames.Load(t); ok {
		return names.([]string)
	}
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	fieldNames.Store(t, names)
	return names
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64":
		return "a whole number"
	case "float64":
		return "a number"
	case "string", "ptr":
		return "a string"
	}
	return "of another type"
}

// jsonProblem says where a body stops being JSON.
func jsonProblem(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	if err == nil {
		return "unknown problem"
	}
	return err.Error()
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

// readyBody is /readyz's answer: the reason per pool.
type readyBody struct {
	OK    bool              `json:"ok"`
	Pools map[string]string `json:"pools"`
	Error *errorDetail      `json:"error,omitempty"`
}

// readyz answers whether every pool has a ready worker. It needs no token;
// with auth on, only a request that carries the token sees why a pool is
// not ready (a start error holds paths and a plugin's output).
func (s *Server) readyz(c echo.Context) error {
	body := readyBody{OK: true, Pools: map[string]string{}}
	detailed := s.checkToken(c) == nil
	var problems []string
	for _, p := range s.mgr.Pools() {
		switch {
		case p.Ready == 0 && p.Config.MinWorkers == 0:
			body.Pools[p.Config.Name] = "ready: no worker running (minWorkers 0); a task starts one"
		case p.Ready == 0:
			reason := "no ready worker"
			if p.LastError != "" && detailed {
				reason += "; last error: " + p.LastError
			}
			body.Pools[p.Config.Name] = reason
			problems = append(problems, p.Config.Name)
		case p.Degraded():
			body.Pools[p.Config.Name] = fmt.Sprintf("degraded: %d of %d workers ready", p.Ready, p.Target)
		default:
			body.Pools[p.Config.Name] = "ready"
		}
	}
	if len(problems) > 0 {
		body.OK = false
		body.Error = &errorDetail{Code: codeNotReady, Message: fmt.Sprintf("pools without a ready worker: %v", problems)}
		return c.JSON(http.StatusServiceUnavailable, body)
	}
	return c.JSON(http.StatusOK, body)
}

// handleError is the one place that turns an error into a response.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, body := describe(err)
	st := status(code)
	for _, name := range s.callerNames(c) {
		body.Error.Message = clipName(body.Error.Message, name)
	}
	switch code {
	case host.CodeQueueFull, codeOverloaded, codeStorageFull:
		c.Response().Header().Set("Retry-After", "1")
	case host.CodePoolPaused:
		c.Response().Header().Set("Retry-After", pausedRetryAfter)
	case codeAsyncUnavailable:
		if s.opts.Tasks != nil { // NATS out of reach for now, not turned off
			c.Response().Header().Set("Retry-After", "1")
		}
	case codeUnauthorized:
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="wpm"`)
		// The body of a request without the token is never read: answer
		// at once, even if it is still on its way, and end the connection.
		closeConnection(c)
	}
	c.Set(ctxErrorCode, code)
	if body.ID != "" {
		c.Set(ctxTaskID, body.ID)
	}
	if err := c.JSON(st, body); err != nil {
		s.logger.Debug("could not write error response", "error", err)
	}
}

// Keys of values handlers leave in the echo context for the request log
// and the error handler.
const (
	ctxTaskID    = "wpm.taskID"
	ctxErrorCode = "wpm.errorCode"
	// ctxName is the pool or plugin name a seed request's body named.
	ctxName = "wpm.name"
)

// callerNames are the pool and plugin names the request gave, which
// messages made by the host repeat.
func (s *Server) callerNames(c echo.Context) []string {
	names := []string{c.Param("pool"), c.Param("plugin")}
	if v, ok := c.Get(ctxName).(string); ok {
		names = append(names, v)
	}
	return names
}

// logTask logs a task's outcome with its ID, pool or plugin, and pid.
func (s *Server) logTask(c echo.Context, res host.Result, err error) {
	reqID := c.Response().Header().Get(echo.HeaderXRequestID)
	if err != nil {
		var te *host.TaskError
		if errors.As(err, &te) {
			c.Set(ctxTaskID, te.TaskID)
			s.logger.Info("task failed", traceArgs(c.Request().Context(), []any{"request", reqID, "task", te.TaskID, "pool", te.Pool, "plugin", te.Plugin,
				"pid", te.WorkerPID, "code", host.Code(err), "error", te.Err})...)
		}
		return
	}
	c.Set(ctxTaskID, res.TaskID)
	if !s.logger.IsDebug() {
		return
	}
	s.logger.Debug("task done", traceArgs(c.Request().Context(), []any{"request", reqID, "task", res.TaskID, "pool", res.Pool, "plugin", res.Plugin,
		"pid", res.WorkerPID, "duration", res.Duration})...)
}

// logRequests gives each request an ID and logs one line when it ends.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if id == "" || len(id) > 64 {
			id = randid.New()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		args := []any{"request", id, "method", c.Request().Method, "route", c.Path(),
			"status", c.Response().Status, "duration", time.Since(start)}
		if v, ok := c.Get(ctxTaskID).(string); ok {
			args = append(args, "task", v)
		}
		if v, ok := c.Get(ctxErrorCode).(host.ErrorCode); ok {
			args = append(args, "code", string(v))
		}
		s.logger.Info("request", traceArgs(c.Request().Context(), args)...)
		return nil
	}
}

// refuseWhileShuttingDown answers 503 once shutdown began, except for
// /healthz, which answers as long as the process serves, and /metrics, so
// that the drain can be watched.
func (s *Server) refuseWhileShuttingDown(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.shutting.Load() && c.Path() != routeHealthz && c.Path() != routeMetrics {
			return &Error{Code: host.CodeShuttingDown, Message: "wpm is shutting down and takes no new requests; retry on another instance or after restart"}
		}
		return next(c)
	}
}

// reloaded is the answer of a successful reload.
type reloaded struct {
	OK    bool     `json:"ok"`
	Pools []string `json:"pools"`
}

func (s *Server) reload(c echo.Context) error {
	if err := s.opts.Reload(); err != nil {
		return &Error{Code: codeInvalidConfig, Message: "the new config was refused and the running one stays: " + err.Error()}
	}
	return c.JSON(http.StatusOK, reloaded{OK: true, Pools: s.mgr.PoolNames()})
}
