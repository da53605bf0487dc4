package randid

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{16}$`), id)
		assert.False(t, seen[id], "repeated id %s", id)
		seen[id] = true
	}
}
