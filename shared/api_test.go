package shared_test

import (
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/shared"
)

// sdk is shared's exported API: what a plugin author uses. The protocol
// behind it lives in internal/wire; a name added here is a name plugins
// may come to rely on.
var sdk = []string{
	"ErrInvalidInput",
	"ErrTaskFailed",
	"InvalidInput",
	"Logger",
	"MaxProgressMessage",
	"Object",
	"Object.Int",
	"Object.OptionalInt",
	"ParseObject",
	"Progress",
	"ProgressInterval",
	"ResidentMemory",
	"Serve",
	"Task",
	"Task.Run",
	"TaskFunc",
	"TaskFunc.Run",
	"TraceParent",
	"WithProgressTo",
}

// wirePath is the import path of the protocol package.
const wirePath = "github.com/wpmdev/wpm/internal/wire"

// shared exports the SDK and nothing else, and none of its exported names
// shows a type of the wire: no alias, field, parameter or result.
func TestAPI_isTheSDKOnly(t *testing.T) {
	pkg := mustImportShared(t)
	var names []string
	for _, name := range pkg.Scope().Names() {
		obj := pkg.Scope().Lookup(name)
		if !obj.Exported() {
			continue
		}
		names = append(names, name)
		assert.Empty(t, wireTypes(obj.Type(), nil), "shared.%s shows a wire type", name)
		if tn, ok := obj.(*types.TypeName); ok && !tn.IsAlias() {
			if named, ok := obj.Type().(*types.Named); ok {
				for i := range named.NumMethods() {
					if m := named.Method(i); m.Exported() {
						names = append(names, name+"."+m.Name())
					}
				}
			}
			if iface, ok := obj.Type().Underlying().(*types.Interface); ok {
				for i := range iface.NumExplicitMethods() {
					names = append(names, name+"."+iface.ExplicitMethod(i).Name())
				}
			}
		}
	}
	slices.Sort(names)
	assert.Equal(t, sdk, slices.Compact(names), "shared's exported names; the protocol belongs in internal/wire")
}

// mustImportShared type-checks shared from the export data the go command
// builds for it and its dependencies.
func mustImportShared(t *testing.T) *types.Package {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}", ".").Output()
	require.NoError(t, err)
	exports := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if path, file, ok := strings.Cut(strings.TrimSpace(line), "="); ok && file != "" {
			exports[path] = file
		}
	}
	lookup := func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	}
	pkg, err := importer.ForCompiler(token.NewFileSet(), "gc", lookup).Import("github.com/wpmdev/wpm/shared")
	require.NoError(t, err)
	return pkg
}

// The check itself finds a wire type however deep it sits.
func TestWireTypes_findsNested(t *testing.T) {
	wire := types.NewPackage(wirePath, "wire")
	errType := types.NewNamed(types.NewTypeName(token.NoPos, wire, "Error", nil), types.NewStruct(nil, nil), nil)
	sig := types.NewSignatureType(nil, nil, nil, nil,
		types.NewTuple(types.NewVar(token.NoPos, nil, "", types.NewSlice(types.NewPointer(errType)))), false)
	assert.Equal(t, []string{"internal/wire.Error"}, wireTypes(sig, nil))
	assert.Empty(t, wireTypes(types.Universe.Lookup("error").Type(), nil))
}

// wireTypes returns the named types of internal/wire that t mentions.
func wireTypes(t types.Type, seen map[types.Type]bool) []string {
	if seen == nil {
		seen = map[types.Type]bool{}
	}
	if seen[t] {
		return nil
	}
	seen[t] = true
	var found []string
	switch t := t.(type) {
	case *types.Alias:
		return wireTypes(types.Unalias(t), seen)
	case *types.Named:
		if p := t.Obj().Pkg(); p != nil && p.Path() == wirePath {
			return []string{"internal/wire." + t.Obj().Name()}
		}
		if p := t.Obj().Pkg(); p != nil && !strings.HasPrefix(p.Path(), "github.com/wpmdev/wpm/") {
			return nil // another module's type: its insides are not ours
		}
		found = wireTypes(t.Underlying(), seen)
		for i := range t.NumMethods() {
			found = append(found, wireTypes(t.Method(i).Type(), seen)...)
		}
	case *types.Pointer:
		found = wireTypes(t.Elem(), seen)
	case *types.Slice:
		found = wireTypes(t.Elem(), seen)
	case *types.Array:
		found = wireTypes(t.Elem(), seen)
	case *types.Map:
		found = append(wireTypes(t.Key(), seen), wireTypes(t.Elem(), seen)...)
	case *types.Chan:
		found = wireTypes(t.Elem(), seen)
	case *types.Struct:
		for i := range t.NumFields() {
			if f := t.Field(i); f.Exported() || f.Embedded() {
				found = append(found, wireTypes(f.Type(), seen)...)
			}
		}
	case *types.Signature:
		for _, tuple := range []*types.Tuple{t.Params(), t.Results()} {
			for i := range tuple.Len() {
				found = append(found, wireTypes(tuple.At(i).Type(), seen)...)
			}
		}
	case *types.Interface:
		for i := range t.NumMethods() {
			found = append(found, wireTypes(t.Method(i).Type(), seen)...)
		}
	}
	return found
}

// The progress constants' documents give their values, which go doc does
// not show (they are wire's).
func TestProgressConstants_documented(t *testing.T) {
	assert.Equal(t, 100*time.Millisecond, shared.ProgressInterval)
	assert.Equal(t, 200, shared.MaxProgressMessage)
}
