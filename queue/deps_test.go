package queue

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// The NATS libraries stay out of the host library: host depends on
// neither, even through another package.
func TestHostDoesNotDependOnNATS(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./host")
	cmd.Dir = testkit.ModuleRoot()
	out, err := cmd.Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		assert.False(t, strings.HasPrefix(dep, "github.com/nats-io/"), "host depends on %s", dep)
	}
}
