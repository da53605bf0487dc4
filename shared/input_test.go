package shared_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/shared"
)

func TestParseObject(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"not an object": {`[1]`, "must be a JSON object"},
		"string":        {`"x"`, "must be a JSON object"},
		"empty":         {``, "must be a JSON object"},
		"broken":        {`{"n": `, "not a valid JSON object"},
		"unknown field": {`{"m": 1}`, `unknown field "m"`},
	} {
		_, err := shared.ParseObject([]byte(c.in), "n")
		require.ErrorIs(t, err, shared.ErrInvalidInput, name)
		assert.Contains(t, err.Error(), c.want, name)
		assert.Contains(t, err.Error(), `"n"`, name)
	}
}

func TestObject_Int(t *testing.T) {
	for in, want := range map[string]string{
		`{}`:             `"n" is required`,
		`{"n": null}`:    `"n" is required`,
		`{"n": "5"}`:     `got "5"`,
		`{"n": true}`:    `got true`,
		`{"n": -1}`:      `got -1`,
		`{"n": 1.5}`:     `got 1.5`,
		`{"n": 1e300}`:   `got 1e300`,
		`{"n": 101}`:     `from 0 to 100`,
		`{"n": [1]}`:     `got [1]`,
		`{"n": {"a":1}}`: `got {"a":1}`,
	} {
		o, err := shared.ParseObject([]byte(in), "n")
		require.NoError(t, err, in)
		_, err = o.Int("n", 0, 100)
		require.ErrorIs(t, err, shared.ErrInvalidInput, in)
		assert.Contains(t, err.Error(), want, in)
	}
	o, err := shared.ParseObject([]byte(`{"n": 42.0}`), "n", "m")
	require.NoError(t, err)
	n, err := o.Int("n", 0, 100)
	require.NoError(t, err)
	assert.EqualValues(t, 42, n)
	m, err := o.OptionalInt("m", 0, 100, 7)
	require.NoError(t, err)
	assert.EqualValues(t, 7, m)
}
