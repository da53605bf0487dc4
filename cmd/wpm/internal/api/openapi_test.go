package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// The OpenAPI document is checked against the server in three ways: every
// echo route is documented and every documented operation is a route;
// every answer any test in this package gets (through server.do) has a
// documented status and a body that matches the documented schema; and
// TestOpenAPI_responses makes a success and an error of every operation.
//
// The schemas use a small subset of JSON Schema (type, enum, required,
// properties, additionalProperties, items, anyOf, format date-time,
// minimum, $ref), which the checker below implements in full; a keyword
// outside it fails the test rather than being skipped. That is less code
// to trust than an OpenAPI library with its own dependency tree, and the
// failure messages point at the field.

// doc is the served document, decoded once.
var doc = sync.OnceValues(func() (map[string]any, error) {
	b, err := api.OpenAPI()
	if err != nil {
		return nil, err
	}
	var d map[string]any
	return d, json.Unmarshal(b, &d)
})

func mustDoc(t *testing.T) map[string]any {
	t.Helper()
	d, err := doc()
	require.NoError(t, err)
	return d
}

// seenResponses records, per documented operation ("POST /v1/pools/{pool}/tasks"),
// the statuses the server answered with.
type seenResponses struct {
	mu sync.Mutex
	m  map[string]map[int]bool
}

func newSeen() *seenResponses { return &seenResponses{m: map[string]map[int]bool{}} }

func (s *seenResponses) add(op string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[op] == nil {
		s.m[op] = map[int]bool{}
	}
	s.m[op][status] = true
}

func (s *seenResponses) statuses(op string) map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m[op])
}

// matchPath returns the documented path template that path (query
// stripped) matches, or "".
func matchPath(d map[string]any, path string) string {
	path, _, _ = strings.Cut(path, "?")
	got := strings.Split(path, "/")
	for tmpl := range d["paths"].(map[string]any) {
		want := strings.Split(tmpl, "/")
		if len(want) != len(got) {
			continue
		}
		ok := true
		for i := range want {
			isParam := strings.HasPrefix(want[i], "{") && strings.HasSuffix(want[i], "}")
			if (isParam && got[i] == "") || (!isParam && want[i] != got[i]) {
				ok = false
				break
			}
		}
		if ok {
			return tmpl
		}
	}
	return ""
}

// checkDocumented fails t (without stopping it, so that it is safe off the
// test goroutine) unless the answer to method path is documented: its
// status listed for the operation, its content type and its body matching
// the schema. Answers of undocumented paths or methods must be the Error
// shape with not_found or method_not_allowed.
func checkDocumented(t *testing.T, seen *seenResponses, method, path string, a answer) {
	t.Helper()
	d, err := doc()
	if err != nil {
		t.Errorf("openapi: %v", err)
		return
	}
	errSchema := ref("#/components/schemas/Error")
	tmpl := matchPath(d, path)
	var op map[string]any
	if tmpl != "" {
		op, _ = d["paths"].(map[string]any)[tmpl].(map[string]any)[strings.ToLower(method)].(map[string]any)
	}
	if op == nil {
		// A 401 comes before routing is known to the caller.
		want := map[int]bool{http.StatusNotFound: true, http.StatusMethodNotAllowed: true, http.StatusUnauthorized: true}
		if !want[a.Status] {
			t.Errorf("openapi: %s %s is not documented, yet answered %d: %s", method, path, a.Status, a.Raw)
		}
		checkBody(t, d, errSchema, fmt.Sprintf("%s %s → %d", method, path, a.Status), a.Raw)
		return
	}
	opName := method + " " + tmpl
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(a.Status)].(map[string]any)
	if !ok {
		var body struct{ Error struct{ Code string } }
		_ = json.Unmarshal([]byte(a.Raw), &body)
		if a.Status != http.StatusInternalServerError || body.Error.Code != "internal" {
			t.Errorf("openapi: %s answered %d, which the document does not list: %s", opName, a.Status, a.Raw)
			return
		}
		resp = map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": errSchema}}}
	}
	seen.add(opName, a.Status)
	resp = resolve(d, resp)
	content, _ := resp["content"].(map[string]any)
	mediaType, _, _ := strings.Cut(a.Header.Get("Content-Type"), ";")
	media, ok := content[strings.TrimSpace(mediaType)].(map[string]any)
	if !ok {
		t.Errorf("openapi: %s → %d has Content-Type %q; the document lists %v", opName, a.Status, mediaType, slices.Sorted(maps.Keys(content)))
		return
	}
	if mediaType == "application/json" {
		checkBody(t, d, media["schema"].(map[string]any), fmt.Sprintf("%s → %d", opName, a.Status), a.Raw)
	}
}

func ref(r string) map[string]any { return map[string]any{"$ref": r} }

// checkBody decodes raw and reports every way it disagrees with schema.
func checkBody(t *testing.T, d, schema map[string]any, what, raw string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Errorf("openapi: %s: body is not JSON: %v: %s", what, err, raw)
		return
	}
	for _, p := range validate(d, schema, v, "$") {
		t.Errorf("openapi: %s: %s\nbody: %s", what, p, raw)
	}
}

// resolve follows $ref (only local ones, "#/a/b").
func resolve(d, node map[string]any) map[string]any {
	for {
		r, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		var cur any = d
		for _, part := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		node = cur.(map[string]any)
	}
}

// supported are the schema keywords validate understands; the others
// only document.
var supported = map[string]bool{
	"$ref": true, "type": true, "enum": true, "required": true, "properties": true,
	"additionalProperties": true, "items": true, "anyOf": true, "format": true, "minimum": true,
	"description": true, "example": true,
}

// validate returns every problem of v against schema, each with its place
// in the value ("$.workers[0].state").
func validate(d, schema map[string]any, v any, at string) []string {
	schema = resolve(d, schema)
	var probs []string
	fail := func(format string, args ...any) { probs = append(probs, at+": "+fmt.Sprintf(format, args...)) }
	for k := range schema {
		if !supported[k] {
			fail("the schema uses %q, which this checker does not support", k)
		}
	}
	if alts, ok := schema["anyOf"].([]any); ok {
		var all []string
		for i, alt := range alts {
			p := validate(d, alt.(map[string]any), v, at)
			if len(p) == 0 {
				return probs
			}
			all = append(all, fmt.Sprintf("anyOf[%d]: %s", i, strings.Join(p, "; ")))
		}
		fail("matches none of anyOf: %s", strings.Join(all, " | "))
		return probs
	}
	if typ, ok := schema["type"].(string); ok && !hasType(v, typ) {
		fail("want %s, got %T %v", typ, v, v)
		return probs
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if minimum, ok := schema["minimum"].(float64); ok {
		if n, isNum := v.(json.Number); isNum {
			if f, _ := n.Float64(); f < minimum {
				fail("%v is below the minimum %v", v, minimum)
			}
		}
	}
	if schema["format"] == "date-time" {
		if s, _ := v.(string); s != "" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				fail("%q is not a date-time: %v", s, err)
			}
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asList(schema["required"]) {
			if _, ok := v[r]; !ok {
				fail("required field %q is missing", r)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if ps, ok := props[k].(map[string]any); ok {
				probs = append(probs, validate(d, ps, v[k], at+"."+k)...)
				continue
			}
			switch extra := schema["additionalProperties"].(type) {
			case bool:
				if !extra {
					fail("field %q is not documented", k)
				}
			case map[string]any:
				probs = append(probs, validate(d, extra, v[k], at+"."+k)...)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range v {
				probs = append(probs, validate(d, items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return probs
}

func hasType(v any, typ string) bool {
	switch typ {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			_, err = strconv.ParseUint(n.String(), 10, 64)
		}
		return err == nil
	}
	return false
}

func asList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.(string)
	}
	return out
}

// operations lists the document's operations as "METHOD /path".
func operations(d map[string]any) []string {
	var ops []string
	for path, item := range d["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "post", "put", "patch", "delete", "head", "options":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPI_everyRouteDocumented(t *testing.T) {
	s := newServer(t)
	d := mustDoc(t)
	assert.Equal(t, "3.0.3", d["openapi"])
	var routes []string
	for _, r := range s.api.Echo().Routes() {
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") {
				parts[i] = "{" + p[1:] + "}"
			}
		}
		routes = append(routes, r.Method+" "+strings.Join(parts, "/"))
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)
	ops := operations(d)
	for _, r := range routes {
		assert.Contains(t, ops, r, "route %s is not in openapi.yaml", r)
	}
	for _, op := range ops {
		assert.Contains(t, routes, op, "openapi.yaml documents %s, which is no route", op)
	}
	// Every path parameter is declared.
	for path, item := range d["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			var declared []string
			for _, p := range asAnyList(o.(map[string]any)["parameters"]) {
				p := resolve(d, p.(map[string]any))
				if p["in"] == "path" {
					declared = append(declared, "{"+p["name"].(string)+"}")
				}
			}
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") {
					assert.Contains(t, declared, seg, "%s %s does not declare %s", method, path, seg)
				}
			}
		}
	}
}

// pathOf fills a documented path's parameters with names that exist.
func pathOf(path string) string {
	return strings.NewReplacer("{pool}", "CPU", "{plugin}", "cpuload", "{file}", "app.js", "{id}", "0123456789abcdef", "{name}", "nightly").Replace(path)
}

func asAnyList(v any) []any { l, _ := v.([]any); return l }

// Every $ref in the document leads somewhere.
func TestOpenAPI_refsResolve(t *testing.T) {
	d := mustDoc(t)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				var cur any = d
				for _, part := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
					m, _ := cur.(map[string]any)
					cur = m[part]
				}
				assert.NotNil(t, cur, "%s: $ref %s leads nowhere", at, r)
			}
			for k, e := range v {
				walk(e, at+"/"+k)
			}
		case []any:
			for i, e := range v {
				walk(e, fmt.Sprintf("%s[%d]", at, i))
			}
		}
	}
	walk(d, "#")
}

// docs/openapi.yaml is the embedded document's copy.
func TestOpenAPI_docsCopy(t *testing.T) {
	embedded, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	copied, err := os.ReadFile(filepath.Join(testkit.ModuleRoot(), "docs", "openapi.yaml"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(embedded, copied),
		"docs/openapi.yaml differs from cmd/wpm/internal/api/openapi.yaml; run go generate ./cmd/wpm/internal/api")
}

func TestOpenAPI_served(t *testing.T) {
	s := newServer(t)
	a := s.do(t, http.MethodGet, "/v1/openapi.json", nil)
	require.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, "3.0.3", a.Body["openapi"])
	assert.Contains(t, a.Body["paths"], "/v1/pools/{pool}/tasks")

	a = s.doRaw(t, http.MethodGet, "/v1/openapi.yaml", nil, "")
	require.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, "application/yaml", a.Header.Get("Content-Type"))
	var y map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(a.Raw), &y))
	assert.Equal(t, "3.0.3", y["openapi"])
}

// A success and an error of every operation, each answer checked against
// the document by server.do; then every operation must have been seen
// with a 2xx and with an error status.
func TestOpenAPI_responses(t *testing.T) {
	const token = "s3cret"
	s := newServer(t, withAuth(token, true))
	req := func(method, path, body string) {
		t.Helper()
		s.doRaw(t, method, path, strings.NewReader(body), token)
	}
	// Successes.
	req("POST", "/example/pool", `{"poolName": "CPU", "workerTask": {"duration": 1}}`)
	req("POST", "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {"duration": 1}}`)
	req("POST", "/v1/pools/CPU/tasks", `{"duration": 1}`)
	req("POST", "/v1/plugins/cpuload/run?timeout=5s&memoryLimitMB=64", `{"duration": 1}`)
	for _, p := range []string{"/v1/pools", "/v1/pools/CPU", "/v1/plugins", "/v1/cluster", "/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/openapi.yaml", "/ui", "/ui/", "/ui/app.js"} {
		req("GET", p, "")
	}
	// Asynchronous: 202 from every submit, then the task routes.
	req("POST", "/example/pool?async=true", `{"poolName": "CPU", "workerTask": {"duration": 1}}`)
	req("POST", "/example/oneShot?async=true", `{"workerScript": "cpuload", "workerTask": {"duration": 1}}`)
	req("POST", "/v1/plugins/cpuload/run?async=true", `{"duration": 1}`)
	a := s.doRaw(t, "POST", "/v1/pools/M/tasks?async=true", strings.NewReader(`{"fault": "sleep", "ms": 5000}`), token)
	require.Equal(t, http.StatusAccepted, a.Status, a.Raw)
	var queued struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(a.Raw), &queued))
	req("GET", "/v1/tasks/"+queued.ID, "")
	req("GET", "/v1/tasks?state=queued&limit=5", "")
	req("DELETE", "/v1/tasks/"+queued.ID, "")
	req("DELETE", "/v1/tasks/"+queued.ID, "") // 409: ended
	req("POST", "/v1/tasks/"+queued.ID+"/retry", "")
	req("POST", "/v1/tasks/"+queued.ID+"/retry", "") // the same retry
	req("POST", "/v1/tasks/0123456789abcdef/retry", "")
	req("GET", "/v1/tasks?pool=M&plugin=misbehave&limit=1", "")
	req("GET", "/v1/tasks?cursor=nope", "")
	req("GET", "/v1/tasks/0123456789abcdef", "")
	req("GET", "/v1/tasks?state=done", "")
	req("DELETE", "/v1/tasks/0123456789abcdef", "")
	task := s.requireStreamedTask(t, token)
	es, _ := s.openStream(t, "GET", "/v1/events", "", token, nil)
	require.NotNil(t, es)
	es, _ = s.openStream(t, "GET", "/v1/tasks/"+task+"/events", "", token, nil)
	require.NotNil(t, es)
	// Delayed tasks and schedules.
	req("POST", "/v1/pools/CPU/tasks?async=true&delay=1h", `{"duration": 1}`)
	req("POST", "/v1/pools/CPU/tasks?async=true&runAt=never", `{"duration": 1}`)
	req("POST", "/v1/schedules", `{"name": "nightly", "pool": "CPU", "input": {"duration": 1}, "cron": "0 0 3 * * *", "timezone": "Europe/Paris"}`)
	req("POST", "/v1/schedules", `{"name": "nightly", "pool": "CPU", "every": "1h"}`)
	req("POST", "/v1/schedules", `{"name": "", "pool": "CPU", "every": "1h"}`)
	req("POST", "/v1/schedules", `{"name": "gpu", "pool": "GPU", "every": "1h"}`)
	req("GET", "/v1/schedules", "")
	req("GET", "/v1/schedules?x=1", "")
	req("GET", "/v1/schedules/nightly", "")
	req("POST", "/v1/schedules/nightly/pause", "")
	req("POST", "/v1/schedules/nightly/resume", "")
	req("DELETE", "/v1/schedules/nightly", "")
	for _, op := range []string{"GET", "DELETE"} {
		req(op, "/v1/schedules/nightly", "")
	}
	req("POST", "/v1/schedules/nightly/pause", "")
	req("POST", "/v1/schedules/nightly/resume", "")
	req("GET", "/ui/nope.js", "")
	req("GET", "/v1/tasks/nope/events", "")
	req("POST", "/v1/pools/CPU/pause", "")
	req("GET", "/v1/pools", "")
	req("POST", "/v1/pools/CPU/tasks", `{"duration": 1}`) // 503 pool_paused
	req("POST", "/v1/pools/CPU/resume", "")
	req("POST", "/v1/pools/GPU/pause", "")
	s.send(t, "GET", "/v1/events?since=1", nil, "Bearer "+token)
	// Errors, one or more per operation.
	req("POST", "/example/pool", `{"poolName": 3}`)
	req("POST", "/example/pool", `{"poolName": "GPU", "workerTask": {}}`)
	req("POST", "/example/pool", `{"poolName": "CPU", "workerTask": {"duration": -1}}`)
	req("POST", "/example/oneShot", `{"workerScript": "nope", "workerTask": {}}`)
	req("POST", "/v1/pools/M/tasks", `{"fault": "fail"}`)
	req("POST", "/v1/pools/M/tasks", `{"fault": "crash"}`)
	req("POST", "/v1/pools/nope/tasks", `{}`)
	s.doRaw(t, "POST", "/v1/pools/CPU/tasks", bigBody(bodyLimit), token)
	req("POST", "/v1/plugins/misbehave/run?timeout=100ms", `{"fault": "hang"}`)
	req("POST", "/v1/plugins/cpuload/run?timeout=never", `{}`)
	req("GET", "/v1/pools/GPU", "")
	req("GET", "/nope", "")
	req("DELETE", "/v1/pools", "")
	req("POST", "/v1/admin/reload", "")
	bad := host.DefaultConfig()
	bad.PluginDir = pluginDir
	bad.Pools = []host.PoolConfig{{Name: "X", Plugin: "nope", Workers: 1}}
	s.reloadTo.Store(&bad)
	req("POST", "/v1/admin/reload", "")
	// Without the token, everything but the probes is 401.
	for _, op := range operations(mustDoc(t)) {
		method, path, _ := strings.Cut(op, " ")
		path = pathOf(strings.ReplaceAll(path, "{id}", queued.ID))
		a := s.doRaw(t, method, path, strings.NewReader(`{}`), "")
		if path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, "/ui") {
			assert.Less(t, a.Status, 400, op)
		} else {
			assert.Equal(t, http.StatusUnauthorized, a.Status, op)
		}
	}
	// Shutting down: 503 everywhere but /healthz and /metrics.
	s.api.StartShutdown()
	for _, op := range operations(mustDoc(t)) {
		method, path, _ := strings.Cut(op, " ")
		s.doRaw(t, method, pathOf(strings.ReplaceAll(path, "{id}", queued.ID)), strings.NewReader(`{}`), token)
	}

	for _, op := range operations(mustDoc(t)) {
		got := s.seen.statuses(op)
		var ok, failed bool
		for st := range got {
			ok = ok || st < 400 // a redirect is the success of GET /ui
			failed = failed || st >= 400
		}
		assert.True(t, ok, "%s: no success seen (%v)", op, got)
		if op != "GET /healthz" {
			assert.True(t, failed, "%s: no error seen (%v)", op, got)
		}
	}
}

// /readyz's not_ready answer and a pool whose workers fail to start, with
// lastError, are documented too.
func TestOpenAPI_notReady(t *testing.T) {
	s := newBrokenServer(t)
	a := s.do(t, http.MethodGet, "/readyz", nil)
	requireError(t, a, http.StatusServiceUnavailable, "not_ready")
	assert.Contains(t, a.Body["pools"], "BROKEN")
	s.do(t, http.MethodGet, "/v1/pools/BROKEN", nil)
	s.do(t, http.MethodGet, "/v1/pools", nil)
}
