package query

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

// genEntry is a generated entry with what the naive evaluator needs.
type genEntry struct {
	stream labels.Labels
	ts     int64
	line   string
	kv     map[string]string
}

func (e *genEntry) num(k string) float64 {
	v, err := strconv.ParseFloat(e.kv[k], 64)
	if err != nil {
		panic(err)
	}
	return v
}

// genData makes four streams of logfmt lines over two hours, their
// timestamps shuffled within each push so that chunks overlap in time.
func genData(seed uint64) ([]testStream, []genEntry) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	levels := []string{"debug", "info", "info", "info", "warn", "error"}
	var streams []testStream
	var all []genEntry
	for s := 0; s < 4; s++ {
		ls := labels.New("job", "gen", "stream", fmt.Sprint(s))
		ts := testStream{labels: ls}
		ctr := 0
		seen := map[int64]bool{}
		for i := 0; i < 2500; i++ {
			t := at(0).UnixNano() + r.Int64N(int64(2*time.Hour))
			if seen[t] { // unique timestamps keep first/last free of ties
				continue
			}
			seen[t] = true
			lvl := levels[r.IntN(len(levels))]
			status := []int{200, 200, 200, 201, 404, 500, 503}[r.IntN(7)]
			line := fmt.Sprintf("level=%s status=%d latency=%.3f size=%d msg=m%d", lvl, status, r.Float64()*2, r.IntN(5000), r.IntN(50))
			ts.entries = append(ts.entries, chunk.Entry{Timestamp: t, Line: []byte(line)})
		}
		// A counter that rises with time and resets now and then.
		slices.SortFunc(ts.entries, func(a, b chunk.Entry) int { return cmpInt64(a.Timestamp, b.Timestamp) })
		for i := range ts.entries {
			ctr += r.IntN(10)
			if r.IntN(200) == 0 {
				ctr = 0
			}
			ts.entries[i].Line = fmt.Appendf(ts.entries[i].Line, " ctr=%d", ctr)
		}
		r.Shuffle(len(ts.entries), func(i, j int) { ts.entries[i], ts.entries[j] = ts.entries[j], ts.entries[i] })
		for _, e := range ts.entries {
			ge := genEntry{stream: ls, ts: e.Timestamp, line: string(e.Line), kv: map[string]string{}}
			for _, f := range strings.Fields(ge.line) {
				k, v, _ := strings.Cut(f, "=")
				ge.kv[k] = v
			}
			all = append(all, ge)
		}
		streams = append(streams, ts)
	}
	slices.SortStableFunc(all, func(a, b genEntry) int { return cmpInt64(a.ts, b.ts) })
	return streams, all
}

// bruteCase is a query and a naive evaluation of it: keep filters the
// entries, series names the sample's series, value its value, and agg
// reduces a window's samples (in time order) to the result.
type bruteCase struct {
	q      string // with %s for the range and offset
	keep   func(e *genEntry) bool
	series func(e *genEntry) labels.Labels
	value  func(e *genEntry) float64
	agg    func(s []tv, start, end int64, rangeSec float64) float64
	// outer, when set, post-processes one step's series (topk).
	outer func(vals map[string]float64) map[string]float64
}

func countAgg(s []tv, _, _ int64, _ float64) float64 { return float64(len(s)) }
func sumAgg(s []tv, _, _ int64, _ float64) float64 {
	var t float64
	for _, x := range s {
		t += x.v
	}
	return t
}

// bruteEval computes a range query by looping over every sample for every
// step.
func bruteEval(c *bruteCase, all []genEntry, steps []int64, rng, off time.Duration) map[string]map[int64]float64 {
	out := map[string]map[int64]float64{}
	for _, t := range steps {
		end := t - int64(off)
		start := end - int64(rng)
		lo := sort.Search(len(all), func(i int) bool { return all[i].ts > start })
		groups := map[string][]tv{}
		for i := lo; i < len(all) && all[i].ts <= end; i++ {
			e := &all[i]
			if c.keep != nil && !c.keep(e) {
				continue
			}
			k := c.series(e).String()
			groups[k] = append(groups[k], tv{t: e.ts, v: c.value(e)})
		}
		vals := map[string]float64{}
		for k, s := range groups {
			vals[k] = c.agg(s, start, end, rng.Seconds())
		}
		if c.outer != nil {
			vals = c.outer(vals)
		}
		for k, v := range vals {
			if out[k] == nil {
				out[k] = map[int64]float64{}
			}
			out[k][msOf(t)] = v
		}
	}
	return out
}

func closeEnough(a, b float64) bool {
	if a == b {
		return true
	}
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func one(*genEntry) float64 { return 1 }

func byLabel(names ...string) func(e *genEntry) labels.Labels {
	return func(e *genEntry) labels.Labels {
		var pairs []string
		for _, n := range names {
			if v := e.stream.Get(n); v != "" {
				pairs = append(pairs, n, v)
			} else if v := e.kv[n]; v != "" {
				pairs = append(pairs, n, v)
			}
		}
		return labels.New(pairs...)
	}
}

func field(k string) func(e *genEntry) float64 { return func(e *genEntry) float64 { return e.num(k) } }

func bruteCases() []bruteCase {
	streamLabels := func(e *genEntry) labels.Labels { return e.stream }
	lineHas := func(s string) func(e *genEntry) bool {
		return func(e *genEntry) bool { return strings.Contains(e.line, s) }
	}
	return []bruteCase{
		{q: `count_over_time({job="gen"}%s)`, series: streamLabels, value: one, agg: countAgg},
		{q: `sum by (level) (count_over_time({job="gen"} | logfmt %s))`, series: byLabel("level"), value: one, agg: countAgg},
		{q: `sum(rate({job="gen"} |= "level=error" %s))`, keep: lineHas("level=error"), series: byLabel(), value: one,
			agg: func(s []tv, _, _ int64, r float64) float64 { return float64(len(s)) / r }},
		{q: `sum by (stream) (bytes_over_time({job="gen"}%s))`, series: byLabel("stream"),
			value: func(e *genEntry) float64 { return float64(len(e.line)) }, agg: sumAgg},
		{q: `bytes_rate({job="gen"} |= "status=5" %s)`, keep: lineHas("status=5"), series: streamLabels,
			value: func(e *genEntry) float64 { return float64(len(e.line)) },
			agg:   func(s []tv, a, b int64, r float64) float64 { return sumAgg(s, a, b, r) / r }},
		{q: `avg_over_time({job="gen"} | logfmt | unwrap latency %s) by (level)`, series: byLabel("level"), value: field("latency"),
			agg: func(s []tv, a, b int64, r float64) float64 { return sumAgg(s, a, b, r) / float64(len(s)) }},
		{q: `max_over_time({job="gen"} | logfmt | unwrap size %s) by (stream)`, series: byLabel("stream"), value: field("size"),
			agg: func(s []tv, _, _ int64, _ float64) float64 {
				m := math.Inf(-1)
				for _, x := range s {
					m = math.Max(m, x.v)
				}
				return m
			}},
		{q: `min_over_time({job="gen"} | logfmt | unwrap latency %s) by (status)`, series: byLabel("status"), value: field("latency"),
			agg: func(s []tv, _, _ int64, _ float64) float64 {
				m := math.Inf(1)
				for _, x := range s {
					m = math.Min(m, x.v)
				}
				return m
			}},
		{q: `sum by (level) (sum_over_time({job="gen"} | logfmt | unwrap size %s))`, series: byLabel("level"), value: field("size"), agg: sumAgg},
		{q: `sum(rate({job="gen"} | logfmt | unwrap size %s))`, series: byLabel(), value: field("size"),
			agg: func(s []tv, a, b int64, r float64) float64 { return sumAgg(s, a, b, r) / r }},
		{q: `quantile_over_time(0.9, {job="gen"} | logfmt | unwrap latency %s) by (level)`, series: byLabel("level"), value: field("latency"),
			agg: func(s []tv, _, _ int64, _ float64) float64 {
				vs := make([]float64, len(s))
				for i, x := range s {
					vs[i] = x.v
				}
				sort.Float64s(vs)
				// Linear interpolation between closest ranks.
				pos := 0.9 * float64(len(vs)-1)
				i := int(pos)
				if i+1 >= len(vs) {
					return vs[i]
				}
				return vs[i] + (vs[i+1]-vs[i])*(pos-float64(i))
			}},
		{q: `stddev_over_time({job="gen"} | logfmt | unwrap latency %s) by (stream)`, series: byLabel("stream"), value: field("latency"),
			agg: func(s []tv, a, b int64, r float64) float64 {
				mean := sumAgg(s, a, b, r) / float64(len(s))
				var sq float64
				for _, x := range s {
					sq += (x.v - mean) * (x.v - mean)
				}
				return math.Sqrt(sq / float64(len(s)))
			}},
		{q: `first_over_time({job="gen"} | logfmt | unwrap size %s) by (stream)`, series: byLabel("stream"), value: field("size"),
			agg: func(s []tv, _, _ int64, _ float64) float64 { return s[0].v }},
		{q: `last_over_time({job="gen"} | logfmt | unwrap size %s) by (stream)`, series: byLabel("stream"), value: field("size"),
			agg: func(s []tv, _, _ int64, _ float64) float64 { return s[len(s)-1].v }},
		{q: `rate_counter({job="gen"} | logfmt ctr | unwrap ctr %s)`, series: streamLabels, value: field("ctr"),
			agg: bruteCounterRate},
		{q: `topk(2, sum by (status) (count_over_time({job="gen"} | logfmt %s)))`, series: byLabel("status"), value: one, agg: countAgg,
			outer: func(vals map[string]float64) map[string]float64 {
				keys := make([]string, 0, len(vals))
				for k := range vals {
					keys = append(keys, k)
				}
				// Largest first, ties to the smaller label set.
				sort.Slice(keys, func(i, j int) bool {
					if vals[keys[i]] != vals[keys[j]] {
						return vals[keys[i]] > vals[keys[j]]
					}
					return keys[i] < keys[j]
				})
				out := map[string]float64{}
				for _, k := range keys[:min(2, len(keys))] {
					out[k] = vals[k]
				}
				return out
			}},
	}
}

// bruteCounterRate is Prometheus' extrapolated counter rate, written out
// again from its description.
func bruteCounterRate(s []tv, start, end int64, rangeSec float64) float64 {
	if len(s) < 2 {
		return 0
	}
	var increase float64
	for i := 1; i < len(s); i++ {
		if s[i].v < s[i-1].v {
			increase += s[i].v // reset: the counter restarted from 0
		} else {
			increase += s[i].v - s[i-1].v
		}
	}
	span := float64(s[len(s)-1].t-s[0].t) / 1e9
	avgGap := span / float64(len(s)-1)
	before := float64(s[0].t-start) / 1e9
	after := float64(end-s[len(s)-1].t) / 1e9
	if before >= 1.1*avgGap {
		before = avgGap / 2
	}
	if increase > 0 && s[0].v >= 0 {
		before = math.Min(before, span*s[0].v/increase)
	}
	if after >= 1.1*avgGap {
		after = avgGap / 2
	}
	return increase * (span + before + after) / span / rangeSec
}

func TestMetricsMatchBruteForce(t *testing.T) {
	streams, all := genData(7)
	combos := []struct {
		start, end     float64
		step, rng, off time.Duration
	}{
		{0, 7200, time.Minute, time.Minute, 0},
		{600, 6000, 2 * time.Minute, 5 * time.Minute, 0},
		{300, 7500, 10 * time.Minute, 90 * time.Second, 5 * time.Minute},
		{17, 7000, 45 * time.Second, 30 * time.Second, 0},
		{1000, 1000, time.Minute, 10 * time.Minute, 0},
	}
	for _, flush := range []bool{false, true} {
		eng := newEngine(t, flush, store.Options{TargetChunkSize: 48 << 10, Chunk: chunk.Options{BlockSize: 4 << 10}}, streams...)
		for _, c := range bruteCases() {
			for _, cb := range combos {
				rng := fmt.Sprintf("[%s]", logqlDuration(cb.rng))
				if cb.off > 0 {
					rng += " offset " + logqlDuration(cb.off)
				}
				q := fmt.Sprintf(c.q, rng)
				res := rangeQuery(t, eng, q, cb.start, cb.end, cb.step)
				var steps []int64
				for s := at(cb.start).UnixNano(); s <= at(cb.end).UnixNano(); s += int64(cb.step) {
					steps = append(steps, s)
				}
				want := bruteEval(&c, all, steps, cb.rng, cb.off)
				got := map[string]map[int64]float64{}
				for _, s := range res.Matrix {
					m := map[int64]float64{}
					for _, p := range s.Points {
						m[p.T] = p.V
					}
					got[s.Labels.String()] = m
				}
				if len(got) != len(want) {
					t.Fatalf("flush=%v %s: %d series, want %d:\n%s", flush, q, len(got), len(want), fmtMatrix(res.Matrix))
				}
				for k, w := range want {
					g := got[k]
					if len(g) != len(w) {
						t.Fatalf("flush=%v %s %s: %d points, want %d", flush, q, k, len(g), len(w))
					}
					for ts, wv := range w {
						if gv, ok := g[ts]; !ok || !closeEnough(gv, wv) {
							t.Fatalf("flush=%v %s %s at %d: %v, want %v", flush, q, k, ts, gv, wv)
						}
					}
				}
			}
		}
	}
}

// logqlDuration formats d the way LogQL reads it.
func logqlDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
