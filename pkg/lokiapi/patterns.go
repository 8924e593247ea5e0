package lokiapi

import (
	"cmp"
	"context"
	"math"
	"net/http"
	"slices"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/levels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/patterns"
	"github.com/logsift/logsift/pkg/pipeline"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
)

// Pattern mining bounds.
const (
	// patternLineBudget is how many lines one request mines at most. A
	// range with more is sampled: whole chunks spread evenly over time are
	// read and the counts of each step are scaled by the step's share of
	// lines read, estimated from the chunk references.
	patternLineBudget = 100_000
	// maxPatternsOut bounds the patterns returned, the most frequent first.
	maxPatternsOut = 1000
)

// patternResult is one element of the patterns response: a pattern, the
// level of its lines and its count per step as [unix seconds, count].
type patternResult struct {
	Pattern string       `json:"pattern"`
	Level   string       `json:"level,omitempty"`
	Samples [][2]float64 `json:"samples"`
	total   float64
}

// patterns serves /loki/api/v1/patterns: the patterns of the lines of a
// log query over a range, mined on request (Loki mines them at ingest in
// its pattern ingester; logsift has no such component).
func (a *API) patterns(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	rp, err := parseRange(r, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := c.limits.checkLength(rp.end.Sub(rp.start)); err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.Form.Get("query")
	if q == "" {
		a.fail(w, r, badParam("query parameter is required"))
		return
	}
	sel, err := logql.ParseLogSelector(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var pl *pipeline.Pipeline
	if len(sel.Stages) > 0 {
		if pl, err = pipeline.New(sel.Stages); err != nil {
			a.fail(w, r, &query.Error{Msg: err.Error()})
			return
		}
	}
	step := defaultStep(rp.start, rp.end)
	if v := r.Form.Get("step"); v != "" {
		if step, err = parseStep(v); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	from, through := rp.start.UnixNano(), rp.end.UnixNano()+1
	if (through-from)/int64(step) > maxPoints {
		a.fail(w, r, badParam("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
		return
	}
	ctx, cancel := c.withTimeout(r.Context())
	defer cancel()
	m := &patternMiner{
		api: a, pl: pl, from: from, through: through, step: int64(step), budget: patternLineBudget,
		miner:  patterns.New(patterns.Options{}),
		counts: map[patternKey]map[int64]float64{},
	}
	res, err := m.run(ctx, c.tenant, sel.Matchers)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeData(w, res)
}

type patternKey struct {
	cluster int
	level   string
}

// patternMiner mines the patterns of one request.
type patternMiner struct {
	api           *API
	pl            *pipeline.Pipeline
	from, through int64
	step          int64
	budget        float64 // lines to read at most, about
	miner         *patterns.Miner
	// counts are lines per (cluster, level) per step index.
	counts map[patternKey]map[int64]float64
	// total and read are, per step index, the lines in range (estimated
	// for chunks not read) and the lines read.
	total, read map[int64]float64
}

// source is a stored chunk or a stream's head entries.
type patternSource struct {
	stream  int
	ref     *store.ChunkRef
	head    []chunk.Entry
	minT    int64
	entries float64 // in range, estimated for chunks
}

func (m *patternMiner) bucket(ts int64) int64 { return ts/m.step - m.from/m.step }

func (m *patternMiner) run(ctx context.Context, tenantID string, ms []*labels.Matcher) ([]patternResult, error) {
	streams := m.api.Store.Select(tenantID, ms, m.from, m.through)
	var srcs []patternSource
	var all float64
	for i := range streams {
		for j := range streams[i].Chunks {
			ref := &streams[i].Chunks[j]
			n := overlapFraction(ref.MinTime, ref.MaxTime, m.from, m.through) * float64(ref.Entries)
			srcs = append(srcs, patternSource{stream: i, ref: ref, minT: ref.MinTime, entries: n})
			all += n
		}
		if h := streams[i].Head; len(h) > 0 {
			srcs = append(srcs, patternSource{stream: i, head: h, minT: h[0].Timestamp, entries: float64(len(h))})
			all += float64(len(h))
		}
	}
	slices.SortFunc(srcs, func(x, y patternSource) int { return cmp.Compare(x.minT, y.minT) })

	// Systematic sampling: each source adds its share of the budget to a
	// credit, and is read when the credit covers at least half of it, so
	// the sources read spread evenly over time and add up to about the
	// budget.
	ratio := 1.0
	if all > m.budget {
		ratio = m.budget / all
	}
	m.total, m.read = map[int64]float64{}, map[int64]float64{}
	var worker *pipeline.Worker
	if m.pl != nil {
		worker = m.pl.NewWorker()
	}
	sps := map[int]*pipeline.StreamPipeline{}
	var buf []byte
	var bb chunk.BlockBuffer
	credit := 0.0
	for i := range srcs {
		s := &srcs[i]
		credit += s.entries * ratio
		if credit < s.entries/2 {
			m.countUnread(s) // its lines count towards the totals only
			continue
		}
		credit -= s.entries
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sd := &streams[s.stream]
		var sp *pipeline.StreamPipeline
		if worker != nil {
			if sp = sps[s.stream]; sp == nil {
				sp = worker.ForStream(sd.Labels)
				sps[s.stream] = sp
			}
		}
		if s.head != nil {
			for _, e := range s.head {
				m.add(sd.Labels, sp, e)
			}
			continue
		}
		c, b, err := m.api.Store.ReadChunk(*s.ref, buf)
		buf = b
		if err != nil {
			return nil, err
		}
		for k, bm := range c.Meta().Blocks {
			if bm.MaxTime < m.from || bm.MinTime >= m.through {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			es, err := c.ReadBlock(k, &bb)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if e.Timestamp >= m.from && e.Timestamp < m.through {
					m.add(sd.Labels, sp, e)
				}
			}
		}
	}
	return m.results(), nil
}

// countUnread adds the lines of a source not read to the totals of the
// steps: exactly for a head, spread over its span for a chunk.
func (m *patternMiner) countUnread(s *patternSource) {
	if s.head != nil {
		for _, e := range s.head {
			m.total[m.bucket(e.Timestamp)]++
		}
		return
	}
	lo, hi := max(s.ref.MinTime, m.from), min(s.ref.MaxTime+1, m.through)
	if hi <= lo {
		return
	}
	span := float64(s.ref.MaxTime - s.ref.MinTime + 1)
	for b := m.bucket(lo); ; b++ {
		bs := (m.from/m.step + b) * m.step
		be := bs + m.step
		if ov := min(be, hi) - max(bs, lo); ov > 0 {
			m.total[b] += float64(s.ref.Entries) * float64(ov) / span
		}
		if be >= hi {
			break
		}
	}
}

// add counts one line read.
func (m *patternMiner) add(stream labels.Labels, sp *pipeline.StreamPipeline, e chunk.Entry) {
	b := m.bucket(e.Timestamp)
	m.total[b]++
	m.read[b]++
	if sp != nil {
		if _, _, keep := sp.Process(e.Timestamp, e.Line, e.Metadata); !keep {
			return
		}
	}
	c := m.miner.Add(e.Line)
	if c == nil {
		return
	}
	level := e.Metadata.Get(levels.Label)
	if level == "" {
		level = levels.Detect(stream, e.Metadata, e.Line)
	}
	k := patternKey{c.ID, level}
	steps := m.counts[k]
	if steps == nil {
		steps = map[int64]float64{}
		m.counts[k] = steps
	}
	steps[b]++
}

// results turns the counts into the response: scaled per step where the
// range was sampled, merged where clusters ended with the same pattern,
// most frequent first.
func (m *patternMiner) results() []patternResult {
	clusters := m.miner.Clusters()
	type outKey struct{ pattern, level string }
	merged := map[outKey]map[int64]float64{}
	for k, steps := range m.counts {
		p := clusters[k.cluster].Pattern()
		if p == patterns.Placeholder || p == "" {
			continue // nothing to match on
		}
		ok := outKey{p, k.level}
		dst := merged[ok]
		if dst == nil {
			dst = map[int64]float64{}
			merged[ok] = dst
		}
		for b, n := range steps {
			dst[b] += n
		}
	}
	out := make([]patternResult, 0, len(merged))
	for k, steps := range merged {
		pr := patternResult{Pattern: k.pattern, Level: k.level}
		bs := make([]int64, 0, len(steps))
		for b := range steps {
			bs = append(bs, b)
		}
		slices.Sort(bs)
		for _, b := range bs {
			n := steps[b]
			if rd := m.read[b]; rd > 0 && m.total[b] > rd {
				n *= m.total[b] / rd
			}
			n = math.Round(n)
			if n < 1 {
				n = 1
			}
			ts := float64((m.from/m.step+b)*m.step) / 1e9
			pr.Samples = append(pr.Samples, [2]float64{ts, n})
			pr.total += n
		}
		out = append(out, pr)
	}
	slices.SortFunc(out, func(x, y patternResult) int {
		if c := cmp.Compare(y.total, x.total); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Pattern, y.Pattern); c != 0 {
			return c
		}
		return cmp.Compare(x.Level, y.Level)
	})
	if len(out) > maxPatternsOut {
		out = out[:maxPatternsOut]
	}
	return out
}
