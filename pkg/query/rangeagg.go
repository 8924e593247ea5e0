package query

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// accKind is what a range aggregation keeps per series and pane. Every
// function but quantile_over_time and rate_counter folds its samples into
// a small fixed-size accumulator as they stream past; those two keep the
// samples of each pane.
type accKind uint8

const (
	kindCount   accKind = iota // count_over_time, rate, absent_over_time
	kindSum                    // bytes_over_time, bytes_rate, sum_over_time, rate with unwrap
	kindAvg                    // avg_over_time
	kindMin                    // min_over_time
	kindMax                    // max_over_time
	kindStdvar                 // stdvar_over_time, stddev_over_time
	kindFirst                  // first_over_time
	kindLast                   // last_over_time
	kindSamples                // quantile_over_time, rate_counter
)

func kindOf(r *logql.RangeAggregationExpr) accKind {
	switch r.Op {
	case logql.RangeCount, logql.RangeAbsent:
		return kindCount
	case logql.RangeRate:
		if r.Range.Unwrap != nil {
			return kindSum
		}
		return kindCount
	case logql.RangeBytes, logql.RangeBytesRate, logql.RangeSum:
		return kindSum
	case logql.RangeAvg:
		return kindAvg
	case logql.RangeMin:
		return kindMin
	case logql.RangeMax:
		return kindMax
	case logql.RangeStdvar, logql.RangeStddev:
		return kindStdvar
	case logql.RangeFirst:
		return kindFirst
	case logql.RangeLast:
		return kindLast
	}
	return kindSamples
}

// paneAcc is the accumulator of one pane. n counts samples; a is the sum
// (sum, avg), the extreme (min, max), the mean (stdvar) or the value
// (first, last); b is the sum of squared deviations (stdvar); t is the
// timestamp of a (first, last).
type paneAcc struct {
	n, a, b float64
	t       int64
}

// add folds one sample in. first and last break timestamp ties by value
// (the smaller first, the larger last), here and in merge, so that the
// answer does not depend on which worker read which chunk.
func (c *paneAcc) add(k accKind, ts int64, v float64) {
	switch k {
	case kindSum, kindAvg:
		c.a += v
	case kindMin:
		if c.n == 0 || v < c.a || math.IsNaN(c.a) {
			c.a = v
		}
	case kindMax:
		if c.n == 0 || v > c.a || math.IsNaN(c.a) {
			c.a = v
		}
	case kindStdvar:
		// Welford's update, as Loki computes stdvar_over_time.
		d := v - c.a
		c.a += d / (c.n + 1)
		c.b += d * (v - c.a)
	case kindFirst:
		if c.n == 0 || ts < c.t || (ts == c.t && v < c.a) {
			c.a, c.t = v, ts
		}
	case kindLast:
		if c.n == 0 || ts > c.t || (ts == c.t && v > c.a) {
			c.a, c.t = v, ts
		}
	}
	c.n++
}

// merge folds o, the accumulator of other samples, into c.
func (c *paneAcc) merge(k accKind, o paneAcc) {
	if o.n == 0 {
		return
	}
	if c.n == 0 {
		*c = o
		return
	}
	switch k {
	case kindSum, kindAvg:
		c.a += o.a
	case kindMin:
		if o.a < c.a || math.IsNaN(c.a) {
			c.a = o.a
		}
	case kindMax:
		if o.a > c.a || math.IsNaN(c.a) {
			c.a = o.a
		}
	case kindStdvar:
		// Chan et al.'s pairwise combination of two Welford states.
		n := c.n + o.n
		d := o.a - c.a
		c.b += o.b + d*d*c.n*o.n/n
		c.a += d * o.n / n
	case kindFirst:
		if o.t < c.t || (o.t == c.t && o.a < c.a) {
			c.a, c.t = o.a, o.t
		}
	case kindLast:
		if o.t > c.t || (o.t == c.t && o.a > c.a) {
			c.a, c.t = o.a, o.t
		}
	}
	c.n += o.n
}

// tv is a kept sample.
type tv struct {
	t int64
	v float64
}

// pageBits sets the panes per page of a series' accumulators: pages are
// allocated on first use, so a series with samples in few steps costs
// little however long the query range is.
const (
	pageBits = 6
	pageSize = 1 << pageBits
)

// paged is a sparse array of per-pane values.
type paged[T any] struct {
	pages    map[int32][]T
	lastI    int32
	lastPage []T
}

// at returns the slot of pane p, allocating its page (and charging the
// budget) on first use.
func (s *paged[T]) at(p int, b *memBudget) *T {
	i := int32(p >> pageBits)
	if s.lastPage != nil && i == s.lastI {
		return &s.lastPage[p&(pageSize-1)]
	}
	pg, ok := s.pages[i]
	if !ok {
		if s.pages == nil {
			s.pages = map[int32][]T{}
		}
		var zero T
		b.charge(int64(pageSize) * int64(unsafe.Sizeof(zero)))
		pg = make([]T, pageSize)
		s.pages[i] = pg
	}
	s.lastI, s.lastPage = i, pg
	return &pg[p&(pageSize-1)]
}

// sortedPages returns the allocated page numbers in order.
func (s *paged[T]) sortedPages() []int32 {
	out := make([]int32, 0, len(s.pages))
	for i := range s.pages {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// memBudget bounds the memory a metric query's accumulators take; the
// first charge past the limit records an error that stops the scan.
type memBudget struct {
	limit int64
	used  atomic.Int64
	over  atomic.Bool
}

func (b *memBudget) charge(n int64) {
	if b == nil {
		return
	}
	if b.used.Add(n) > b.limit {
		b.over.Store(true)
	}
}

func (b *memBudget) err() error {
	if b == nil || !b.over.Load() {
		return nil
	}
	return &Error{Msg: fmt.Sprintf("metric query needs more than %d MiB for its per-series, per-step state; "+
		"reduce the number of series (more specific stream selectors, or aggregate with sum by (...)), "+
		"use a larger step or a shorter time range, or raise the query memory limit", b.limit>>20)}
}

// seriesAcc is the state of one output series of a range aggregation.
type seriesAcc struct {
	labels labels.Labels
	hash   uint64
	cnt    paged[float64] // kindCount
	acc    paged[paneAcc] // kindSum .. kindLast
	smp    paged[[]tv]    // kindSamples
}

// seriesSet is the series a worker has built, by label hash.
type seriesSet struct {
	byHash map[uint64][]*seriesAcc
	list   []*seriesAcc
}

func newSeriesSet() *seriesSet { return &seriesSet{byHash: map[uint64][]*seriesAcc{}} }

func (s *seriesSet) find(hash uint64, ls labels.Labels) *seriesAcc {
	for _, a := range s.byHash[hash] {
		if a.labels.Equal(ls) {
			return a
		}
	}
	return nil
}

func (s *seriesSet) insert(a *seriesAcc) {
	s.byHash[a.hash] = append(s.byHash[a.hash], a)
	s.list = append(s.list, a)
}

// get returns the series with the given labels, creating it (with its
// own copy of the labels) when new.
func (s *seriesSet) get(hash uint64, ls labels.Labels, b *memBudget) (*seriesAcc, bool) {
	if a := s.find(hash, ls); a != nil {
		return a, false
	}
	a := &seriesAcc{labels: cloneLabels(ls), hash: hash}
	if a.labels == nil {
		a.labels = labels.Labels{}
	}
	b.charge(int64(200 + 32*len(ls)))
	s.insert(a)
	return a, true
}

// mergeInto folds the series of o into s.
func (s *seriesSet) mergeInto(o *seriesSet, k accKind, b *memBudget) {
	for _, oa := range o.list {
		a := s.find(oa.hash, oa.labels)
		if a == nil {
			s.insert(oa)
			continue
		}
		switch k {
		case kindCount:
			for i, pg := range oa.cnt.pages {
				base := int(i) << pageBits
				for j, v := range pg {
					if v != 0 {
						*a.cnt.at(base+j, b) += v
					}
				}
			}
		case kindSamples:
			for i, pg := range oa.smp.pages {
				base := int(i) << pageBits
				for j, v := range pg {
					if len(v) > 0 {
						d := a.smp.at(base+j, b)
						*d = append(*d, v...)
					}
				}
			}
		default:
			for i, pg := range oa.acc.pages {
				base := int(i) << pageBits
				for j, v := range pg {
					if v.n != 0 {
						a.acc.at(base+j, b).merge(k, v)
					}
				}
			}
		}
	}
}

// windowFunc turns the samples of one window into the function's value.
type windowFunc struct {
	op       logql.RangeOp
	kind     accKind
	rangeSec float64
	param    float64 // quantile
}

func (f *windowFunc) value(c paneAcc) float64 {
	switch f.op {
	case logql.RangeCount, logql.RangeBytes, logql.RangeSum, logql.RangeMin, logql.RangeMax,
		logql.RangeFirst, logql.RangeLast, logql.RangeAbsent:
		return c.a
	case logql.RangeRate, logql.RangeBytesRate:
		return c.a / f.rangeSec
	case logql.RangeAvg:
		return c.a / c.n
	case logql.RangeStdvar:
		return c.b / c.n
	case logql.RangeStddev:
		return math.Sqrt(c.b / c.n)
	}
	return math.NaN()
}

// finalize computes the value of every window of every series: the
// matrix of the range aggregation. Series are independent, so they are
// spread over the available cores.
func finalize(list []*seriesAcc, g *paneGrid, f *windowFunc, par int) []*mseries {
	out := make([]*mseries, len(list))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < max(1, min(par, len(list))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []tv
			for {
				i := int(next.Add(1) - 1)
				if i >= len(list) {
					return
				}
				s := &mseries{labels: list[i].labels}
				switch f.kind {
				case kindCount:
					s.pts = slideCount(&list[i].cnt, g, f)
				case kindSamples:
					s.pts, scratch = windowSamples(&list[i].smp, g, f, scratch)
				default:
					s.pts = slideAcc(&list[i].acc, g, f)
				}
				out[i] = s
			}
		}()
	}
	wg.Wait()
	return out
}

// slidingQueue aggregates a window that slides forward over panes in
// O(1) amortized merges per pane, whatever the panes per window: the
// classic two-stack queue. front holds the oldest panes with suffix
// aggregates (oldest on top), back the newest with one running aggregate.
type slidingQueue[T any] struct {
	merge   func(a, b T) T
	front   []queued[T]
	back    []queued[T]
	backAgg T
}

type queued[T any] struct {
	p      int32
	v, agg T
}

func (q *slidingQueue[T]) empty() bool { return len(q.front) == 0 && len(q.back) == 0 }

func (q *slidingQueue[T]) push(p int32, v T) {
	if len(q.back) == 0 {
		q.backAgg = v
	} else {
		q.backAgg = q.merge(q.backAgg, v)
	}
	q.back = append(q.back, queued[T]{p: p, v: v})
}

// popBefore drops the panes before lo.
func (q *slidingQueue[T]) popBefore(lo int32) {
	for {
		if len(q.front) == 0 {
			if len(q.back) == 0 || q.back[0].p >= lo {
				return
			}
			q.flip()
		}
		if q.front[len(q.front)-1].p >= lo {
			return
		}
		q.front = q.front[:len(q.front)-1]
	}
}

func (q *slidingQueue[T]) flip() {
	for i := len(q.back) - 1; i >= 0; i-- {
		e := q.back[i]
		e.agg = e.v
		if n := len(q.front); n > 0 {
			e.agg = q.merge(e.v, q.front[n-1].agg)
		}
		q.front = append(q.front, e)
	}
	q.back = q.back[:0]
}

func (q *slidingQueue[T]) agg() T {
	switch {
	case len(q.front) == 0:
		return q.backAgg
	case len(q.back) == 0:
		return q.front[len(q.front)-1].agg
	}
	return q.merge(q.front[len(q.front)-1].agg, q.backAgg)
}

// slideWindows walks the windows that hold data: it pushes the non-empty
// panes as windows reach them, drops those windows leave behind, and
// skips runs of windows with nothing in them.
func slideWindows[T any](g *paneGrid, panes []int32, vals []T, q *slidingQueue[T], emit func(j int, agg T)) {
	pi := 0
	for j := 0; j < len(g.lo); j++ {
		if q.empty() {
			if pi == len(panes) {
				return
			}
			j = max(j, g.firstWindow(panes[pi]))
			if j >= len(g.lo) {
				return
			}
		}
		for pi < len(panes) && panes[pi] <= g.hi[j] {
			q.push(panes[pi], vals[pi])
			pi++
		}
		q.popBefore(g.lo[j])
		if !q.empty() {
			emit(j, q.agg())
		}
	}
}

func slideCount(s *paged[float64], g *paneGrid, f *windowFunc) []spoint {
	var panes []int32
	var vals []float64
	for _, i := range s.sortedPages() {
		for k, v := range s.pages[i] {
			if v != 0 {
				panes = append(panes, i<<pageBits+int32(k))
				vals = append(vals, v)
			}
		}
	}
	var pts []spoint
	q := &slidingQueue[float64]{merge: func(a, b float64) float64 { return a + b }}
	slideWindows(g, panes, vals, q, func(j int, n float64) {
		v := n
		if f.op == logql.RangeRate {
			v = n / f.rangeSec
		}
		pts = append(pts, spoint{j: j, v: v})
	})
	return pts
}

func slideAcc(s *paged[paneAcc], g *paneGrid, f *windowFunc) []spoint {
	var panes []int32
	var vals []paneAcc
	for _, i := range s.sortedPages() {
		for k, v := range s.pages[i] {
			if v.n != 0 {
				panes = append(panes, i<<pageBits+int32(k))
				vals = append(vals, v)
			}
		}
	}
	var pts []spoint
	k := f.kind
	q := &slidingQueue[paneAcc]{merge: func(a, b paneAcc) paneAcc { a.merge(k, b); return a }}
	slideWindows(g, panes, vals, q, func(j int, c paneAcc) {
		pts = append(pts, spoint{j: j, v: f.value(c)})
	})
	return pts
}

// windowSamples evaluates quantile_over_time and rate_counter, which need
// the samples of a window themselves: each pane's samples are sorted
// once, and a window's are its panes' in order.
func windowSamples(s *paged[[]tv], g *paneGrid, f *windowFunc, scratch []tv) ([]spoint, []tv) {
	var panes []int32
	var vals [][]tv
	for _, i := range s.sortedPages() {
		for k, v := range s.pages[i] {
			if len(v) > 0 {
				// Equal timestamps are ordered by value, so that the
				// answer does not depend on the order workers met them;
				// for a counter it also reads no false reset.
				slices.SortFunc(v, func(a, b tv) int {
					if c := cmp.Compare(a.t, b.t); c != 0 {
						return c
					}
					return cmp.Compare(a.v, b.v)
				})
				panes = append(panes, i<<pageBits+int32(k))
				vals = append(vals, v)
			}
		}
	}
	var pts []spoint
	var fv []float64
	pi := 0
	for j := 0; j < len(g.lo) && pi < len(panes); j++ {
		for pi < len(panes) && panes[pi] < g.lo[j] {
			pi++
		}
		if pi == len(panes) {
			break
		}
		if panes[pi] > g.hi[j] {
			j = g.firstWindow(panes[pi]) - 1
			continue
		}
		scratch = scratch[:0]
		for k := pi; k < len(panes) && panes[k] <= g.hi[j]; k++ {
			scratch = append(scratch, vals[k]...)
		}
		var v float64
		if f.op == logql.RangeQuantile {
			fv = fv[:0]
			for _, s := range scratch {
				fv = append(fv, s.v)
			}
			v = quantile(f.param, fv)
		} else {
			end := g.ends[j]
			v = counterRate(scratch, end-g.rng, end, f.rangeSec)
		}
		pts = append(pts, spoint{j: j, v: v})
	}
	return pts, scratch
}

// quantile is the φ-quantile of vs as Prometheus and Loki compute it:
// linear interpolation between the closest ranks; -Inf for φ < 0, +Inf
// for φ > 1. It sorts vs.
func quantile(q float64, vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(1)
	}
	slices.Sort(vs)
	n := float64(len(vs))
	rank := q * (n - 1)
	lower := math.Max(0, math.Floor(rank))
	upper := math.Min(n-1, lower+1)
	w := rank - math.Floor(rank)
	return vs[int(lower)]*(1-w) + vs[int(upper)]*w
}

// counterRate is rate_counter over the window (start, end]: Prometheus'
// rate() applied to the unwrapped values as a counter. Loki computes it
// this way since grafana/loki#23684, which fixed a unit mismatch that had
// made the extrapolation a no-op: resets add the value before the drop,
// the increase is extrapolated to the window's edges unless the first or
// last sample lies more than 1.1 average sample intervals from them (then
// half an interval), the start is not extrapolated below a counter value
// of zero, and the result is per second of the whole range. Fewer than two
// samples give 0, as in Loki. When every sample shares one timestamp there
// is no interval to extrapolate from and the plain increase is used.
func counterRate(s []tv, start, end int64, rangeSec float64) float64 {
	if len(s) < 2 {
		return 0
	}
	first, last := s[0], s[len(s)-1]
	inc := last.v - first.v
	prev := 0.0
	for _, p := range s {
		if p.v < prev {
			inc += prev
		}
		prev = p.v
	}
	sampled := float64(last.t-first.t) / 1e9
	if sampled <= 0 {
		return inc / rangeSec
	}
	toStart := float64(first.t-start) / 1e9
	toEnd := float64(end-last.t) / 1e9
	avg := sampled / float64(len(s)-1)
	threshold := avg * 1.1
	if toStart >= threshold {
		toStart = avg / 2
	}
	if inc > 0 && first.v >= 0 {
		if toZero := sampled * (first.v / inc); toZero < toStart {
			toStart = toZero
		}
	}
	if toEnd >= threshold {
		toEnd = avg / 2
	}
	return inc * (sampled + toStart + toEnd) / sampled / rangeSec
}
