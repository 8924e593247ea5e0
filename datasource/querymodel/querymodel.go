// Package querymodel turns a query of the logsift Grafana datasource into
// the request the server runs. It reads the query JSON shared with the
// frontend, resolves Grafana's built-in variables ($__interval, $__auto,
// $__range, ...) and the step as Grafana's Loki datasource does, scopes
// every stream selector to a workspace, and picks the query type, so that
// a request that skipped the frontend (an alert rule) runs the same query.
package querymodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// Model is the query JSON the frontend stores in a panel or an alert rule.
type Model struct {
	RefID     string `json:"refId"`
	Expr      string `json:"expr"`
	QueryType string `json:"queryType"`
	MaxLines  int    `json:"maxLines"`
	Direction string `json:"direction"`
	// Workspace scopes every selector with {workspace="..."}.
	Workspace    string `json:"workspace"`
	LegendFormat string `json:"legendFormat"`
	// Step overrides the step of range metric queries: a duration ("30s")
	// or a variable ("$__interval").
	Step string `json:"step"`
	// Resolution divides the number of points: the step is the interval
	// times Resolution.
	Resolution          int    `json:"resolution"`
	SupportingQueryType string `json:"supportingQueryType"`
	// Format of a metric query's answer: FormatTimeSeries (the default)
	// or FormatTable.
	Format string `json:"format"`
}

// Formats of a metric query's answer.
const (
	// FormatTimeSeries answers a frame per series.
	FormatTimeSeries = "time_series"
	// FormatTable answers one table: a column per label and "Value #<refId>".
	FormatTable = "table"
)

// Query types of the model.
const (
	TypeRange   = "range"
	TypeInstant = "instant"
	TypeStream  = "stream"
	// TypeImports is the progress of workspace import runs: no
	// expression, an optional workspace (docs/grafana.md, "Import
	// progress").
	TypeImports = "imports"
)

// Supporting query types: Grafana's supplementary queries.
const (
	SupportLogsVolume = "logsVolume"
	SupportLogsSample = "logsSample"
	SupportDataSample = "dataSample"
)

// Directions of log queries.
const (
	Backward = "backward"
	Forward  = "forward"
)

// Input is a query as Grafana hands it to the backend.
type Input struct {
	JSON     []byte
	From, To time.Time
	// Interval is Grafana's interval for the panel ($__interval); 0
	// derives it from MaxDataPoints.
	Interval      time.Duration
	MaxDataPoints int64
	// FromAlert marks a request of an alert rule: nothing was interpolated
	// by a frontend, and an empty query type means instant for a metric
	// query.
	FromAlert bool
	// DefaultMaxLines is the datasource's line limit, used when the query
	// sets none.
	DefaultMaxLines int
}

// Request is what to ask the server.
type Request struct {
	RefID string
	// Expr is the query to send: variables resolved, workspace applied.
	Expr string
	// Metric tells a metric query from a log query.
	Metric bool
	// Type is TypeRange, TypeInstant or TypeStream.
	Type       string
	Start, End time.Time
	// Step is the step of a range metric query.
	Step      time.Duration
	Interval  time.Duration
	Limit     int
	Direction string
	// LegendFormat names each series, {{label}} replaced by its value.
	LegendFormat string
	Supporting   string
	Workspace    string
	// Table asks for a metric answer as one table (Model.Format "table").
	Table bool
}

// ErrEmptyQuery is a query without an expression: Grafana sends those for
// new or hidden panels, and they get an empty answer.
var ErrEmptyQuery = errors.New("the query is empty")

// Limits of the model's numbers, so that a hostile query cannot ask for
// absurd sizes.
const (
	maxLinesCap   = 1_000_000
	maxResolution = 100
	// maxPoints is the server's bound on the points of one series.
	maxPoints = 11000
	// defaultMaxDataPoints is used when Grafana sends none.
	defaultMaxDataPoints = 1000
	// defaultLines is the line limit without one in the query or settings.
	defaultLines = 1000
)

// Parse reads the query JSON.
func Parse(b []byte) (Model, error) {
	var m Model
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("the query is not valid JSON: %w", err)
	}
	return m, nil
}

// Build turns a query into a request.
func Build(in Input) (Request, error) {
	m, err := Parse(in.JSON)
	if err != nil {
		return Request{}, err
	}
	return BuildModel(m, in)
}

// BuildModel is Build for a model already read.
func BuildModel(m Model, in Input) (Request, error) {
	r := Request{RefID: m.RefID, Start: in.From, End: in.To, LegendFormat: m.LegendFormat, Supporting: m.SupportingQueryType, Workspace: m.Workspace}
	switch m.Format {
	case "", FormatTimeSeries:
	case FormatTable:
		r.Table = true
	default:
		return r, fmt.Errorf("unknown format %q: use %q or %q", m.Format, FormatTimeSeries, FormatTable)
	}
	if m.QueryType == TypeImports {
		// The runs of a workspace, not a LogQL query: the expression is
		// not read.
		r.Type = TypeImports
		r.Workspace = strings.TrimSpace(m.Workspace)
		if in.To.Before(in.From) {
			return r, fmt.Errorf("the time range ends (%s) before it starts (%s)", in.To.Format(time.RFC3339), in.From.Format(time.RFC3339))
		}
		if r.Workspace != "" && !validWorkspace(r.Workspace) {
			return r, fmt.Errorf("workspace %q is not a valid workspace name", r.Workspace)
		}
		return r, nil
	}
	if strings.TrimSpace(m.Expr) == "" {
		return r, ErrEmptyQuery
	}
	if in.To.Before(in.From) {
		return r, fmt.Errorf("the time range ends (%s) before it starts (%s)", in.To.Format(time.RFC3339), in.From.Format(time.RFC3339))
	}
	switch m.QueryType {
	case "", TypeRange, TypeInstant, TypeStream:
	default:
		return r, fmt.Errorf("unknown queryType %q: use range, instant, stream or imports", m.QueryType)
	}
	switch m.SupportingQueryType {
	case "", SupportLogsVolume, SupportLogsSample, SupportDataSample:
	default:
		return r, fmt.Errorf("unknown supportingQueryType %q: use logsVolume, logsSample or dataSample", m.SupportingQueryType)
	}
	switch strings.ToLower(m.Direction) {
	case "", Backward, "scan":
		r.Direction = Backward
	case Forward:
		r.Direction = Forward
	default:
		return r, fmt.Errorf("unknown direction %q: use backward or forward", m.Direction)
	}
	if m.MaxLines < 0 || m.MaxLines > maxLinesCap {
		return r, fmt.Errorf("maxLines %d is out of range: use 1 to %d, or 0 for the datasource's default", m.MaxLines, maxLinesCap)
	}
	r.Limit = m.MaxLines
	if r.Limit == 0 {
		r.Limit = in.DefaultMaxLines
	}
	if r.Limit <= 0 {
		r.Limit = defaultLines
	}
	if m.Workspace != "" && !validWorkspace(m.Workspace) {
		return r, fmt.Errorf("workspace %q is not a valid label value", m.Workspace)
	}

	rng := in.To.Sub(in.From)
	r.Interval = in.Interval
	if r.Interval <= 0 {
		mdp := in.MaxDataPoints
		if mdp <= 0 {
			mdp = defaultMaxDataPoints
		}
		r.Interval = max(roundInterval(rng/time.Duration(mdp)), time.Millisecond)
	}
	resolution := m.Resolution
	if resolution <= 0 {
		resolution = 1
	}
	if resolution > maxResolution {
		return r, fmt.Errorf("resolution %d is out of range: use 1 to %d", m.Resolution, maxResolution)
	}
	var err error
	if r.Step, err = step(r.Interval, rng, resolution, m.Step); err != nil {
		return r, err
	}

	// The kind of query decides the default type, and the type decides
	// what $__auto means; parse once with the range meaning to learn it.
	probe := Interpolate(m.Expr, Vars{Interval: r.Interval, Range: rng, Step: r.Step, From: in.From, To: in.To, Type: TypeRange})
	parsed, perr := logql.ParseExpr(probe)
	if perr == nil {
		_, r.Metric = parsed.(logql.SampleExpr)
	} else if v := UnresolvedVariable(probe); v != "" {
		return r, fmt.Errorf("the query uses the variable %s, which only a dashboard can replace: alert rules and other backend requests get no dashboard variables; put its value in the query", v)
	}

	r.Type = m.QueryType
	switch {
	case r.Type == "" && r.Metric && in.FromAlert:
		r.Type = TypeInstant
	case r.Type == "":
		r.Type = TypeRange
	case r.Type == TypeInstant && !r.Metric:
		// The server runs log queries only over a range, as Loki does.
		r.Type = TypeRange
	case r.Type == TypeStream && r.Metric:
		return r, errors.New("live streaming needs a log query; metric queries run as range or instant queries")
	}
	expr := probe
	if r.Type == TypeInstant {
		expr = Interpolate(m.Expr, Vars{Interval: r.Interval, Range: rng, Step: r.Step, From: in.From, To: in.To, Type: TypeInstant})
		parsed, perr = logql.ParseExpr(expr)
	}

	if m.Workspace != "" {
		if perr != nil {
			return r, fmt.Errorf("cannot scope the query to workspace %q: %w", m.Workspace, perr)
		}
		ScopeWorkspace(parsed, m.Workspace)
		expr = parsed.String()
	}
	r.Expr = expr

	switch m.SupportingQueryType {
	case SupportLogsVolume:
		if !r.Metric {
			if perr != nil {
				return r, fmt.Errorf("cannot build the logs volume query: %w", perr)
			}
			r.Expr = VolumeQuery(parsed.(*logql.LogSelectorExpr), r.Step)
			r.Metric = true
		}
		r.Type = TypeRange
		if r.LegendFormat == "" {
			r.LegendFormat = "{{" + LevelLabel + "}}"
		}
	case SupportLogsSample:
		if r.Metric {
			if perr != nil {
				return r, fmt.Errorf("cannot build the logs sample query: %w", perr)
			}
			sels := logql.LogSelectors(parsed)
			if len(sels) == 0 {
				return r, errors.New("the metric query has no log selector to sample")
			}
			r.Expr = sels[0].String()
			r.Metric = false
		}
		r.Type = TypeRange
		if m.MaxLines == 0 {
			r.Limit = min(r.Limit, 100)
		}
	case SupportDataSample:
		r.Type = TypeRange
		if m.MaxLines == 0 {
			r.Limit = min(r.Limit, 100)
		}
	}
	return r, nil
}

// LevelLabel is the label the server stores the detected level in.
const LevelLabel = "detected_level"

// VolumeQuery is the logs volume histogram of a log query: lines per step,
// by detected level.
func VolumeQuery(sel *logql.LogSelectorExpr, step time.Duration) string {
	return "sum by (" + LevelLabel + ") (count_over_time(" + sel.String() + " [" + logql.FormatDuration(max(step, time.Millisecond)) + "]))"
}

// ScopeWorkspace adds workspace="ws" to every stream selector of a query;
// a selector that already has exactly that matcher keeps its own.
func ScopeWorkspace(e logql.Expr, ws string) {
	for _, sel := range logql.LogSelectors(e) {
		has := false
		for _, m := range sel.Matchers {
			if m.Name == "workspace" && m.Type == labels.MatchEqual && m.Value == ws {
				has = true
				break
			}
		}
		if !has {
			sel.Matchers = append(sel.Matchers, labels.MustNewMatcher(labels.MatchEqual, "workspace", ws))
		}
	}
}

// validWorkspace accepts any printable label value of sane length.
func validWorkspace(ws string) bool {
	if len(ws) > 1024 {
		return false
	}
	for _, r := range ws {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// step is Grafana's rule for the step of a range query: the interval (or
// the query's own step) times the resolution, but never so small that a
// series has more than the server's 11,000 points.
func step(interval, rng time.Duration, resolution int, queryStep string) (time.Duration, error) {
	s := interval
	if qs := strings.TrimSpace(queryStep); qs != "" {
		qs = Interpolate(qs, Vars{Interval: interval, Range: rng, Type: TypeRange})
		d, err := ParseDuration(qs)
		if err != nil {
			return 0, fmt.Errorf("invalid step %q: %w", queryStep, err)
		}
		if d <= 0 {
			return 0, fmt.Errorf("invalid step %q: it must be positive", queryStep)
		}
		s = d
	}
	s *= time.Duration(resolution)
	// The server counts both ends: a range of n steps has n+1 points.
	if safe := ceilMillis((rng + maxPoints - 2) / (maxPoints - 1)); safe > s {
		s = safe
	}
	return max(s, time.Millisecond), nil
}

// ceilMillis rounds up to whole milliseconds, the precision of a step.
func ceilMillis(d time.Duration) time.Duration {
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	return d
}
