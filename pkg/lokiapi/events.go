package lokiapi

import (
	"context"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/tracing"
)

// searchEvent publishes the search events of one query (requested when it
// starts, then completed or failed with its duration and result size) and
// records the query's metrics.
type searchEvent struct {
	a      *API
	ctx    context.Context
	tenant string
	query  string
	id     string
	start  time.Time
}

func (a *API) searchEvents(ctx context.Context, tenantID, q string) *searchEvent {
	id, ok := tracing.QueryIDFromContext(ctx)
	if !ok {
		id = tracing.NewQueryID()
	}
	s := &searchEvent{a: a, ctx: ctx, tenant: tenantID, query: q, id: id, start: time.Now()}
	s.publish(events.SearchRequested, &events.Search{QueryID: id, Query: q})
	return s
}

// The query metrics, by kind (logs or metric) and outcome.
var (
	queryScannedBytes = metrics.NewCounter(`logsift_query_scanned_bytes_total`)
	queryScannedLines = metrics.NewCounter(`logsift_query_scanned_lines_total`)
	queryChunksPruned = metrics.NewCounter(`logsift_query_chunks_pruned_total`)
	queryChunksRead   = metrics.NewCounter(`logsift_query_chunks_decoded_total`)
)

func recordQuery(res *query.Result, err error, took time.Duration) {
	kind, status := "logs", "ok"
	if err != nil {
		status = "error"
	}
	if res != nil {
		if res.Type != query.ResultStreams {
			kind = "metric"
		}
		st := &res.Stats
		queryScannedBytes.Add(int(st.DecompressedBytes + st.HeadChunkBytes))
		queryScannedLines.Add(int(st.DecompressedLines + st.HeadChunkLines))
		queryChunksPruned.Add(int(st.ChunksPruned))
		queryChunksRead.Add(int(st.ChunksDecoded))
	}
	metrics.GetOrCreatePrometheusHistogram(`logsift_query_duration_seconds{kind="` + kind + `",status="` + status + `"}`).Update(took.Seconds())
}

// done publishes the outcome. Results counts log lines, or series of a
// metric query.
func (s *searchEvent) done(res *query.Result, err error) {
	took := time.Since(s.start)
	recordQuery(res, err, took)
	ev := &events.Search{QueryID: s.id, Query: s.query, Duration: took}
	if err != nil {
		ev.Error = err.Error()
		s.publish(events.SearchFailed, ev)
		return
	}
	ev.Results = resultCount(res)
	ev.Bytes = res.Stats.DecompressedBytes + res.Stats.HeadChunkBytes
	s.publish(events.SearchCompleted, ev)
}

func (s *searchEvent) publish(t events.Type, payload *events.Search) {
	if s.a.Events == nil {
		return
	}
	// The bus never blocks a publisher; an error means it is closed, which
	// only happens at shutdown.
	_ = s.a.Events.Publish(context.WithoutCancel(s.ctx), &events.Event{
		Type: t, Time: time.Now(), Tenant: s.tenant,
		Actor: events.ActorFromContext(s.ctx), Search: payload,
	})
}

func resultCount(res *query.Result) int {
	switch res.Type {
	case query.ResultStreams:
		n := 0
		for _, st := range res.Streams {
			n += len(st.Entries)
		}
		return n
	case query.ResultMatrix:
		return len(res.Matrix)
	case query.ResultVector:
		return len(res.Vector)
	}
	return 1
}
