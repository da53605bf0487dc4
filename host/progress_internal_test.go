package host

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/shared"
)

// A plugin may speak the protocol without wpm's SDK: whatever progress it
// reports, what reaches the host's listeners is a number from 0 to 1 and a
// short message of valid UTF-8; a fraction that is no number is dropped.
func TestTracker_progressCheckedAtTheHost(t *testing.T) {
	var got []Event
	tr := &tracker{m: &Manager{}, own: func(e Event) { got = append(got, e) }}
	tr.progress(math.NaN(), "nan")
	tr.progress(math.Inf(1), "inf")
	tr.progress(math.Inf(-1), "-inf")
	tr.progress(-3, "below")
	tr.progress(0.5, strings.Repeat("é", shared.MaxProgressMessage)+"\xff")
	require.Len(t, got, 4, "the NaN report is dropped")
	assert.Equal(t, []float64{1, 0, 0, 0.5}, []float64{got[0].Fraction, got[1].Fraction, got[2].Fraction, got[3].Fraction})
	assert.LessOrEqual(t, len(got[3].Message), shared.MaxProgressMessage)
	assert.True(t, strings.HasPrefix(got[3].Message, "éé"))
	assert.NotContains(t, got[3].Message, "\xff")
	assert.True(t, utf8.ValidString(got[3].Message))
}
