package query

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/tracing"
)

// Point is the value of a series at one evaluation time.
type Point struct {
	// T is the evaluation time in Unix milliseconds: the step's time
	// truncated to the millisecond, as Loki reports it. JSON renders it as
	// seconds, T/1000 with three decimals.
	T int64
	V float64
}

// Series is one series of a matrix (the result of a metric range query).
type Series struct {
	Labels labels.Labels // never nil; empty for an aggregation without grouping
	Points []Point       // rising T; a step without a value has no point
}

// Sample is one element of a vector (the result of a metric instant
// query).
type Sample struct {
	Labels labels.Labels
	T      int64 // Unix milliseconds, as Point.T
	V      float64
}

// Query limits of metric queries.
const (
	// DefaultMaxSeries is Loki's default max_query_series.
	DefaultMaxSeries = 500
	// DefaultMaxMetricMemory bounds a metric query's per-series, per-step
	// accumulators.
	DefaultMaxMetricMemory = 256 << 20
	// maxPoints is Loki's bound on the steps of a range query.
	maxPoints = 11000
)

// SeriesLimitError is a metric query whose result has more series than
// allowed.
type SeriesLimitError struct{ Limit int }

func (e *SeriesLimitError) Error() string {
	return fmt.Sprintf("maximum number of series (%d) reached for a single query; consider reducing query cardinality "+
		"by adding more specific stream selectors, aggregating with sum by (...) or using fewer labels in by (...), "+
		"or raise query.max_query_series", e.Limit)
}

func seriesLimitError(limit int) error {
	e := &SeriesLimitError{Limit: limit}
	return &Error{Msg: e.Error(), Err: e}
}

// matrix is the value of a metric expression at every step of the query:
// a set of series with sparse points, or a scalar (one unlabelled series
// with a point at every step).
type matrix struct {
	scalar bool
	series []*mseries
}

type mseries struct {
	labels labels.Labels
	pts    []spoint // by rising step
}

// spoint is a value at step j.
type spoint struct {
	j int
	v float64
}

// evaluator runs one metric query.
type evaluator struct {
	e      *Engine
	p      Params
	steps  []int64 // evaluation times, ns
	budget *memBudget
	par    int
	stats  Stats
	root   logql.SampleExpr
}

func (e *Engine) execMetric(ctx context.Context, p Params, expr logql.SampleExpr) (res *Result, err error) {
	ctx, span := tracing.Start(ctx, "query.metric")
	defer func() {
		if res != nil {
			span.SetAttributes(statsAttributes(&res.Stats)...)
		}
		tracing.End(span, err)
	}()
	start := time.Now()
	ev, err := newEvaluator(e, p, expr)
	if err != nil {
		return nil, err
	}
	m, err := ev.eval(ctx, expr)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err = ev.result(m)
	if err != nil {
		return nil, err
	}
	res.Stats = ev.stats
	res.Stats.ExecTime = time.Since(start)
	return res, nil
}

// defaultStep is Loki's step when a range query gives none: the range
// divided by 250, in whole seconds, at least one second.
func defaultStep(start, end time.Time) time.Duration {
	return time.Duration(max(math.Floor(end.Sub(start).Seconds()/250), 1)) * time.Second
}

func newEvaluator(e *Engine, p Params, root logql.SampleExpr) (*evaluator, error) {
	ev := &evaluator{e: e, p: p, root: root, par: e.Parallelism}
	if ev.par <= 0 {
		ev.par = runtime.GOMAXPROCS(0)
	}
	limit := p.MaxMetricMemory
	if limit <= 0 {
		limit = DefaultMaxMetricMemory
	}
	ev.budget = &memBudget{limit: limit}
	if p.Instant {
		ev.steps = []int64{p.End.UnixNano()}
	} else {
		if p.End.Before(p.Start) {
			return nil, userError("end timestamp must not be before start time")
		}
		step := p.Step
		if step == 0 {
			step = defaultStep(p.Start, p.End)
		}
		if step < 0 {
			return nil, userError("zero or negative query resolution step widths are not accepted. Try a positive integer")
		}
		start, end := p.Start.UnixNano(), p.End.UnixNano()
		if (end-start)/int64(step) > maxPoints {
			return nil, userError("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
		}
		for t := start; t <= end; t += int64(step) {
			ev.steps = append(ev.steps, t)
		}
	}
	var bad error
	logql.Walk(root, func(n logql.Node) bool {
		if r, ok := n.(*logql.LogRangeExpr); ok {
			// Windows reach back range+offset from the first step; keep
			// that inside the int64 nanosecond clock.
			back := int64(r.Interval) + int64(r.Offset)
			if back < 0 || ev.steps[0] < math.MinInt64+back {
				bad = userError("the range and offset of %s reach before the representable time", r)
			}
		}
		return bad == nil
	})
	return ev, bad
}

func (ev *evaluator) eval(ctx context.Context, expr logql.SampleExpr) (*matrix, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch e := expr.(type) {
	case *logql.LiteralExpr:
		return ev.constant(e.Value, true), nil
	case *logql.VectorExpr:
		return ev.constant(e.Value, false), nil
	case *logql.RangeAggregationExpr:
		limit := 0
		if expr == ev.root && e.Op != logql.RangeAbsent {
			// A range aggregation at the root is the result: stop the scan
			// as soon as it has too many series.
			limit = ev.maxSeries()
		}
		return ev.rangeAggregation(ctx, e, rangeOptions{seriesLimit: limit})
	case *logql.VectorAggregationExpr:
		var in *matrix
		var err error
		if r, opts, ok := pushDown(e); ok {
			in, err = ev.rangeAggregation(ctx, r, opts)
		} else {
			in, err = ev.eval(ctx, e.Expr)
		}
		if err != nil {
			return nil, err
		}
		return ev.vectorAggregation(e, in)
	case *logql.BinaryExpr:
		l, err := ev.eval(ctx, e.LHS)
		if err != nil {
			return nil, err
		}
		r, err := ev.eval(ctx, e.RHS)
		if err != nil {
			return nil, err
		}
		return ev.binary(e, l, r)
	case *logql.LabelReplaceExpr:
		in, err := ev.eval(ctx, e.Expr)
		if err != nil {
			return nil, err
		}
		return ev.labelReplace(e, in)
	}
	return nil, userError("unsupported metric expression %s", expr)
}

// pushDown recognises sum [by|without (...)] (f(...)) for the range
// functions whose sum over series equals the function over the merged
// samples (counts, byte counts, sums, and their rates): the scan then
// builds only the grouped series, and parsers extract only the labels the
// grouping needs, as Loki does when it pushes a sum down to its queriers.
func pushDown(v *logql.VectorAggregationExpr) (*logql.RangeAggregationExpr, rangeOptions, bool) {
	r, ok := v.Expr.(*logql.RangeAggregationExpr)
	if !ok || v.Op != logql.VectorSum || r.Grouping != nil {
		return nil, rangeOptions{}, false
	}
	switch r.Op {
	case logql.RangeCount, logql.RangeRate, logql.RangeBytes, logql.RangeBytesRate, logql.RangeSum:
	default:
		return nil, rangeOptions{}, false
	}
	g := v.Grouping
	if g == nil || (!g.Without && len(g.Labels) == 0) {
		return r, rangeOptions{noLabels: true}, true
	}
	return r, rangeOptions{grouping: g}, true
}

func (ev *evaluator) maxSeries() int {
	switch {
	case ev.p.MaxSeries == 0:
		return DefaultMaxSeries
	case ev.p.MaxSeries < 0:
		return 0
	}
	return ev.p.MaxSeries
}

// constant is a literal (a scalar) or vector(s) at every step.
func (ev *evaluator) constant(v float64, scalar bool) *matrix {
	s := &mseries{labels: labels.Labels{}, pts: make([]spoint, len(ev.steps))}
	for j := range s.pts {
		s.pts[j] = spoint{j: j, v: v}
	}
	return &matrix{scalar: scalar, series: []*mseries{s}}
}

// msOf converts an evaluation time to the milliseconds Loki reports.
func msOf(ns int64) int64 { return ns / 1e6 }

// result shapes the root's value as Loki answers: a matrix for a range
// query, a vector or (for number-only expressions) a scalar for an
// instant query.
func (ev *evaluator) result(m *matrix) (*Result, error) {
	var live []*mseries
	for _, s := range m.series {
		if len(s.pts) > 0 {
			live = append(live, s)
		}
	}
	if lim := ev.maxSeries(); lim > 0 && len(live) > lim && !m.scalar {
		return nil, seriesLimitError(lim)
	}
	ev.stats.Streams = int64(len(live))
	if ev.p.Instant {
		t := msOf(ev.steps[0])
		if m.scalar {
			return &Result{Type: ResultScalar, Scalar: Point{T: t, V: live[0].pts[0].v}}, nil
		}
		vec := make([]Sample, 0, len(live))
		for _, s := range live {
			vec = append(vec, Sample{Labels: s.labels, T: t, V: s.pts[0].v})
		}
		sortVector(vec, ev.root)
		return &Result{Type: ResultVector, Vector: vec}, nil
	}
	mat := make([]Series, 0, len(live))
	for _, s := range live {
		pts := make([]Point, len(s.pts))
		for i, p := range s.pts {
			pts[i] = Point{T: msOf(ev.steps[p.j]), V: p.v}
		}
		ls := s.labels
		if ls == nil {
			ls = labels.Labels{}
		}
		mat = append(mat, Series{Labels: ls, Points: pts})
	}
	slices.SortFunc(mat, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })
	return &Result{Type: ResultMatrix, Matrix: mat}, nil
}

// sortVector orders an instant result as Loki does: by value for a query
// whose outermost operation is sort or sort_desc, by labels otherwise.
// NaN sorts last either way; ties keep label order.
func sortVector(vec []Sample, root logql.SampleExpr) {
	byLabels := func(a, b Sample) int { return labels.Compare(a.Labels, b.Labels) }
	va, ok := root.(*logql.VectorAggregationExpr)
	if !ok || (va.Op != logql.VectorSort && va.Op != logql.VectorSortDesc) {
		slices.SortFunc(vec, byLabels)
		return
	}
	desc := va.Op == logql.VectorSortDesc
	slices.SortFunc(vec, func(a, b Sample) int {
		an, bn := math.IsNaN(a.V), math.IsNaN(b.V)
		switch {
		case an && bn:
			return byLabels(a, b)
		case an:
			return 1
		case bn:
			return -1
		}
		c := cmp.Compare(a.V, b.V)
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return byLabels(a, b)
	})
}

// stepRefs lists, for every step, the series that have a value there:
// step j's are ref[off[j]:off[j+1]]. Operations between series work one
// step at a time over it, as Loki's step evaluators do.
type stepRefs struct {
	off []int32
	ref []sref
}

type sref struct {
	s int32 // series index
	v float64
}

func (m *matrix) byStep(n int) stepRefs {
	off := make([]int32, n+1)
	for _, s := range m.series {
		for _, p := range s.pts {
			off[p.j+1]++
		}
	}
	for j := 1; j <= n; j++ {
		off[j] += off[j-1]
	}
	ref := make([]sref, off[n])
	fill := slices.Clone(off[:n])
	for i, s := range m.series {
		for _, p := range s.pts {
			ref[fill[p.j]] = sref{s: int32(i), v: p.v}
			fill[p.j]++
		}
	}
	return stepRefs{off: off, ref: ref}
}

func (r *stepRefs) at(j int) []sref { return r.ref[r.off[j]:r.off[j+1]] }

// seriesBuilder collects output series by their labels, so that values
// from different inputs with the same labels form one series.
type seriesBuilder struct {
	idx map[string]int
	out []*mseries
	key []byte
}

func newSeriesBuilder() *seriesBuilder { return &seriesBuilder{idx: map[string]int{}} }

// get returns the index of the series with labels ls.
func (b *seriesBuilder) get(ls labels.Labels) int {
	b.key = appendLabelsKey(b.key[:0], ls)
	if i, ok := b.idx[string(b.key)]; ok {
		return i
	}
	if ls == nil {
		ls = labels.Labels{}
	}
	b.idx[string(b.key)] = len(b.out)
	b.out = append(b.out, &mseries{labels: ls})
	return len(b.out) - 1
}

// add appends a point; steps must come in rising order. A second value
// for the same series at the same step is the error Prometheus reports.
func (b *seriesBuilder) add(i, j int, v float64) error {
	s := b.out[i]
	if n := len(s.pts); n > 0 && s.pts[n-1].j == j {
		return userError("vector cannot contain metrics with the same labelset: %s", s.labels)
	}
	s.pts = append(s.pts, spoint{j: j, v: v})
	return nil
}

func appendLabelsKey(b []byte, ls labels.Labels) []byte {
	for _, l := range ls {
		b = append(b, l.Name...)
		b = append(b, 0xff)
		b = append(b, l.Value...)
		b = append(b, 0xfe)
	}
	return b
}
