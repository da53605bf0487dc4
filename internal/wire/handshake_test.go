package wire_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wpmdev/wpm/internal/wire"
)

// wpm reads settings from environment variables named WPM_*; a handshake
// cookie under that prefix would look like a setting to it.
func TestHandshake_cookieOutsideConfigPrefix(t *testing.T) {
	assert.False(t, strings.HasPrefix(wire.Handshake.MagicCookieKey, "WPM_"),
		"cookie %s collides with the WPM_ config prefix", wire.Handshake.MagicCookieKey)
	assert.NotEmpty(t, wire.Handshake.MagicCookieValue)
}
