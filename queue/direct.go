package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// A page reads its index entries and records with JetStream's batched
// direct get (NATS 2.11+, ADR-31): one request answers a run of messages
// from a sequence, or the last message of each of many subjects, then an
// end-of-batch status; against an older server it reads them one by one.

// directWait bounds one batched read when ctx has no deadline.
const directWait = 5 * time.Second

// directMsg is one message of a batched direct get.
type directMsg struct {
	subject string
	seq     uint64
	header  nats.Header
	data    []byte
}

// errNoBatch means the server does not answer batched direct gets.
var errNoBatch = errors.New("the NATS server has no batched direct get (2.11+)")

// batchedGets reports whether the connected server answers batched
// direct gets: 2.11 or later.
func (e *Engine) batchedGets() bool {
	v := strings.TrimPrefix(e.nc.ConnectedServerVersion(), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (major > 2 || major == 2 && minor >= 11)
}

// directBatch sends a batched direct get request to stream and returns
// its messages, in the order the server sent them. A request that finds
// nothing returns none.
func (e *Engine) directBatch(ctx context.Context, stream string, req map[string]any) ([]directMsg, error) {
	if !e.batchedGets() {
		return nil, errNoBatch
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, directWait)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	inbox := e.nc.NewRespInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := e.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return nil, err
	}
	var out []directMsg
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("batched direct get from %s: %w", stream, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			out = append(out, directMsg{subject: m.Header.Get("Nats-Subject"), seq: seq, header: m.Header, data: m.Data})
		case "204": // end of batch
			return out, nil
		case "404":
			return out, nil
		default:
			return nil, fmt.Errorf("batched direct get from %s: status %s %s", stream, status, m.Header.Get("Description"))
		}
	}
}
