package host

import (
	"bytes"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A plugin's JSON log line keeps its values' types and its level: a whole
// number stays whole, in the text and the JSON log alike.
func TestLogJSONLine_keepsTypes(t *testing.T) {
	line := `{"@level":"warn","@message":"x","rounds":8000000,"ratio":0.25,"name":"n","ok":true}`
	for _, asJSON := range []bool{false, true} {
		var out bytes.Buffer
		l := hclog.New(&hclog.LoggerOptions{Output: &out, JSONFormat: asJSON, Level: hclog.Trace})
		require.True(t, logJSONLine(l, line))
		assert.Contains(t, out.String(), "8000000", "json=%v: %s", asJSON, out.String())
		assert.NotContains(t, out.String(), "8e+06")
		assert.Contains(t, out.String(), "0.25")
		if asJSON {
			assert.Contains(t, out.String(), `"rounds":8000000`)
			assert.Contains(t, out.String(), `"@level":"warn"`)
		} else {
			assert.Contains(t, out.String(), "[WARN]")
			assert.Regexp(t, `name=n ok=true ratio=0.25 rounds=8000000`, out.String())
		}
	}
}
