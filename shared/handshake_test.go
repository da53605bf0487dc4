package shared_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wpmdev/wpm/shared"
)

// wpm reads settings from environment variables named WPM_*; a handshake
// cookie under that prefix would look like a setting to it.
func TestHandshake_cookieOutsideConfigPrefix(t *testing.T) {
	assert.False(t, strings.HasPrefix(shared.Handshake.MagicCookieKey, "WPM_"),
		"cookie %s collides with the WPM_ config prefix", shared.Handshake.MagicCookieKey)
	assert.NotEmpty(t, shared.Handshake.MagicCookieValue)
}
