// Package randid makes the random identifiers wpm gives tasks and
// requests: 16 hex digits (64 bits) from crypto/rand.
package randid

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random 16-hex-digit identifier.
func New() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
