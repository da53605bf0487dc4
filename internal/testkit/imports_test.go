package testkit

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/wpmdev/wpm"

// hostBanned are the import path prefixes host may not depend on, even
// through another package.
var hostBanned = []string{module + "/cmd", "github.com/labstack/echo", "github.com/knadh/koanf", "github.com/prometheus", otelSDK, otelExporters}

// OpenTelemetry's SDK and exporters are the command's (cmd/wpm/internal/
// tracing): the libraries, host and queue, use its API only.
const (
	otelSDK       = "go.opentelemetry.io/otel/sdk"
	otelExporters = "go.opentelemetry.io/otel/exporters"
)

// wire is the protocol package the plugin SDK and the host share; shared
// may depend on it alone of wpm's, and a plugin through shared only.
const wire = module + "/internal/wire"

// goPackage is one package of `go list`: its import path, the packages it
// imports, and every package it depends on, directly or not.
type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// The way imports point, from STYLE.md, checked over transitive imports:
// internal/wire depends on nothing of wpm's, shared on nothing but it;
// plugins and test plugins import only shared of wpm's (and so depend on
// nothing else but wire); host never depends on cmd, echo, koanf or
// prometheus; client, the public Go client of the API, only on the
// standard library.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	assert.Greater(t, len(pkgs), 8, "go list found too few packages")
	assert.Empty(t, importViolations(pkgs))
}

// The rules catch what a package pulls in through another one, which a
// check of direct imports misses.
func TestImportViolations_transitive(t *testing.T) {
	pkgs := []goPackage{
		{ImportPath: module + "/shared", Deps: []string{"context", wire, module + "/internal/latency"}},
		{ImportPath: wire, Deps: []string{"net/rpc", module + "/internal/randid"}},
		{ImportPath: module + "/plugins/cpuload", Deps: []string{module + "/shared", module + "/internal/latency"}},
		{ImportPath: module + "/plugins/memusage", Imports: []string{module + "/shared", wire}, Deps: []string{module + "/shared", wire}},
		{ImportPath: module + "/internal/testplugins/misbehave", Imports: []string{module + "/shared"}, Deps: []string{module + "/shared", wire}},
		{ImportPath: module + "/host", Deps: []string{module + "/shared", module + "/host/internal/x", "github.com/labstack/echo/v4"}},
		{ImportPath: module + "/cmd/wpm", Deps: []string{module + "/host", "github.com/labstack/echo/v4"}},
		{ImportPath: module + "/client", Deps: []string{"net/http", module + "/cmd/wpm/internal/api", "github.com/labstack/echo/v4"}},
		{ImportPath: module + "/queue", Deps: []string{"go.opentelemetry.io/otel/trace", otelSDK + "/trace"}},
	}
	assert.ElementsMatch(t, []string{
		"client depends on " + module + "/cmd/wpm/internal/api; client uses the standard library only",
		"client depends on github.com/labstack/echo/v4; client uses the standard library only",
		"shared depends on " + module + "/internal/latency",
		"internal/wire depends on " + module + "/internal/randid",
		"plugins/cpuload depends on " + module + "/internal/latency; plugins depend only on shared",
		"plugins/memusage imports " + wire + "; plugins import only shared",
		"host depends on github.com/labstack/echo/v4",
		"queue depends on " + otelSDK + "/trace; the libraries use OpenTelemetry's API only",
	}, importViolations(pkgs))
}

// listPackages lists every package of the module with its dependencies.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...")
	cmd.Dir = ModuleRoot()
	out, err := cmd.Output()
	require.NoError(t, err)
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p goPackage
		require.NoError(t, dec.Decode(&p))
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// importViolations returns one message per dependency that breaks a rule.
func importViolations(pkgs []goPackage) []string {
	var bad []string
	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		for _, dep := range p.Deps {
			if msg := violation(rel, dep); msg != "" {
				bad = append(bad, msg)
			}
		}
		if isPlugin(rel) {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, module+"/") && imp != module+"/shared" {
					bad = append(bad, fmt.Sprintf("%s imports %s; plugins import only shared", rel, imp))
				}
			}
		}
	}
	return bad
}

// violation says why package rel (relative to the module) may not depend
// on dep, or returns "" when it may.
func violation(rel, dep string) string {
	ours := strings.HasPrefix(dep, module+"/")
	switch {
	case rel == "shared" && ours && dep != wire:
		return fmt.Sprintf("shared depends on %s", dep)
	case rel == "internal/wire" && ours:
		return fmt.Sprintf("internal/wire depends on %s", dep)
	case isPlugin(rel):
		if ours && dep != module+"/shared" && dep != wire {
			return fmt.Sprintf("%s depends on %s; plugins depend only on shared", rel, dep)
		}
	case rel == "client":
		if first, _, _ := strings.Cut(dep, "/"); strings.Contains(first, ".") {
			return fmt.Sprintf("client depends on %s; client uses the standard library only", dep)
		}
	case rel == "queue" || strings.HasPrefix(rel, "queue/"):
		if strings.HasPrefix(dep, otelSDK) || strings.HasPrefix(dep, otelExporters) {
			return fmt.Sprintf("%s depends on %s; the libraries use OpenTelemetry's API only", rel, dep)
		}
	case rel == "host" || strings.HasPrefix(rel, "host/"):
		for _, banned := range hostBanned {
			if strings.HasPrefix(dep, banned) {
				return fmt.Sprintf("%s depends on %s", rel, dep)
			}
		}
	}
	return ""
}

// isPlugin reports whether package rel (relative to the module) is a
// plugin's: one of plugins/ or of the test plugins.
func isPlugin(rel string) bool {
	return strings.HasPrefix(rel, "plugins/") || strings.HasPrefix(rel, "internal/testplugins/")
}
