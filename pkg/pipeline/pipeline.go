// Package pipeline runs the stages of a LogQL log pipeline on entries. This
// version executes line filters (|= != |~ !~ |> !> with or, and ip());
// parsers, label filters and formatting stages are rejected by New until
// they are implemented.
//
// Everything New returns is immutable and safe for concurrent use, so one
// compiled pipeline serves every scan goroutine of a query.
package pipeline

import (
	"fmt"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// Entry is one log entry as it moves through the pipeline. Stages may
// replace Line (line_format, once supported); filters only read it.
type Entry struct {
	Timestamp int64 // Unix nanoseconds
	Line      []byte
	Metadata  labels.Labels // structured metadata
}

// stage is one compiled pipeline step. Returning false drops the entry.
type stage interface {
	process(e *Entry) bool
}

type lineFilterStage struct{ f LineFilter }

func (s lineFilterStage) process(e *Entry) bool { return s.f.Match(e.Line) }

// Pipeline is a compiled log pipeline.
type Pipeline struct {
	stages []stage
	// filter is the conjunction of all stages while every stage is a line
	// filter, so that pure filtering runs without per-entry state.
	filter LineFilter
}

// New compiles the stages of a log query, typically
// (*logql.LogSelectorExpr).Stages.
func New(stages []logql.Stage) (*Pipeline, error) {
	p := &Pipeline{}
	var filters []LineFilter
	for _, st := range stages {
		switch s := st.(type) {
		case *logql.LineFilter:
			f, err := NewLineFilter(s)
			if err != nil {
				return nil, fmt.Errorf("compile %s: %w", s, err)
			}
			p.stages = append(p.stages, lineFilterStage{f})
			filters = append(filters, f)
		default:
			return nil, fmt.Errorf("unsupported pipeline stage %q (coming with full LogQL)", truncate(st.String(), 80))
		}
	}
	p.filter = allOf(filters)
	return p, nil
}

// Process runs the pipeline on e and reports whether the entry is kept.
func (p *Pipeline) Process(e *Entry) bool {
	for _, s := range p.stages {
		if !s.process(e) {
			return false
		}
	}
	return true
}

// LineFilterOnly reports whether every stage is a line filter, in which
// case MatchLine decides on the line alone.
func (p *Pipeline) LineFilterOnly() bool { return p.filter != nil }

// MatchLine reports whether a line passes a pipeline made only of line
// filters (see LineFilterOnly). An empty pipeline keeps every line.
func (p *Pipeline) MatchLine(line []byte) bool { return p.filter.Match(line) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
