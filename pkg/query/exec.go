package query

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/pipeline"
)

// ResultType names the shape of a result as Loki's API does.
type ResultType string

// The result types of Loki's query API.
const (
	ResultStreams ResultType = "streams"
	ResultMatrix  ResultType = "matrix"
	ResultVector  ResultType = "vector"
	ResultScalar  ResultType = "scalar"
)

// Params is a query as the HTTP API receives it.
//
// A log query returns entries in [Start, End). A metric range query is
// evaluated at Start, Start+Step, ... up to and including End (Loki's
// steps; a zero Step takes Loki's default, see defaultStep); a metric
// instant query (Instant) once, at End, and ignores Start.
type Params struct {
	Tenant    string
	Query     string
	Start     time.Time // inclusive
	End       time.Time // exclusive for log queries, the last step for metric queries
	Limit     int
	Direction Direction
	Step      time.Duration
	Interval  time.Duration
	Instant   bool
	// MaxSeries bounds the series of a metric query's result, as Loki's
	// max_query_series: 0 means DefaultMaxSeries, negative no limit.
	MaxSeries int
	// MaxMetricMemory bounds the bytes a metric query's per-series,
	// per-step state may take: 0 means DefaultMaxMetricMemory.
	MaxMetricMemory int64
	// NoCache runs a metric range query without the result cache, neither
	// reading nor filling it: Loki's "Cache-Control: no-cache", used to
	// measure the engine and to rule the cache out when an answer looks
	// wrong.
	NoCache bool
}

// Result is the answer to a query. Type says which field holds it:
//
//   - ResultStreams: Streams (log queries).
//   - ResultMatrix: Matrix (metric range queries), series sorted by
//     labels. Loki's JSON: [{"metric": {labels}, "values": [[<T/1000>,
//     "<V>"], ...]}, ...].
//   - ResultVector: Vector (metric instant queries), sorted by labels (by
//     value for sort and sort_desc). JSON: [{"metric": {labels}, "value":
//     [<T/1000>, "<V>"]}, ...].
//   - ResultScalar: Scalar (instant queries of number-only expressions
//     such as 1+1). JSON: [<T/1000>, "<V>"].
//
// Times are Unix milliseconds, rendered as seconds with three decimals
// (1700000000.123); values as strconv.FormatFloat(v, 'f', -1, 64) gives
// them, with NaN, +Inf and -Inf spelled so, as Prometheus does.
type Result struct {
	Type    ResultType
	Streams []StreamResult
	Matrix  []Series
	Vector  []Sample
	Scalar  Point
	Stats   Stats
	// Encoded, when set, is shared by every answer with this same Matrix
	// (the result cache's memo): the API keeps its encoding of the matrix
	// there and reuses it.
	Encoded *atomic.Pointer[[]byte]
}

// Error is a query the engine refuses for what it asks (as opposed to a
// failure while running it); the API answers it with 400. Err, when set,
// is the typed cause (a *pipeline.PipelineError, a *SeriesLimitError).
type Error struct {
	Msg string
	Err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the typed cause, if any.
func (e *Error) Unwrap() error { return e.Err }

func userError(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// minNeedle is the shortest needle worth testing against a chunk filter:
// the filters index 3-byte windows.
const minNeedle = 3

// Exec parses and runs a query.
func (e *Engine) Exec(ctx context.Context, p Params) (*Result, error) {
	expr, err := logql.ParseExpr(p.Query)
	if err != nil {
		return nil, err
	}
	if se, ok := expr.(logql.SampleExpr); ok {
		// Metric range queries go through the result cache when the
		// engine has one (cached.go).
		if rc := e.resultCache(); rc != nil && !p.Instant {
			return rc.exec(ctx, e, p, se)
		}
		return e.execMetric(ctx, p, se)
	}
	sel, ok := expr.(*logql.LogSelectorExpr)
	if !ok {
		return nil, userError("unsupported query: %s", p.Query)
	}
	pl, err := compilePipeline(sel)
	if err != nil {
		return nil, err
	}
	req := LogRequest{
		Tenant:    p.Tenant,
		Matchers:  sel.Matchers,
		Needles:   logql.RequiredNeedles(sel, minNeedle),
		Pipeline:  pl,
		Start:     p.Start.UnixNano(),
		End:       p.End.UnixNano(),
		Limit:     p.Limit,
		Direction: p.Direction,
	}
	res, err := e.Logs(ctx, req)
	if err != nil {
		return nil, err
	}
	return &Result{Type: ResultStreams, Streams: res.Streams, Stats: res.Stats}, nil
}

// compilePipeline compiles a log query's pipeline; nil when it has no
// stages. A stage that cannot be built is the query's fault: the error is
// a ParseError (with its position) or an *Error.
func compilePipeline(sel *logql.LogSelectorExpr) (*pipeline.Pipeline, error) {
	if len(sel.Stages) == 0 {
		return nil, nil
	}
	pl, err := pipeline.New(sel.Stages)
	if err != nil {
		var pe *logql.ParseError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, &Error{Msg: err.Error()}
	}
	return pl, nil
}
