package query

import (
	"context"
	"errors"
	"fmt"
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
type Params struct {
	Tenant    string
	Query     string
	Start     time.Time // inclusive
	End       time.Time // exclusive
	Limit     int
	Direction Direction
	Step      time.Duration
	Interval  time.Duration
	Instant   bool
}

// Result is the answer to a query.
type Result struct {
	Type    ResultType
	Streams []StreamResult
	Stats   Stats
}

// Error is a query the engine refuses for what it asks (as opposed to a
// failure while running it); the API answers it with 400.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

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
	sel, ok := expr.(*logql.LogSelectorExpr)
	if !ok {
		return nil, userError("metric queries are not supported yet: %s", p.Query)
	}
	pl, err := compilePipeline(sel)
	if err != nil {
		var pe *logql.ParseError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, &Error{Msg: err.Error()}
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
// stages.
func compilePipeline(sel *logql.LogSelectorExpr) (*pipeline.Pipeline, error) {
	if len(sel.Stages) == 0 {
		return nil, nil
	}
	return pipeline.New(sel.Stages)
}
