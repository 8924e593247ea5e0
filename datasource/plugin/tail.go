package plugin

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/frames"
	"github.com/logsift/logsift/datasource/querymodel"
)

// frameSender is what streams send frames through: Grafana's
// backend.StreamSender, or a recorder in tests.
type frameSender interface {
	SendFrame(*data.Frame, data.FrameInclude) error
}

// Tail tuning.
var (
	// tailFlushEvery batches entries into one frame, as the server
	// batches its own messages.
	tailFlushEvery = 100 * time.Millisecond
	// tailHeartbeat pings the server; a ping unanswered within
	// tailHeartbeatTimeout ends the connection and starts a reconnect.
	tailHeartbeat        = 15 * time.Second
	tailHeartbeatTimeout = 5 * time.Second
	// tailOverlap is how far before the newest entry sent a reconnect
	// resumes: entries that arrived late, slightly out of order, are
	// caught, and those already sent are dropped.
	tailOverlap = 5 * time.Second
	// Reconnect backoff: doubled after each failed attempt, with jitter;
	// reset once a connection has delivered its backfill.
	tailBackoffMin = 250 * time.Millisecond
	tailBackoffMax = 15 * time.Second
	// tailReconnectLimit is the backfill a reconnect asks for; when the
	// outage produced more, the rest is read with range queries.
	tailReconnectLimit = 1000
)

// tailKey identifies an entry for de-duplication across reconnects.
type tailKey struct {
	stream uint64
	ts     int64
	line   uint64
}

type pendingEntry struct {
	stream client.Labels
	hash   uint64
	e      client.Entry
}

// tailer runs one live tail: a WebSocket to the server, batched frames to
// Grafana, reconnects that leave no gap and repeat no entry.
type tailer struct {
	in     *Instance
	req    querymodel.Request
	sender frameSender

	sent       map[tailKey]int64 // entries sent, by key, with their time
	newest     int64             // newest timestamp sent, ns
	pending    []pendingEntry
	schemaSent bool
	dropped    int
}

func (in *Instance) runTail(ctx context.Context, r querymodel.Request, sender frameSender) error {
	t := &tailer{in: in, req: r, sender: sender, sent: map[tailKey]int64{}}
	return t.run(ctx)
}

func (t *tailer) run(ctx context.Context) error {
	backoff := tailBackoffMin
	first := true
	for {
		connected, err := t.session(ctx, first)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			first = false
			backoff = tailBackoffMin
		}
		t.in.log.Warn("live tail disconnected; reconnecting", "query", t.req.Expr, "error", err, "in", backoff)
		if !waitBackoff(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, tailBackoffMax)
	}
}

// session runs one WebSocket connection until it fails or ctx ends. It
// reports whether the connection delivered its backfill.
func (t *tailer) session(ctx context.Context, first bool) (bool, error) {
	start := t.req.Start
	// The backfill is one answer of the server, which caps a query's
	// lines as Loki does (5,000 by default).
	limit := min(t.req.Limit, pageLimit)
	if !first || t.newest > 0 {
		if t.newest > 0 {
			start = time.Unix(0, t.newest).Add(-tailOverlap)
		}
		limit = tailReconnectLimit
	}
	conn, err := t.in.client.Tail(ctx, client.TailRequest{Query: t.req.Expr, Start: start, Limit: limit})
	if err != nil {
		return false, err
	}
	defer conn.Close()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan client.TailMessage, 16)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := conn.Read(sctx)
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-sctx.Done():
				return
			}
		}
	}()

	flush := time.NewTicker(tailFlushEvery)
	defer flush.Stop()
	ping := time.NewTicker(tailHeartbeat)
	defer ping.Stop()
	gotBackfill := false
	for {
		select {
		case <-ctx.Done():
			_ = t.flush()
			return gotBackfill, nil
		case m := <-msgs:
			if !gotBackfill {
				gotBackfill = true
				// The backfill is the newest `limit` entries since start:
				// if it is full, older ones since start may be missing.
				if !first && countEntries(m) >= limit {
					if err := t.fillGap(ctx, start, oldest(m)); err != nil {
						return true, err
					}
				}
			}
			t.accept(m)
		case <-flush.C:
			if err := t.flush(); err != nil {
				return gotBackfill, err
			}
		case <-ping.C:
			pctx, pcancel := context.WithTimeout(ctx, tailHeartbeatTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				_ = t.flush()
				return gotBackfill, errors.Join(errors.New("heartbeat unanswered"), err)
			}
		case err := <-errc:
			if ferr := t.flush(); ferr != nil {
				return gotBackfill, ferr
			}
			return gotBackfill, err
		}
	}
}

// fillGap reads [from, through] with range queries, oldest first, in
// pages of the reconnect limit.
func (t *tailer) fillGap(ctx context.Context, from time.Time, through int64) error {
	end := time.Unix(0, through+1)
	for from.Before(end) {
		res, err := t.in.client.QueryRange(ctx, client.RangeQuery{Query: t.req.Expr, Start: from, End: end, Limit: tailReconnectLimit, Direction: "forward"})
		if err != nil {
			return err
		}
		n := countEntries(client.TailMessage{Streams: res.Streams})
		t.accept(client.TailMessage{Streams: res.Streams})
		if n < tailReconnectLimit {
			return nil
		}
		next := time.Unix(0, newestOf(res.Streams))
		if !next.After(from) {
			next = from.Add(time.Nanosecond) // a page of one timestamp: move on
		}
		from = next
	}
	return nil
}

// accept queues the entries not sent yet.
func (t *tailer) accept(m client.TailMessage) {
	t.dropped += m.Dropped
	for _, s := range m.Streams {
		h := frames.StreamHash(s.Labels)
		for _, e := range s.Entries {
			ls, eh := s.Labels, h
			if len(e.Metadata) > 0 || len(e.Parsed) > 0 {
				// Range query answers (gap fills) keep metadata apart;
				// the tail merges it into the labels. Key both alike.
				ls = mergeLabels(s.Labels, e.Metadata, e.Parsed)
				eh = frames.StreamHash(ls)
				e.Metadata, e.Parsed = nil, nil
			}
			k := tailKey{eh, e.Timestamp, xxhash.Sum64String(e.Line)}
			if _, dup := t.sent[k]; dup {
				continue
			}
			t.sent[k] = e.Timestamp
			t.pending = append(t.pending, pendingEntry{ls, eh, e})
		}
	}
}

// flush sends the queued entries as one frame, oldest first; the first
// frame carries the schema, the rest only data.
func (t *tailer) flush() error {
	if t.dropped > 0 {
		t.in.log.Warn("live tail: the server dropped entries it could not send in time", "query", t.req.Expr, "dropped", t.dropped)
		t.dropped = 0
	}
	if len(t.pending) == 0 {
		return nil
	}
	slices.SortStableFunc(t.pending, func(a, b pendingEntry) int { return cmp64(a.e.Timestamp, b.e.Timestamp) })
	b := frames.NewLogsBuilder(len(t.pending))
	b.StreamLabelNames = tailStreamLabel
	for _, p := range t.pending {
		b.Add(p.stream, p.hash, p.e)
		t.newest = max(t.newest, p.e.Timestamp)
	}
	include := data.IncludeDataOnly
	if !t.schemaSent {
		include = data.IncludeAll
	}
	f := b.Frame(t.req.RefID, frames.LogsMeta("Expr: "+t.req.Expr, nil))
	if err := t.sender.SendFrame(f, include); err != nil {
		return err
	}
	t.schemaSent = true
	t.pending = t.pending[:0]
	// Keys older than the overlap window cannot come back.
	cut := t.newest - int64(tailOverlap)
	for k, ts := range t.sent {
		if ts < cut {
			delete(t.sent, k)
		}
	}
	return nil
}

// tailStreamLabel types the labels of tail answers, which merge stream
// labels and structured metadata: the metadata the server and the agent
// attach is known by name.
func tailStreamLabel(name string) bool {
	return name != "detected_level" && name != LineLabel
}

func countEntries(m client.TailMessage) int {
	n := 0
	for _, s := range m.Streams {
		n += len(s.Entries)
	}
	return n
}

func oldest(m client.TailMessage) int64 {
	var o int64
	first := true
	for _, s := range m.Streams {
		for _, e := range s.Entries {
			if first || e.Timestamp < o {
				o, first = e.Timestamp, false
			}
		}
	}
	return o
}

func newestOf(streams []client.Stream) int64 {
	var n int64
	for _, s := range streams {
		for _, e := range s.Entries {
			n = max(n, e.Timestamp)
		}
	}
	return n
}

// mergeLabels is one sorted set of stream labels, metadata and parsed
// labels; a later set wins on a clash.
func mergeLabels(sets ...client.Labels) client.Labels {
	m := map[string]string{}
	for _, ls := range sets {
		for _, l := range ls {
			m[l.Name] = l.Value
		}
	}
	return client.FromMap(m)
}
