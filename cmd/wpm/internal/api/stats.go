package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/wpmdev/wpm/cmd/wpm/internal/events"
)

// PublishStats sends the pools' live state (as GET /v1/pools shows it) on
// the event stream every interval, as a "stats" event that is not kept,
// until ctx ends. It does nothing without Options.Events.
func (s *Server) PublishStats(ctx context.Context, every time.Duration) {
	if s.opts.Events == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sendStats()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) sendStats() {
	stats := s.mgr.Pools()
	views := make([]PoolView, len(stats))
	for i, p := range stats {
		views[i] = viewPool(p)
	}
	b, err := json.Marshal(views)
	if err != nil {
		return // a PoolView always encodes
	}
	s.opts.Events.Send(events.Record{Type: events.TypeStats, Time: time.Now().UTC(), Pools: b})
}
