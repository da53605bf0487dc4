package testkit

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/wpmdev/wpm"

// The way imports point, from STYLE.md: shared imports nothing of wpm's;
// plugins import only shared; host never imports cmd, echo, koanf or
// prometheus.
func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = ModuleRoot()
	out, err := cmd.Output()
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var pkg struct {
			ImportPath string
			Imports    []string
		}
		require.NoError(t, dec.Decode(&pkg))
		seen++
		rel := strings.TrimPrefix(pkg.ImportPath, module+"/")
		for _, imp := range pkg.Imports {
			ours := strings.HasPrefix(imp, module+"/")
			switch {
			case rel == "shared":
				assert.False(t, ours, "shared imports %s", imp)
			case strings.HasPrefix(rel, "plugins/"), strings.HasPrefix(rel, "internal/testplugins/"):
				assert.True(t, !ours || imp == module+"/shared", "%s imports %s; plugins import only shared", rel, imp)
			case rel == "host":
				for _, banned := range []string{module + "/cmd", "github.com/labstack/echo", "github.com/knadh/koanf", "github.com/prometheus"} {
					assert.False(t, strings.HasPrefix(imp, banned), "host imports %s", imp)
				}
			}
		}
	}
	assert.Greater(t, seen, 8, "go list found too few packages")
}
