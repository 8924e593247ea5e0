package pipeline

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// SampleExtractor turns the entries of a range aggregation into samples:
// 1 per entry for count_over_time, rate and absent_over_time, the line's
// length after the pipeline for bytes_over_time and bytes_rate, and the
// unwrapped label otherwise. It is immutable and safe for concurrent use.
type SampleExtractor struct {
	p  *Pipeline
	op logql.RangeOp

	unwrap *unwrapSpec

	mode     groupMode
	by       []reqName       // sorted, for groupBy
	without  map[string]bool // for groupWithout and groupAll (unwrapped label)
	noLabels bool

	countOnly bool
	// keyed: the stages are line filters and then one pattern or regexp
	// parser, so an entry's series depends only on the line's wanted
	// captures and its structured metadata, and extractors remember the
	// series of each such tuple (see seriesMemo).
	keyed bool
	// mdAll: any structured metadata may change a sample; otherwise only
	// labels named in mdNames can (MetadataNames).
	mdAll   bool
	mdNames []string
}

type groupMode uint8

const (
	groupAll     groupMode = iota // no grouping: every label
	groupBy                       // by (...)
	groupWithout                  // without (...)
)

type unwrapSpec struct {
	name string
	h    uint64
	conv func(string) (float64, error)
	post []labelFilter
}

// SampleOptions adjust an extractor to its enclosing expression.
type SampleOptions struct {
	// Grouping replaces the range aggregation's own by/without, for an
	// engine that pushes an enclosing aggregation's grouping down to the
	// scan (sum by (x) (count_over_time(...)) only needs x).
	Grouping *logql.Grouping
	// NoLabels: the caller discards the labels (sum(rate(...)) without
	// grouping). Samples then carry no labels, and parsers extract only
	// what the pipeline itself reads, so, as in Loki, a parser whose
	// labels nobody reads does not run and cannot fail.
	NoLabels bool
}

// NewSampleExtractor compiles the extraction of a range aggregation: its
// pipeline, unwrap (conversion and post filters) and grouping.
func NewSampleExtractor(r *logql.RangeAggregationExpr) (*SampleExtractor, error) {
	return NewSampleExtractorWith(r, SampleOptions{})
}

// NewSampleExtractorWith is NewSampleExtractor with options.
func NewSampleExtractorWith(r *logql.RangeAggregationExpr, opts SampleOptions) (*SampleExtractor, error) {
	if r == nil || r.Range == nil || r.Range.Selector == nil {
		return nil, fmt.Errorf("range aggregation without a log range")
	}
	u := r.Range.Unwrap
	switch r.Op {
	case logql.RangeCount, logql.RangeBytes, logql.RangeBytesRate:
		if u != nil {
			return nil, fmt.Errorf("%s does not take an unwrap expression", r.Op)
		}
	case logql.RangeRate, logql.RangeAbsent:
	default:
		if u == nil {
			return nil, fmt.Errorf("%s needs an unwrap expression such as | unwrap latency", r.Op)
		}
	}
	x := &SampleExtractor{op: r.Op, noLabels: opts.NoLabels}
	g := r.Grouping
	if opts.Grouping != nil {
		g = opts.Grouping
	}
	x.without = map[string]bool{}
	switch {
	case g == nil:
		x.mode = groupAll
	case g.Without:
		x.mode = groupWithout
		for _, n := range g.Labels {
			x.without[n] = true
		}
	default:
		x.mode = groupBy
		names := slices.Clone(g.Labels)
		slices.Sort(names)
		for _, n := range slices.Compact(names) {
			x.by = append(x.by, reqName{n, nameHash(n)})
		}
	}
	if u != nil {
		x.unwrap = &unwrapSpec{name: u.Label, h: nameHash(u.Label)}
		switch u.Conversion {
		case "":
			x.unwrap.conv = convertFloat
		case "duration", "duration_seconds":
			x.unwrap.conv = convertDuration
		case "bytes":
			x.unwrap.conv = convertBytes
		default:
			return nil, fmt.Errorf("unknown unwrap conversion %q", u.Conversion)
		}
		for _, pf := range u.PostFilters {
			f, err := compileLabelFilter(pf)
			if err != nil {
				return nil, fmt.Errorf("compile %s: %w", pf, err)
			}
			x.unwrap.post = append(x.unwrap.post, f)
		}
		// Loki drops the unwrapped label from the series unless a by
		// clause asks for it.
		if x.mode != groupBy {
			x.without[u.Label] = true
		}
	}
	h := x.hints(r)
	p, err := compileStages(r.Range.Selector.Stages, h)
	if err != nil {
		return nil, err
	}
	x.p = p
	x.keyed = u == nil && !x.noLabels && keyedStages(p.stages)
	// With line filters and at most a pattern or regexp parser, no stage
	// reads a label or can fail (a failure keeps every label), so a
	// metadata label reaches a series only through the grouping, under a
	// name the hints hold (which include the base of a wanted
	// name_extracted, for a capture renamed because metadata has its
	// name). Anything else may read every label.
	x.mdAll = true
	if u == nil && h != nil && h.req != nil && (keyedStages(p.stages) || lineFiltersOnly(p.stages)) {
		x.mdAll = false
		for _, n := range h.reqList {
			x.mdNames = append(x.mdNames, n.name)
		}
	}
	x.countOnly = len(r.Range.Selector.Stages) == 0 && u == nil &&
		(r.Op == logql.RangeCount || r.Op == logql.RangeRate || r.Op == logql.RangeAbsent)
	return x, nil
}

// hints works out which labels the query needs, when that is known.
func (x *SampleExtractor) hints(r *logql.RangeAggregationExpr) *hints {
	if !x.noLabels && x.mode != groupBy {
		return nil // every label may end up in a series
	}
	var req []string
	if !x.noLabels {
		for _, b := range x.by {
			req = append(req, b.name)
		}
	}
	if u := r.Range.Unwrap; u != nil {
		req = append(req, u.Label)
		for _, pf := range u.PostFilters {
			if f, err := compileLabelFilter(pf); err == nil {
				req = f.names(req)
			}
		}
	}
	for _, s := range r.Range.Selector.Stages {
		switch s := s.(type) {
		case *logql.LabelFilterStage:
			f, err := compileLabelFilter(s.Filter)
			if err != nil {
				return nil
			}
			req = f.names(req)
		case *logql.LineFormat:
			t, err := parseTemplate("line", s.Template)
			if err != nil {
				return nil
			}
			names, all := templateFields(t)
			if all {
				return nil
			}
			req = append(req, names...)
		case *logql.LabelFormat:
			for _, op := range s.Ops {
				if !op.Template {
					req = append(req, op.Src)
					continue
				}
				t, err := parseTemplate("label", op.Src)
				if err != nil {
					return nil
				}
				names, all := templateFields(t)
				if all {
					return nil
				}
				req = append(req, names...)
			}
		}
	}
	return newHints(req, x.noLabels)
}

// CountOnly reports whether every entry yields the value 1 with its
// stream's labels (see StreamSampleExtractor.StreamLabels): the scan can
// count entries without decompressing lines.
func (x *SampleExtractor) CountOnly() bool { return x.countOnly }

// NewWorker returns per-goroutine state, as (*Pipeline).NewWorker.
func (x *SampleExtractor) NewWorker() *Worker { return x.p.NewWorker() }

// ForStream returns the extractor for one stream with a Worker of its own.
func (x *SampleExtractor) ForStream(stream labels.Labels) *StreamSampleExtractor {
	return x.ForWorkerStream(x.NewWorker(), stream)
}

// ForWorkerStream returns the extractor for one stream using w, which must
// come from x.NewWorker.
func (x *SampleExtractor) ForWorkerStream(w *Worker, stream labels.Labels) *StreamSampleExtractor {
	sx := &StreamSampleExtractor{x: x, sp: w.ForStream(stream)}
	st := &w.st
	st.reset()
	w.bind(sx.sp.base)
	sx.stream = sx.grouped()
	switch {
	case x.keyed:
		n := len(w.insts) - 1
		sx.memo = &seriesMemo{filters: w.insts[:n], parser: w.insts[n].(keyedParser)}
	case x.unwrap == nil && x.p.filter != nil:
		// Line filters alone: the series of a kept entry is a function
		// of its metadata (none: the stream's).
		sx.memo = &seriesMemo{}
	}
	return sx
}

// MetadataNames tells a scan which structured metadata can change this
// extractor's samples: with all, any; otherwise only labels whose name is
// in names (none when names is empty). Entries handed to Process may then
// go without their other metadata (chunk.BlockBuffer.NeedMetadata).
func (x *SampleExtractor) MetadataNames() (names []string, all bool) { return x.mdNames, x.mdAll }

// lineFiltersOnly reports whether stages are line filters alone (or none).
func lineFiltersOnly(stages []stage) bool {
	for _, s := range stages {
		if _, ok := s.(lineFilterStage); !ok {
			return false
		}
	}
	return true
}

// keyedStages reports whether stages are zero or more line filters and
// then a pattern or regexp parser.
func keyedStages(stages []stage) bool {
	if len(stages) == 0 {
		return false
	}
	for _, s := range stages[:len(stages)-1] {
		if _, ok := s.(lineFilterStage); !ok {
			return false
		}
	}
	switch stages[len(stages)-1].(type) {
	case *patternStage, *regexpStage:
		return true
	}
	return false
}

// keyedParser is a parser instance whose labels on a line are decided by
// a few byte ranges of it: groupKey appends those (with whatever else
// decides the labels, such as whether the line matched at all), so that
// equal keys mean equal labels.
type keyedParser interface {
	stageInstance
	groupKey(dst, line []byte) []byte
}

// seriesMemo remembers the series of each tuple of structured metadata
// and captured values, for extractors whose series is a function of that
// tuple alone (keyed, or line filters only): most lines then cost a match
// and a comparison with the previous line's tuple, instead of setting
// labels, grouping and looking the set up. The metadata is part of the
// key because a grouping label may come from it, and a capture that
// collides with a metadata name is renamed; servers that detect levels
// give nearly every entry a detected_level, so leaving such entries to
// the full path would leave the memo nearly unused.
type seriesMemo struct {
	filters []stageInstance
	parser  keyedParser // nil for line filters only
	key     []byte
	last    []byte
	lastRes *LabelsResult
	seen    map[string]*LabelsResult
}

// maxMemo bounds the tuples remembered per stream and goroutine; a
// grouping by a high-cardinality capture (a path, an address) stops
// adding past it and takes the full path for new tuples.
const maxMemo = 4096

// StreamSampleExtractor extracts the samples of one stream.
type StreamSampleExtractor struct {
	x      *SampleExtractor
	sp     *StreamPipeline
	stream *LabelsResult // the series of entries the pipeline leaves alone
	cache  resultCache
	memo   *seriesMemo // nil unless the extractor is keyed
}

// StreamLabels is the series of every entry when CountOnly.
func (sx *StreamSampleExtractor) StreamLabels() *LabelsResult { return sx.stream }

// Process extracts the sample of one entry: its value, its series and
// whether the entry yields a sample at all. A series whose Err is set
// means a stage failed on an entry that no label filter removed; Loki
// fails such a query (see PipelineError).
func (sx *StreamSampleExtractor) Process(ts int64, line []byte, metadata labels.Labels) (float64, *LabelsResult, bool) {
	x := sx.x
	w := sx.sp.w
	if x.unwrap == nil && x.p.filter != nil {
		if !x.p.filter.Match(line) {
			return 0, nil, false
		}
		if len(metadata) == 0 {
			return x.lineValue(line), sx.stream, true
		}
		if m := sx.memo; m != nil {
			return sx.remember(m, ts, line, metadata)
		}
	}
	if m := sx.memo; m != nil && m.parser != nil {
		for _, f := range m.filters {
			if _, ok := f.process(nil, ts, line); !ok {
				return 0, nil, false
			}
		}
		return sx.remember(m, ts, line, metadata)
	}
	out, ok := sx.sp.run(ts, line, metadata)
	if !ok {
		return 0, nil, false
	}
	st := &w.st
	v := x.lineValue(out)
	if u := x.unwrap; u != nil {
		s, _ := st.get(u.name, u.h)
		f, err := u.conv(s)
		if err != nil {
			st.setErr(ErrSampleExtraction, err.Error())
			f = 0
		}
		v = f
		for _, pf := range u.post {
			if !pf.match(st) {
				return 0, nil, false
			}
		}
	}
	return v, sx.grouped(), true
}

// remember returns the series of an entry that passed the line filters,
// from the memo when its tuple was seen before.
func (sx *StreamSampleExtractor) remember(m *seriesMemo, ts int64, line []byte, metadata labels.Labels) (float64, *LabelsResult, bool) {
	// The metadata goes first, with its count and lengths, so that the
	// key parses one way only whatever the captures hold.
	m.key = binary.AppendUvarint(m.key[:0], uint64(len(metadata)))
	for _, l := range metadata {
		m.key = binary.AppendUvarint(m.key, uint64(len(l.Name)))
		m.key = append(m.key, l.Name...)
		m.key = binary.AppendUvarint(m.key, uint64(len(l.Value)))
		m.key = append(m.key, l.Value...)
	}
	if m.parser != nil {
		m.key = m.parser.groupKey(m.key, line)
	}
	if m.lastRes != nil && string(m.key) == string(m.last) {
		return sx.x.lineValue(line), m.lastRes, true
	}
	r := m.seen[string(m.key)]
	if r == nil {
		// The full path, whose result is shared: remembering the pointer
		// keeps the series the same as without the memo.
		if _, ok := sx.sp.run(ts, line, metadata); !ok {
			return 0, nil, false
		}
		r = sx.grouped()
		if m.seen == nil {
			m.seen = make(map[string]*LabelsResult)
		}
		if len(m.seen) < maxMemo {
			m.seen[string(m.key)] = r
		}
	}
	m.last = append(m.last[:0], m.key...)
	m.lastRes = r
	return sx.x.lineValue(line), r, true
}

func (x *SampleExtractor) lineValue(line []byte) float64 {
	switch x.op {
	case logql.RangeBytes, logql.RangeBytesRate:
		return float64(len(line))
	}
	return 1
}

// emptyResult is the series of samples whose labels the caller drops.
var emptyResult = &LabelsResult{Hash: labels.Labels(nil).Hash()}

// grouped returns the series of the entry in the worker's state.
func (sx *StreamSampleExtractor) grouped() *LabelsResult {
	x := sx.x
	w := sx.sp.w
	st := &w.st
	if st.err != "" {
		// Grouping would hide the error: keep every label, as Loki does.
		merged, cats := st.build()
		return cachedResult(&sx.cache, &w.d, merged, cats)
	}
	if x.noLabels {
		return emptyResult
	}
	if sx.stream != nil && !st.changed() {
		return sx.stream
	}
	var merged []labels.Label
	var cats []uint8
	switch x.mode {
	case groupBy:
		merged, cats = st.merged[:0], st.mcats[:0]
		for _, b := range x.by {
			if v, cat, ok := st.getWithCat(b.name, b.h); ok {
				merged = append(merged, labels.Label{Name: b.name, Value: v})
				cats = append(cats, cat)
			}
		}
		st.merged, st.mcats = merged, cats
	default:
		merged, cats = st.build()
		if len(x.without) > 0 {
			n := 0
			for i, l := range merged {
				if !x.without[l.Name] {
					merged[n], cats[n] = l, cats[i]
					n++
				}
			}
			merged, cats = merged[:n], cats[:n]
		}
	}
	return cachedResult(&sx.cache, &w.d, merged, cats)
}

// PipelineError is the error of a metric query whose samples carry
// __error__: Loki refuses to aggregate them silently.
type PipelineError struct {
	Err    string        // the __error__ value
	Series labels.Labels // the series that carried it
}

// NewPipelineError describes the error of a series with Err set.
func NewPipelineError(r *LabelsResult) *PipelineError {
	return &PipelineError{Err: r.Err, Series: r.Labels}
}

func (e *PipelineError) Error() string {
	return fmt.Sprintf("pipeline error: '%s' for series: '%s'. "+
		"Use a label filter to intentionally skip this error (e.g. | __error__!=\"%s\"); "+
		"to skip all potential errors, match empty errors (e.g. | __error__=\"\"), "+
		"which also works after unwrap (e.g. | unwrap latency | __error__=\"\")",
		e.Err, e.Series, e.Err)
}
