package lokiapi

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
)

// Statistics and volumes come from the index alone: chunk references and
// the heads' entry sizes, never a decompressed chunk. A stored chunk that
// overlaps the range only in part counts with the share of its entries
// and bytes that its time span has inside the range, as if its data were
// spread evenly over that span; heads count exactly.

// overlapFraction is the share of the span [minT, maxT] inside
// [from, through).
func overlapFraction(minT, maxT, from, through int64) float64 {
	lo, hi := max(minT, from), min(maxT+1, through)
	if hi <= lo {
		return 0
	}
	if minT >= from && maxT < through {
		return 1
	}
	return float64(hi-lo) / float64(maxT-minT+1)
}

// selectors reads the `query` of an index endpoint: a stream selector, or
// any LogQL query, whose stream selectors are then used.
func selectors(q string) ([][]*labels.Matcher, error) {
	if strings.TrimSpace(q) == "" {
		return nil, badParam("query parameter is required")
	}
	if ms, err := logql.ParseMatchers(q); err == nil {
		return [][]*labels.Matcher{ms}, nil
	}
	expr, err := logql.ParseExpr(q)
	if err != nil {
		return nil, err
	}
	var out [][]*labels.Matcher
	for _, s := range logql.LogSelectors(expr) {
		out = append(out, s.Matchers)
	}
	return out, nil
}

// visitUnique calls fn once per stream matched by any of the selectors.
func (a *API) visitUnique(tenantID string, sels [][]*labels.Matcher, from, through int64, fn func(*store.StreamStats)) {
	var seen map[uint64]bool
	if len(sels) > 1 {
		seen = map[uint64]bool{}
	}
	for _, ms := range sels {
		a.Store.VisitStats(tenantID, ms, from, through, func(ss *store.StreamStats) {
			if seen != nil {
				h := ss.Labels.Hash()
				if seen[h] {
					return
				}
				seen[h] = true
			}
			fn(ss)
		})
	}
}

// indexStats serves /loki/api/v1/index/stats: the streams, chunks, entries
// and line bytes a selector covers in a range.
func (a *API) indexStats(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	rp, err := parseRange(r, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sels, err := selectors(r.Form.Get("query"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	from, through := rp.start.UnixNano(), rp.end.UnixNano()+1
	var streams, chunks int64
	var entries, bytes float64
	a.visitUnique(c.tenant, sels, from, through, func(ss *store.StreamStats) {
		streams++
		chunks += int64(len(ss.Chunks) + ss.HeadChunks)
		for _, ch := range ss.Chunks {
			f := overlapFraction(ch.MinTime, ch.MaxTime, from, through)
			entries += f * float64(ch.Entries)
			bytes += f * float64(ch.RawBytes)
		}
		entries += float64(ss.HeadEntries)
		bytes += float64(ss.HeadBytes)
	})
	writeJSON(w, map[string]int64{
		"streams": streams,
		"chunks":  chunks,
		"entries": int64(math.Round(entries)),
		"bytes":   int64(math.Round(bytes)),
	})
}

// estimateBytes is the index's estimate of the line bytes a query reads,
// over the window each of its selectors scans.
func (a *API) estimateBytes(tenantID string, expr logql.Expr, p query.Params) int64 {
	type window struct {
		ms            []*labels.Matcher
		from, through int64
	}
	var ws []window
	logql.Walk(expr, func(n logql.Node) bool {
		switch n := n.(type) {
		case *logql.LogRangeExpr:
			back := n.Interval + n.Offset
			ws = append(ws, window{n.Selector.Matchers, p.Start.Add(-back).UnixNano(), p.End.Add(-n.Offset).UnixNano() + 1})
			return false
		case *logql.LogSelectorExpr:
			ws = append(ws, window{n.Matchers, p.Start.UnixNano(), p.End.UnixNano()})
			return false
		}
		return true
	})
	var total float64
	for _, w := range ws {
		a.Store.VisitStats(tenantID, w.ms, w.from, w.through, func(ss *store.StreamStats) {
			for _, ch := range ss.Chunks {
				total += overlapFraction(ch.MinTime, ch.MaxTime, w.from, w.through) * float64(ch.RawBytes)
			}
			total += float64(ss.HeadBytes)
		})
	}
	return int64(total)
}

// volumeParams are the parameters of index/volume and volume_range.
type volumeParams struct {
	sels          [][]*labels.Matcher
	from, through int64
	limit         int
	targets       []string
	byLabels      bool
}

// Loki's defaults for volume queries.
const defaultVolumeLimit = 100

func (a *API) parseVolume(r *http.Request, c *call) (volumeParams, rangeParams, error) {
	rp, err := parseRange(r, a.now())
	if err != nil {
		return volumeParams{}, rp, err
	}
	if err := c.limits.checkLength(rp.end.Sub(rp.start)); err != nil {
		return volumeParams{}, rp, err
	}
	vp := volumeParams{from: rp.start.UnixNano(), through: rp.end.UnixNano() + 1}
	if vp.sels, err = selectors(r.Form.Get("query")); err != nil {
		return vp, rp, err
	}
	if vp.limit, err = parseLimit(r, defaultVolumeLimit, 0); err != nil {
		return vp, rp, err
	}
	if m := c.limits.VolumeMaxSeries; m > 0 && vp.limit > m {
		vp.limit = m // clamped, not refused: Logs Drilldown asks for 5000
	}
	for _, t := range strings.Split(r.Form.Get("targetLabels"), ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !labels.ValidName(t) {
			return vp, rp, badParam("invalid label name %q in targetLabels", t)
		}
		vp.targets = append(vp.targets, t)
	}
	switch r.Form.Get("aggregateBy") {
	case "", "series":
	case "labels":
		vp.byLabels = true
	default:
		return vp, rp, badParam("invalid aggregateBy %q: use series or labels", r.Form.Get("aggregateBy"))
	}
	return vp, rp, nil
}

// volumeKeys returns the label sets a stream's volume counts towards.
// By series it is one set: the target labels the stream has, or without
// targets the labels the selector names. By labels it is one set per
// label name, {name=""}, limited to the targets when there are some.
func (vp *volumeParams) volumeKeys(ls labels.Labels, ms []*labels.Matcher, dst []labels.Labels) []labels.Labels {
	dst = dst[:0]
	if vp.byLabels {
		for _, l := range ls {
			if len(vp.targets) == 0 || slices.Contains(vp.targets, l.Name) {
				dst = append(dst, labels.Labels{{Name: l.Name}})
			}
		}
		return dst
	}
	var key labels.Labels
	if len(vp.targets) > 0 {
		for _, l := range ls {
			if slices.Contains(vp.targets, l.Name) {
				key = append(key, l)
			}
		}
	} else {
		for _, l := range ls {
			if slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return m.Name == l.Name }) {
				key = append(key, l)
			}
		}
	}
	if len(key) == 0 {
		return dst
	}
	return append(dst, key)
}

// volumeSeries accumulates the bytes of one result series.
type volumeSeries struct {
	labels labels.Labels
	total  float64
	steps  []float64 // volume_range only
}

// collectVolume sums bytes per key; with steps > 0 also per step, step k
// covering [from+k*step, from+(k+1)*step).
func (a *API) collectVolume(tenantID string, vp *volumeParams, step int64, nSteps int) []*volumeSeries {
	acc := map[string]*volumeSeries{}
	var keys []labels.Labels
	var seen map[uint64]bool
	if len(vp.sels) > 1 {
		seen = map[uint64]bool{}
	}
	for _, ms := range vp.sels {
		a.Store.VisitStats(tenantID, ms, vp.from, vp.through, func(ss *store.StreamStats) {
			if seen != nil {
				h := ss.Labels.Hash()
				if seen[h] {
					return
				}
				seen[h] = true
			}
			keys = vp.volumeKeys(ss.Labels, ms, keys)
			if len(keys) == 0 {
				return
			}
			var stepBytes []float64
			if nSteps > 0 {
				stepBytes = make([]float64, nSteps)
			}
			total := 0.0
			for _, ch := range ss.Chunks {
				total += overlapFraction(ch.MinTime, ch.MaxTime, vp.from, vp.through) * float64(ch.RawBytes)
				if nSteps > 0 {
					spread(stepBytes, ch.MinTime, ch.MaxTime, float64(ch.RawBytes), vp.from, vp.through, step)
				}
			}
			total += float64(ss.HeadBytes)
			if nSteps > 0 && ss.HeadEntries > 0 {
				ss.EachHeadEntry(func(ts int64, size int) {
					stepBytes[(ts-vp.from)/step] += float64(size)
				})
			}
			for _, k := range keys {
				id := k.String()
				vs := acc[id]
				if vs == nil {
					vs = &volumeSeries{labels: k.Copy()}
					if nSteps > 0 {
						vs.steps = make([]float64, nSteps)
					}
					acc[id] = vs
				}
				vs.total += total
				for i, b := range stepBytes {
					vs.steps[i] += b
				}
			}
		})
	}
	out := make([]*volumeSeries, 0, len(acc))
	for _, vs := range acc {
		if vs.total > 0 {
			out = append(out, vs)
		}
	}
	slices.SortFunc(out, func(x, y *volumeSeries) int {
		if c := cmp.Compare(y.total, x.total); c != 0 {
			return c
		}
		return labels.Compare(x.labels, y.labels)
	})
	if len(out) > vp.limit {
		out = out[:vp.limit]
	}
	return out
}

// spread adds the bytes of a chunk spanning [minT, maxT] to the steps,
// in proportion to the time each step shares with the chunk.
func spread(steps []float64, minT, maxT int64, bytes float64, from, through, step int64) {
	lo, hi := max(minT, from), min(maxT+1, through)
	if hi <= lo {
		return
	}
	span := float64(maxT - minT + 1)
	for k := (lo - from) / step; k < int64(len(steps)); k++ {
		s := from + k*step
		e := min(s+step, through)
		if s >= hi {
			break
		}
		if ov := min(e, hi) - max(s, lo); ov > 0 {
			steps[k] += bytes * float64(ov) / span
		}
	}
}

// volumeInstant serves /loki/api/v1/index/volume: bytes per label set over
// the range, as a vector stamped at its end.
func (a *API) volumeInstant(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	vp, rp, err := a.parseVolume(r, &c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	series := a.collectVolume(c.tenant, &vp, 0, 0)
	t := rp.end.UnixMilli()
	vec := make([]query.Sample, len(series))
	for i, vs := range series {
		vec[i] = query.Sample{Labels: vs.labels, T: t, V: math.Round(vs.total)}
	}
	writeQueryResult(w, r, &query.Result{Type: query.ResultVector, Vector: vec})
}

// volumeRange serves /loki/api/v1/index/volume_range: bytes per label set
// per step, as a matrix.
func (a *API) volumeRange(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	vp, rp, err := a.parseVolume(r, &c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	step := defaultStep(rp.start, rp.end)
	if v := r.Form.Get("step"); v != "" {
		if step, err = parseStep(v); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	n := (vp.through-vp.from-1)/int64(step) + 1
	if n > maxPoints {
		a.fail(w, r, badParam("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
		return
	}
	series := a.collectVolume(c.tenant, &vp, int64(step), int(n))
	mat := make([]query.Series, 0, len(series))
	for _, vs := range series {
		s := query.Series{Labels: vs.labels}
		for k, b := range vs.steps {
			if b > 0 {
				s.Points = append(s.Points, query.Point{T: (vp.from + int64(k)*int64(step)) / 1e6, V: math.Round(b)})
			}
		}
		mat = append(mat, s)
	}
	writeQueryResult(w, r, &query.Result{Type: query.ResultMatrix, Matrix: mat})
}

// maxPoints is Loki's bound on the steps of a range query.
const maxPoints = 11000

// defaultStep is Loki's step when a range query gives none: the range
// divided by 250, in whole seconds, at least one second.
func defaultStep(start, end time.Time) time.Duration {
	return time.Duration(max(math.Floor(end.Sub(start).Seconds()/250), 1)) * time.Second
}

// writeJSON writes a body that is not wrapped in Loki's status/data.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = jsonEncode(w, v)
}
