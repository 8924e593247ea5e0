// Package pipeline runs LogQL log pipelines on entries and extracts the
// samples of metric queries: line filters (|= != |~ !~ |> !>, ip()),
// parsers (json, logfmt, regexp, pattern, unpack), label filters,
// line_format, label_format, drop, keep and decolorize, and unwrap with
// range-aggregation grouping. It follows Loki's documented semantics,
// including __error__ and __error_details__.
//
// New compiles a pipeline once per query; the result is immutable and safe
// for concurrent use. Each scan goroutine takes a Worker (mutable caches
// and buffers, not safe for concurrent use) and a StreamPipeline per stream
// from it, because label work depends on the stream's labels and many
// entries of a stream end up with the same labels.
//
// Pipelines made only of line filters also answer MatchLine, which needs
// no per-goroutine state at all.
package pipeline

import (
	"fmt"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// Entry is one log entry as it moves through the pipeline.
type Entry struct {
	Timestamp int64 // Unix nanoseconds
	Line      []byte
	Metadata  labels.Labels // structured metadata
}

// stage is one compiled, immutable pipeline step. instance returns the
// step's per-worker form, which may hold caches and buffers.
type stage interface {
	instance() stageInstance
}

// stageInstance runs a step on the entry in st. It returns the line for
// the next step (the same or a new one) and false to drop the entry. A
// returned line must stay unchanged until the entry is finished.
type stageInstance interface {
	process(st *entryState, ts int64, line []byte) ([]byte, bool)
}

type lineFilterStage struct{ f LineFilter }

func (s lineFilterStage) instance() stageInstance { return s }
func (s lineFilterStage) process(_ *entryState, _ int64, line []byte) ([]byte, bool) {
	return line, s.f.Match(line)
}

// Pipeline is a compiled log pipeline.
type Pipeline struct {
	stages []stage
	// filter is the conjunction of all stages while every stage is a line
	// filter, so that pure filtering runs without per-entry state.
	filter LineFilter
	// pool serves MatchLine on pipelines that need state.
	pool sync.Pool
}

// New compiles the stages of a log query, typically
// (*logql.LogSelectorExpr).Stages. Errors (bad templates, regexps,
// duplicate names) are the user's and read as such.
func New(stages []logql.Stage) (*Pipeline, error) {
	return compileStages(stages, nil)
}

func compileStages(stages []logql.Stage, h *hints) (*Pipeline, error) {
	p := &Pipeline{}
	var filters []LineFilter
	onlyFilters := true
	for _, st := range stages {
		var (
			s   stage
			err error
		)
		switch x := st.(type) {
		case *logql.LineFilter:
			var f LineFilter
			f, err = NewLineFilter(x)
			if err == nil {
				s = lineFilterStage{f}
				filters = append(filters, f)
			}
		case *logql.JSONParser:
			s, err = newJSONStage(x, h)
			onlyFilters = false
		case *logql.LogfmtParser:
			s, err = newLogfmtStage(x, h)
			onlyFilters = false
		case *logql.RegexpParser:
			s, err = newRegexpStage(x, h)
			onlyFilters = false
		case *logql.PatternParser:
			s, err = newPatternStage(x, h)
			onlyFilters = false
		case *logql.UnpackParser:
			s = &unpackStage{hints: h}
			onlyFilters = false
		case *logql.LabelFilterStage:
			var f labelFilter
			f, err = compileLabelFilter(x.Filter)
			if err == nil {
				s = labelFilterStage{f}
			}
			onlyFilters = false
		case *logql.LineFormat:
			s, err = newLineFormatStage(x)
			onlyFilters = false
		case *logql.LabelFormat:
			s, err = newLabelFormatStage(x)
			onlyFilters = false
		case *logql.DropLabels:
			s = newDropStage(x)
			onlyFilters = false
		case *logql.KeepLabels:
			s = newKeepStage(x)
			onlyFilters = false
		case *logql.Decolorize:
			s = decolorizeStage{}
			onlyFilters = false
		default:
			return nil, fmt.Errorf("unsupported pipeline stage %q", truncate(st.String(), 80))
		}
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", truncate(st.String(), 200), err)
		}
		p.stages = append(p.stages, s)
	}
	if onlyFilters {
		p.filter = allOf(filters)
	}
	return p, nil
}

// LineFilterOnly reports whether every stage is a line filter, in which
// case MatchLine decides on the line alone.
func (p *Pipeline) LineFilterOnly() bool { return p.filter != nil }

// MatchLine reports whether a line passes a pipeline made only of line
// filters (see LineFilterOnly). An empty pipeline keeps every line.
//
// On any other pipeline it runs every stage on the line as if the stream
// had no labels, which is right only when no stage reads stream labels; it
// is safe for concurrent use but slow. Callers that need labels or the
// rewritten line use a Worker.
func (p *Pipeline) MatchLine(line []byte) bool {
	if p.filter != nil {
		return p.filter.Match(line)
	}
	sp, _ := p.pool.Get().(*StreamPipeline)
	if sp == nil {
		sp = p.ForStream(nil)
	}
	_, _, keep := sp.Process(0, line, nil)
	p.pool.Put(sp)
	return keep
}

// Process runs the pipeline on e with no stream labels and reports whether
// the entry is kept; e.Line becomes the line after the pipeline. It is a
// convenience for tests and one-off use: scans use a Worker.
func (p *Pipeline) Process(e *Entry) bool {
	if p.filter != nil {
		return p.filter.Match(e.Line)
	}
	out, _, ok := p.ForStream(nil).Process(e.Timestamp, e.Line, e.Metadata)
	if ok {
		e.Line = out
	}
	return ok
}

// Worker holds the mutable state one goroutine needs to run a pipeline:
// per-stage caches (label names by key) and buffers. StreamPipelines from
// the same Worker share it and must be used from one goroutine, one entry
// at a time; they may be interleaved freely.
type Worker struct {
	p     *Pipeline
	insts []stageInstance
	st    entryState
	d     xxhash.Digest
	// cur is the stream whose labels st is bound to.
	cur *streamBase
}

// NewWorker returns the per-goroutine state for running p.
func (p *Pipeline) NewWorker() *Worker {
	w := &Worker{p: p, insts: make([]stageInstance, len(p.stages))}
	for i, s := range p.stages {
		w.insts[i] = s.instance()
	}
	w.st.slots = make([]slot, 64)
	return w
}

// ForStream returns a processor for the entries of one stream, with a
// Worker of its own. Prefer (*Worker).ForStream when a goroutine handles
// many streams.
func (p *Pipeline) ForStream(stream labels.Labels) *StreamPipeline {
	return p.NewWorker().ForStream(stream)
}

// streamBase is the precomputed form of a stream's labels.
type streamBase struct {
	labels   labels.Labels
	hashes   []uint64
	mask     uint64
	gone     []bool
	result   *LabelsResult // the labels of entries the pipeline leaves alone
	resultsC resultCache
}

func newStreamBase(stream labels.Labels, d *xxhash.Digest) *streamBase {
	b := &streamBase{labels: stream, hashes: make([]uint64, len(stream)), gone: make([]bool, len(stream))}
	cats := make([]uint8, len(stream))
	for i, l := range stream {
		h := nameHash(l.Name)
		b.hashes[i] = h
		b.mask |= 1 << (h & 63)
	}
	hash, _ := hashLabels(d, stream, cats)
	b.result = &LabelsResult{Stream: stream, Labels: stream, Hash: hash, cats: cats}
	return b
}

// bind points st at the stream's labels; st must have been reset.
func (w *Worker) bind(b *streamBase) {
	if w.cur == b {
		return
	}
	st := &w.st
	st.base, st.baseH, st.baseMask, st.baseGone = b.labels, b.hashes, b.mask, b.gone
	w.cur = b
}

// StreamPipeline runs a pipeline on the entries of one stream.
type StreamPipeline struct {
	w    *Worker
	base *streamBase
}

// ForStream returns a processor for the entries of one stream. stream must
// be sorted (labels.Labels form) and must not change while in use.
func (w *Worker) ForStream(stream labels.Labels) *StreamPipeline {
	return &StreamPipeline{w: w, base: newStreamBase(stream, &w.d)}
}

// Process runs the pipeline on one entry and returns the resulting line,
// its labels and whether the entry is kept. The line may point into the
// input or into buffers reused by the next call; copy it to keep it. The
// labels are shared and read-only.
func (sp *StreamPipeline) Process(ts int64, line []byte, metadata labels.Labels) ([]byte, *LabelsResult, bool) {
	w := sp.w
	if w.p.filter != nil && len(metadata) == 0 {
		if !w.p.filter.Match(line) {
			return nil, nil, false
		}
		return line, sp.base.result, true
	}
	line, ok := sp.run(ts, line, metadata)
	if !ok {
		return nil, nil, false
	}
	return line, sp.result(), true
}

// run executes the stages, leaving the labels in w.st.
func (sp *StreamPipeline) run(ts int64, line []byte, metadata labels.Labels) ([]byte, bool) {
	w := sp.w
	st := &w.st
	st.reset()
	w.bind(sp.base)
	if len(metadata) > 0 {
		st.addMetadata(metadata)
	}
	for _, in := range w.insts {
		var ok bool
		line, ok = in.process(st, ts, line)
		if !ok {
			return nil, false
		}
	}
	return line, true
}

// result turns the labels of the entry just processed into a shared,
// cached result.
func (sp *StreamPipeline) result() *LabelsResult {
	st := &sp.w.st
	if !st.changed() {
		return sp.base.result
	}
	merged, cats := st.build()
	return cachedResult(&sp.base.resultsC, &sp.w.d, merged, cats)
}

// cachedResult returns the stream's result for a label set. Every entry
// of a metric query comes here, so the lookup key is a cheap hash (the
// lookup compares the labels anyway); the labels' real hash is computed
// only for a new set.
func cachedResult(c *resultCache, d *xxhash.Digest, merged []labels.Label, cats []uint8) *LabelsResult {
	// Neighbouring lines mostly end with the same labels (most requests
	// of an access log answer 200): comparing with the last result is
	// cheaper than hashing.
	if r := c.last; r != nil && sameLabels(r, merged, cats) {
		return r
	}
	key := lookupKey(merged, cats)
	r := c.lookup(key, merged, cats)
	if r == nil {
		hash, _ := hashLabels(d, merged, cats)
		r = newResult(merged, cats, hash)
		c.add(key, r)
	}
	c.last = r
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
