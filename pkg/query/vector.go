package query

import (
	"cmp"
	"math"
	"regexp"
	"slices"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// groupLabels returns the labels of ls that identify its group: those
// named in by (...), or all but those named in without (...); none when g
// is nil.
func groupLabels(ls labels.Labels, g *logql.Grouping) labels.Labels {
	if g == nil {
		return labels.Labels{}
	}
	out := labels.Labels{}
	for _, l := range ls {
		if slices.Contains(g.Labels, l.Name) != g.Without {
			out = append(out, l)
		}
	}
	return out
}

// groupAcc aggregates the values of one group at one step.
type groupAcc struct {
	n       int
	v, mean float64
}

// vectorAggregation computes sum, avg, min, max, count, stddev, stdvar,
// topk, bottomk, sort and sort_desc over the series of in at every step,
// as Loki's vector aggregation (which follows Prometheus) does.
func (ev *evaluator) vectorAggregation(e *logql.VectorAggregationExpr, in *matrix) (*matrix, error) {
	switch e.Op {
	case logql.VectorSort, logql.VectorSortDesc:
		// Ordering concerns instant results only (see sortVector).
		return &matrix{series: in.series}, nil
	case logql.VectorTopK, logql.VectorBottomK, logql.VectorApproxTopK:
		return ev.topK(e, in), nil
	}
	// Groups are the same at every step: work them out once per series.
	b := newSeriesBuilder()
	gid := make([]int, len(in.series))
	for i, s := range in.series {
		gid[i] = b.get(groupLabels(s.labels, e.Grouping))
	}
	n := len(ev.steps)
	refs := in.byStep(n)
	accs := make([]groupAcc, len(b.out))
	mark := make([]int, len(b.out)) // step+1 at which accs[g] was last reset
	var touched []int
	for j := 0; j < n; j++ {
		touched = touched[:0]
		for _, r := range refs.at(j) {
			g := gid[r.s]
			a := &accs[g]
			if mark[g] != j+1 {
				mark[g] = j + 1
				touched = append(touched, g)
				*a = groupAcc{n: 1, v: r.v, mean: r.v}
				if e.Op == logql.VectorStddev || e.Op == logql.VectorStdvar {
					a.v = 0
				}
				continue
			}
			a.n++
			switch e.Op {
			case logql.VectorSum:
				a.v += r.v
			case logql.VectorAvg:
				a.mean += (r.v - a.mean) / float64(a.n)
			case logql.VectorMax:
				if a.v < r.v || math.IsNaN(a.v) {
					a.v = r.v
				}
			case logql.VectorMin:
				if a.v > r.v || math.IsNaN(a.v) {
					a.v = r.v
				}
			case logql.VectorStddev, logql.VectorStdvar:
				d := r.v - a.mean
				a.mean += d / float64(a.n)
				a.v += d * (r.v - a.mean)
			}
		}
		for _, g := range touched {
			a := &accs[g]
			v := a.v
			switch e.Op {
			case logql.VectorAvg:
				v = a.mean
			case logql.VectorCount:
				v = float64(a.n)
			case logql.VectorStdvar:
				v = a.v / float64(a.n)
			case logql.VectorStddev:
				v = math.Sqrt(a.v / float64(a.n))
			}
			// Groups are distinct label sets: no duplicate is possible.
			_ = b.add(g, j, v)
		}
	}
	return &matrix{series: b.out}, nil
}

// topK keeps, at every step and in every group, the k series with the
// largest (topk) or smallest (bottomk) values; NaN counts as the worst,
// and ties go to the lower label set so that results are reproducible.
// The series keep all their labels.
func (ev *evaluator) topK(e *logql.VectorAggregationExpr, in *matrix) *matrix {
	k := int(*e.Param)
	bottom := e.Op == logql.VectorBottomK
	b := newSeriesBuilder()
	gid := make([]int, len(in.series))
	for i, s := range in.series {
		gid[i] = b.get(groupLabels(s.labels, e.Grouping))
	}
	out := make([]*mseries, len(in.series))
	n := len(ev.steps)
	refs := in.byStep(n)
	var sel []sref
	for j := 0; j < n; j++ {
		sel = append(sel[:0], refs.at(j)...)
		slices.SortFunc(sel, func(x, y sref) int {
			if c := cmp.Compare(gid[x.s], gid[y.s]); c != 0 {
				return c
			}
			xn, yn := math.IsNaN(x.v), math.IsNaN(y.v)
			switch {
			case xn && !yn:
				return 1
			case yn && !xn:
				return -1
			case !xn && !yn && x.v != y.v:
				if bottom == (x.v < y.v) {
					return -1
				}
				return 1
			}
			return labels.Compare(in.series[x.s].labels, in.series[y.s].labels)
		})
		for i := 0; i < len(sel); {
			g := gid[sel[i].s]
			for kept := 0; i < len(sel) && gid[sel[i].s] == g; i++ {
				if kept == k {
					continue
				}
				kept++
				s := sel[i].s
				if out[s] == nil {
					out[s] = &mseries{labels: in.series[s].labels}
				}
				out[s].pts = append(out[s].pts, spoint{j: j, v: sel[i].v})
			}
		}
	}
	res := &matrix{}
	for _, s := range out {
		if s != nil {
			res.series = append(res.series, s)
		}
	}
	return res
}

// labelReplace is Prometheus' label_replace: when the source label's value
// (empty when missing) matches the anchored regex, the destination label
// becomes the replacement with $1, ${name}... expanded, or is removed when
// that is empty; otherwise the series is unchanged.
func (ev *evaluator) labelReplace(e *logql.LabelReplaceExpr, in *matrix) (*matrix, error) {
	re, err := regexp.Compile("^(?s:" + e.Regex + ")$")
	if err != nil {
		return nil, userError("invalid regular expression in label_replace(): %v", err)
	}
	b := newSeriesBuilder()
	idx := make([]int, len(in.series))
	for i, s := range in.series {
		idx[i] = b.get(replaceLabel(s.labels, e, re))
	}
	if len(b.out) == len(in.series) {
		for i, s := range in.series {
			b.out[idx[i]].pts = s.pts
		}
		return &matrix{series: b.out}, nil
	}
	// Two series became one: their points merge, step by step.
	n := len(ev.steps)
	refs := in.byStep(n)
	for j := 0; j < n; j++ {
		for _, r := range refs.at(j) {
			if err := b.add(idx[r.s], j, r.v); err != nil {
				return nil, err
			}
		}
	}
	return &matrix{series: b.out}, nil
}

func replaceLabel(ls labels.Labels, e *logql.LabelReplaceExpr, re *regexp.Regexp) labels.Labels {
	src := ls.Get(e.Src)
	m := re.FindStringSubmatchIndex(src)
	if m == nil {
		return ls
	}
	res := string(re.ExpandString(nil, e.Replacement, src, m))
	out := make(labels.Labels, 0, len(ls)+1)
	for _, l := range ls {
		if l.Name != e.Dst {
			out = append(out, l)
		}
	}
	if res != "" {
		out = append(out, labels.Label{Name: e.Dst, Value: res})
	}
	return out.Sort()
}
