// Package search streams search results with progress: it runs LogQL log
// queries with the engine's streaming scan (query.Engine.StreamLogs) and
// sends each batch of certain results, with the scan's progress, as soon
// as it is cut, over gRPC (logsift.v1.QueryService/Search) and over HTTP
// as NDJSON (GET /api/v1/search/stream). Tenants, limits and errors follow
// the rules of the Loki-compatible query API (pkg/lokiapi); docs/api.md is
// the reference.
package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
	"github.com/logsift/logsift/pkg/tracing"
)

// Service runs streaming searches for the HTTP and gRPC front ends.
type Service struct {
	Engine *query.Engine
	Store  *store.Store
	// Limits are the query limits of the server configuration (`query:`);
	// a search obeys those of query_range.
	Limits lokiapi.Limits
	// Tenants resolves X-Scope-OrgID (and its gRPC metadata form).
	Tenants tenant.Resolver
	// Events receives search.requested, .completed and .failed, as for
	// query_range; nil publishes none.
	Events events.Bus
	Log    *slog.Logger
	Now    func() time.Time // for tests; time.Now when nil
}

// DefaultLimit is the number of entries of a search that names none, as
// Loki's query_range.
const DefaultLimit = 100

// Request is one search, as both front ends read it.
type Request struct {
	Query string
	// Start is inclusive, End exclusive. A zero End is now; a zero Start
	// is End minus an hour.
	Start, End time.Time
	Limit      int // 0: DefaultLimit
	Direction  query.Direction
}

// RequestError is a search the client got wrong: HTTP 400, gRPC
// INVALID_ARGUMENT.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func badRequest(format string, args ...any) error {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Run checks the request against the tenants' limits and runs it, calling
// send with every batch; the last has Progress.Done set. Run returns a
// *RequestError, a *logql.ParseError or a *query.Error for what the
// client got wrong, the context's error when the query timed out or the
// client went away, and send's error as it is.
func (s *Service) Run(ctx context.Context, tenants []string, r Request, send func(*query.Batch) error) error {
	if len(tenants) == 0 {
		return badRequest("no tenant")
	}
	limits := s.Limits.ForTenants(tenants)
	orgID := tenant.JoinQueryIDs(tenants)
	if strings.TrimSpace(r.Query) == "" {
		return badRequest("query parameter is required")
	}
	if r.End.IsZero() {
		r.End = s.now()
	}
	if r.Start.IsZero() {
		r.Start = r.End.Add(-time.Hour)
	}
	if r.End.Before(r.Start) {
		return badRequest("end timestamp must not be before start time")
	}
	if r.Limit == 0 {
		r.Limit = DefaultLimit
	}
	if r.Limit < 0 {
		return badRequest("invalid limit %d: must be a positive integer", r.Limit)
	}
	if m := limits.MaxEntriesPerQuery; m > 0 && r.Limit > m {
		return badRequest("max entries limit per query exceeded, limit > max_entries_limit_per_query (%d > %d); lower the limit or raise limits.max_entries_limit_per_query", r.Limit, m)
	}
	if m := limits.MaxQueryLength; m > 0 && r.End.Sub(r.Start) > m {
		return badRequest("the query time range exceeds the limit (query length: %s, limit: %s); shorten the time range or raise limits.max_query_length", r.End.Sub(r.Start), m)
	}
	expr, err := logql.ParseExpr(r.Query)
	if err != nil {
		return err
	}
	sel, ok := expr.(*logql.LogSelectorExpr)
	if !ok {
		return badRequest("a streaming search needs a log query; run metric queries with /loki/api/v1/query_range")
	}
	if m := int64(limits.MaxQueryBytesRead); m > 0 {
		if est := s.estimateBytes(orgID, sel, r.Start, r.End); est > m {
			return badRequest("the query would read too many bytes (query: %s, limit: %s); add more specific stream selectors, shorten the time range or raise limits.max_query_bytes_read", humanBytes(est), humanBytes(m))
		}
	}
	if limits.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limits.QueryTimeout)
		defer cancel()
	}
	ev := s.searchEvents(ctx, orgID, r.Query)
	res, err := s.Engine.StreamQuery(ctx, query.Params{
		Tenant: orgID, Query: r.Query, Start: r.Start, End: r.End, Limit: r.Limit, Direction: r.Direction,
	}, send)
	ev.done(res, err)
	return err
}

// estimateBytes is the index's estimate of the line bytes a selector
// covers in [start, end), as query_range estimates it for
// max_query_bytes_read: a chunk partly in the range counts with the share
// of its span inside it.
func (s *Service) estimateBytes(orgID string, sel *logql.LogSelectorExpr, start, end time.Time) int64 {
	from, through := start.UnixNano(), end.UnixNano()
	var total float64
	s.Store.VisitStats(orgID, sel.Matchers, from, through, func(ss *store.StreamStats) {
		for _, ch := range ss.Chunks {
			lo, hi := max(ch.MinTime, from), min(ch.MaxTime+1, through)
			if hi > lo {
				total += float64(hi-lo) / float64(ch.MaxTime-ch.MinTime+1) * float64(ch.RawBytes)
			}
		}
		total += float64(ss.HeadBytes)
	})
	return int64(math.Round(total))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Kind sorts an error of Run for the front ends.
type Kind int

// The kinds of errors, each with its HTTP status and gRPC code.
const (
	KindInternal Kind = iota
	KindBadRequest
	KindTimeout
	KindCanceled
)

// Classify tells what kind of error Run returned.
func Classify(err error) Kind {
	var re *RequestError
	var pe *logql.ParseError
	var qe *query.Error
	switch {
	case errors.As(err, &re), errors.As(err, &pe), errors.As(err, &qe):
		return KindBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	return KindInternal
}

// clientGone is a failed write to the client: it went away (or its
// connection broke), which ends the search as a cancellation does, not
// as a server failure.
func clientGone(err error) error {
	return fmt.Errorf("send to the client: %v: %w", err, context.Canceled)
}

// message is the text a client gets for an error of Run.
func message(err error) string {
	switch Classify(err) {
	case KindTimeout:
		return "query timed out: " + err.Error() + "; narrow the time range or the selector, or raise limits.query_timeout"
	case KindCanceled:
		return "query canceled"
	}
	return err.Error()
}

// searchEvent publishes a search's events and records its metrics, as
// query_range does.
type searchEvent struct {
	s      *Service
	ctx    context.Context
	tenant string
	query  string
	id     string
	start  time.Time
}

func (s *Service) searchEvents(ctx context.Context, orgID, q string) *searchEvent {
	id, ok := tracing.QueryIDFromContext(ctx)
	if !ok {
		id = tracing.NewQueryID()
	}
	ev := &searchEvent{s: s, ctx: ctx, tenant: orgID, query: q, id: id, start: time.Now()}
	ev.publish(events.SearchRequested, &events.Search{QueryID: id, Query: q})
	return ev
}

func (ev *searchEvent) done(res *query.LogResult, err error) {
	took := time.Since(ev.start)
	status := "ok"
	if err != nil {
		status = "error"
	}
	// The same series as query_range's, so that dashboards count every
	// log query; kind tells the streamed ones apart.
	metrics.GetOrCreatePrometheusHistogram(`logsift_query_duration_seconds{kind="logs_stream",status="` + status + `"}`).Update(took.Seconds())
	out := &events.Search{QueryID: ev.id, Query: ev.query, Duration: took}
	if err != nil {
		out.Error = err.Error()
		ev.publish(events.SearchFailed, out)
		if Classify(err) == KindInternal {
			ev.s.log().Error("streaming search failed", "query", ev.query, "err", err)
		}
		return
	}
	st := &res.Stats
	metrics.GetOrCreateCounter(`logsift_query_scanned_bytes_total`).Add(int(st.DecompressedBytes + st.HeadChunkBytes))
	metrics.GetOrCreateCounter(`logsift_query_scanned_lines_total`).Add(int(st.DecompressedLines + st.HeadChunkLines))
	metrics.GetOrCreateCounter(`logsift_query_chunks_pruned_total`).Add(int(st.ChunksPruned))
	metrics.GetOrCreateCounter(`logsift_query_chunks_decoded_total`).Add(int(st.ChunksDecoded))
	out.Results = int(st.EntriesReturned)
	out.Bytes = st.DecompressedBytes + st.HeadChunkBytes
	ev.publish(events.SearchCompleted, out)
}

func (ev *searchEvent) publish(t events.Type, payload *events.Search) {
	if ev.s.Events == nil {
		return
	}
	// The bus never blocks a publisher; an error means it is closed,
	// which happens only at shutdown.
	_ = ev.s.Events.Publish(context.WithoutCancel(ev.ctx), &events.Event{
		Type: t, Time: time.Now(), Tenant: ev.tenant,
		Actor: events.ActorFromContext(ev.ctx), Search: payload,
	})
}
