package wire_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/wpmdev/wpm/internal/wire"
)

// The Python SDK keeps its own copy of the handshake.
func TestHandshake_pythonSDKAgrees(t *testing.T) {
	b, err := os.ReadFile("../../sdk/python/wpm_plugin/__init__.py")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, want := range []string{
		fmt.Sprintf("MAGIC_COOKIE_KEY = %q", wire.Handshake.MagicCookieKey),
		fmt.Sprintf("MAGIC_COOKIE_VALUE = %q", wire.Handshake.MagicCookieValue),
		fmt.Sprintf("APP_PROTOCOL_VERSION = %d", wire.Handshake.ProtocolVersion),
		fmt.Sprintf("MAX_PROGRESS_MESSAGE = %d", wire.MaxProgressMessage),
		fmt.Sprintf("PROGRESS_INTERVAL = %g", wire.ProgressInterval.Seconds()),
	} {
		if !strings.Contains(src, want) {
			t.Errorf("sdk/python/wpm_plugin/__init__.py lacks %s", want)
		}
	}
}
