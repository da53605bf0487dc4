package shared

import (
	"context"

	"github.com/wpmdev/wpm/internal/wire"
)

// Progress reports how far the task running under ctx is: fraction from 0
// to 1 (clamped) and a short message (cut to [MaxProgressMessage] bytes).
// It never blocks and is cheap to call in a tight loop: reports are sent
// at most every [ProgressInterval] (the first, and the first that reaches
// 1, always go), the others are dropped. Under a host that does not listen,
// or outside a task, it does nothing.
func Progress(ctx context.Context, fraction float64, msg string) {
	wire.Report(ctx, fraction, msg)
}

// WithProgressTo returns a context whose [Progress] reports, made by the
// plugin's own code, go to fn as they would to the host (clamped and cut
// the same way, but none dropped): for a plugin's unit tests, which call
// Run with it and no host.
func WithProgressTo(ctx context.Context, fn func(fraction float64, msg string)) context.Context {
	return wire.WithProgressTo(ctx, fn)
}

// ProgressInterval is the shortest time between two progress reports of
// one task that are sent to the host: 100 ms.
const ProgressInterval = wire.ProgressInterval

// MaxProgressMessage is the longest progress message, in bytes, sent: 200.
const MaxProgressMessage = wire.MaxProgressMessage
