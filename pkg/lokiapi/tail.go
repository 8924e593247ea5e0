package lokiapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/coder/websocket"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/pipeline"
	"github.com/logsift/logsift/pkg/query"
)

// Tail limits, as Loki has them.
const (
	maxDelayFor    = 5 * time.Second
	tailFlushEvery = 100 * time.Millisecond
	tailPing       = 30 * time.Second
)

type tailKey struct {
	stream uint64
	ts     int64
	line   uint64
}

// tail serves /loki/api/v1/tail: a WebSocket that first carries the most
// recent `limit` entries since `start`, then every new matching entry
// within about 100 ms of its acknowledgement (plus `delay_for`, which
// lets late entries be sorted in).
func (a *API) tail(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	tid := c.tenant
	if strings.Contains(tid, "|") {
		http.Error(w, "live tail follows one tenant: name a single tenant in X-Scope-OrgID (queries across tenants work with query_range)", http.StatusBadRequest)
		return
	}
	q := r.Form.Get("query")
	expr, err := logql.ParseLogSelector(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var pl *pipeline.Pipeline
	if len(expr.Stages) > 0 {
		if pl, err = pipeline.New(expr.Stages); err != nil {
			a.fail(w, r, &query.Error{Msg: err.Error()})
			return
		}
	}
	limit, err := parseLimit(r, 100, c.limits.MaxEntriesPerQuery)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var delay time.Duration
	if v := r.Form.Get("delay_for"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 {
			a.fail(w, r, badParam("invalid delay_for %q: a number of seconds", v))
			return
		}
		if delay = time.Duration(secs) * time.Second; delay > maxDelayFor {
			a.fail(w, r, badParam("delay_for can't be greater than %d", int(maxDelayFor.Seconds())))
			return
		}
	}
	now := a.now()
	start, err := ParseTime("start", r.Form.Get("start"), now.Add(-time.Hour))
	if err != nil {
		a.fail(w, r, err)
		return
	}

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Tailing is read-only and clients (Grafana's proxy, logcli) come
		// from anywhere; the tenant header, not the origin, scopes access.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // Accept has answered the request
	}
	defer conn.CloseNow()
	ctx := conn.CloseRead(r.Context())

	// Subscribe before the backfill query, so no entry falls in between;
	// entries seen by both are sent once.
	sub := a.Store.Subscribe(tid, expr.Matchers, 256)
	defer sub.Close()
	res, err := a.Engine.Exec(ctx, query.Params{Tenant: tid, Query: q, Start: start, End: now.Add(time.Second), Limit: limit, Direction: query.Backward})
	if err != nil {
		_ = conn.Close(websocket.StatusInternalError, truncateReason(err.Error()))
		return
	}
	sent := map[tailKey]struct{}{}
	var backfill []tailStream
	for _, s := range res.Streams {
		ts := tailStream{labels: mergeLabels(s.Labels, nil, nil)}
		h := s.Labels.Hash()
		for j := len(s.Entries) - 1; j >= 0; j-- { // oldest first
			e := s.Entries[j]
			sent[tailKey{h, e.Timestamp, xxhash.Sum64(e.Line)}] = struct{}{}
			ts.entries = append(ts.entries, tailEntry{ts: e.Timestamp, line: e.Line, labels: mergeLabels(s.Labels, e.Metadata, e.Parsed)})
		}
		backfill = append(backfill, ts)
	}
	if err := writeTail(ctx, conn, flattenTail(backfill), nil); err != nil {
		return
	}

	var (
		pw      *pipeline.Worker
		sps     = map[uint64]*pipeline.StreamPipeline{}
		pending []tailEntry
		dropped int64
	)
	if pl != nil {
		pw = pl.NewWorker()
	}
	flush := time.NewTicker(tailFlushEvery)
	defer flush.Stop()
	ping := time.NewTicker(tailPing)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case batch, ok := <-sub.C:
			if !ok {
				return
			}
			for _, st := range batch {
				h := st.Labels.Hash()
				for _, e := range st.Entries {
					if _, dup := sent[tailKey{h, e.Timestamp, xxhash.Sum64(e.Line)}]; dup {
						continue
					}
					if te, ok := applyTail(pw, sps, h, st.Labels, e); ok {
						pending = append(pending, te)
					}
				}
			}
		case <-flush.C:
			if len(sent) > 0 && a.now().Sub(now) > maxDelayFor+time.Second {
				sent = map[tailKey]struct{}{} // past the overlap window
			}
			var drop []droppedEntry
			if d := sub.Dropped(); d > dropped {
				drop = append(drop, droppedEntry{Timestamp: strconv.FormatInt(a.now().UnixNano(), 10), Labels: map[string]string{"__dropped_entries__": strconv.FormatInt(d-dropped, 10)}})
				dropped = d
			}
			ready := pending
			if delay > 0 {
				cut := a.now().Add(-delay).UnixNano()
				slices.SortStableFunc(pending, func(x, y tailEntry) int { return cmp64(x.ts, y.ts) })
				i := 0
				for i < len(pending) && pending[i].ts <= cut {
					i++
				}
				ready = pending[:i]
			}
			if len(ready) == 0 && len(drop) == 0 {
				continue
			}
			if err := writeTail(ctx, conn, ready, drop); err != nil {
				return
			}
			pending = slices.Delete(pending, 0, len(ready))
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type tailEntry struct {
	ts     int64
	line   []byte
	labels labels.Labels
}

type tailStream struct {
	labels  labels.Labels
	entries []tailEntry
}

type droppedEntry struct {
	Labels    map[string]string `json:"labels"`
	Timestamp string            `json:"timestamp"`
}

// applyTail runs the pipeline on one live entry.
func applyTail(pw *pipeline.Worker, sps map[uint64]*pipeline.StreamPipeline, h uint64, stream labels.Labels, e chunk.Entry) (tailEntry, bool) {
	if pw == nil {
		return tailEntry{ts: e.Timestamp, line: e.Line, labels: mergeLabels(stream, e.Metadata, nil)}, true
	}
	sp := sps[h]
	if sp == nil {
		sp = pw.ForStream(stream)
		sps[h] = sp
	}
	line, lr, keep := sp.Process(e.Timestamp, e.Line, e.Metadata)
	if !keep {
		return tailEntry{}, false
	}
	return tailEntry{ts: e.Timestamp, line: slices.Clone(line), labels: lr.Labels}, true
}

// mergeLabels is the stream key Loki's tail uses: every label together.
func mergeLabels(stream, md, parsed labels.Labels) labels.Labels {
	if len(md) == 0 && len(parsed) == 0 {
		return stream
	}
	return append(append(stream.Copy(), md...), parsed...).Sort()
}

func flattenTail(streams []tailStream) []tailEntry {
	var out []tailEntry
	for _, s := range streams {
		out = append(out, s.entries...)
	}
	slices.SortStableFunc(out, func(x, y tailEntry) int { return cmp64(x.ts, y.ts) })
	return out
}

// writeTail sends one frame in Loki's tail format.
func writeTail(ctx context.Context, conn *websocket.Conn, entries []tailEntry, dropped []droppedEntry) error {
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	msg := struct {
		Streams        []stream       `json:"streams"`
		DroppedEntries []droppedEntry `json:"dropped_entries,omitempty"`
	}{Streams: []stream{}, DroppedEntries: dropped}
	idx := map[uint64]int{}
	for _, e := range entries {
		h := e.labels.Hash()
		i, ok := idx[h]
		if !ok {
			i = len(msg.Streams)
			idx[h] = i
			msg.Streams = append(msg.Streams, stream{Stream: e.labels.Map()})
		}
		msg.Streams[i].Values = append(msg.Streams[i].Values, [2]string{strconv.FormatInt(e.ts, 10), string(e.line)})
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, b)
}

// truncateReason keeps a close reason within the WebSocket limit of 123 bytes.
func truncateReason(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}
