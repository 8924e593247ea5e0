package query

import (
	"math"
	"slices"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// arith applies op to two values. Comparisons return the left value and
// whether the comparison holds; arithmetic always keeps its result.
// Division by zero gives ±Inf or NaN, as floats do.
func arith(op logql.BinaryOp, l, r float64) (float64, bool) {
	switch op {
	case logql.OpAdd:
		return l + r, true
	case logql.OpSub:
		return l - r, true
	case logql.OpMul:
		return l * r, true
	case logql.OpDiv:
		return l / r, true
	case logql.OpMod:
		return math.Mod(l, r), true
	case logql.OpPow:
		return math.Pow(l, r), true
	case logql.OpEq:
		return l, l == r
	case logql.OpNeq:
		return l, l != r
	case logql.OpGt:
		return l, l > r
	case logql.OpGte:
		return l, l >= r
	case logql.OpLt:
		return l, l < r
	case logql.OpLte:
		return l, l <= r
	}
	return math.NaN(), false
}

// binary evaluates a binary expression with Prometheus' semantics, which
// Loki follows.
func (ev *evaluator) binary(e *logql.BinaryExpr, l, r *matrix) (*matrix, error) {
	switch {
	case l.scalar && r.scalar:
		s := &mseries{labels: labels.Labels{}}
		for j := range ev.steps {
			v, keep := arith(e.Op, l.series[0].pts[j].v, r.series[0].pts[j].v)
			if e.Op.IsComparison() {
				// The parser demands bool between scalars.
				v = boolValue(keep)
			}
			s.pts = append(s.pts, spoint{j: j, v: v})
		}
		return &matrix{scalar: true, series: []*mseries{s}}, nil
	case l.scalar:
		return ev.vectorScalar(e, r, l.series[0], true), nil
	case r.scalar:
		return ev.vectorScalar(e, l, r.series[0], false), nil
	case e.Op.IsSetOperator():
		return ev.setOperation(e, l, r)
	}
	return ev.vectorVector(e, l, r)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// vectorScalar applies op between every value of v and the scalar s;
// swapped when the scalar is the left operand. A comparison filters the
// vector, keeping the vector's value even when the scalar is on the left;
// with bool it gives 0 or 1 instead. Labels stay as they are.
func (ev *evaluator) vectorScalar(e *logql.BinaryExpr, v *matrix, s *mseries, swapped bool) *matrix {
	out := &matrix{}
	for _, in := range v.series {
		o := &mseries{labels: in.labels}
		for _, p := range in.pts {
			lv, rv := p.v, s.pts[p.j].v
			if swapped {
				lv, rv = rv, lv
			}
			val, keep := arith(e.Op, lv, rv)
			if e.Op.IsComparison() {
				val = p.v
				if e.ReturnBool {
					val, keep = boolValue(keep), true
				}
			}
			if keep {
				o.pts = append(o.pts, spoint{j: p.j, v: val})
			}
		}
		out.series = append(out.series, o)
	}
	return out
}

// matchKeys gives every series of l and r the id of its matching
// signature: all labels by default, only the on (...) labels, or all but
// the ignoring (...) ones.
func matchKeys(m *logql.VectorMatching, l, r *matrix) (lk, rk []int, n int) {
	ids := map[string]int{}
	var key []byte
	sig := func(ls labels.Labels) int {
		key = key[:0]
		for _, lb := range ls {
			if m != nil && slices.Contains(m.Labels, lb.Name) != m.On {
				continue
			}
			key = append(key, lb.Name...)
			key = append(key, 0xff)
			key = append(key, lb.Value...)
			key = append(key, 0xfe)
		}
		id, ok := ids[string(key)]
		if !ok {
			id = len(ids)
			ids[string(key)] = id
		}
		return id
	}
	lk = make([]int, len(l.series))
	for i, s := range l.series {
		lk[i] = sig(s.labels)
	}
	rk = make([]int, len(r.series))
	for i, s := range r.series {
		rk[i] = sig(s.labels)
	}
	return lk, rk, len(ids)
}

func matchingLabels(ls labels.Labels, m *logql.VectorMatching) labels.Labels {
	out := labels.Labels{}
	for _, l := range ls {
		if m == nil || slices.Contains(m.Labels, l.Name) == m.On {
			out = append(out, l)
		}
	}
	return out
}

// setOperation is and, or and unless, per step: and keeps the left values
// whose signature has a right value, unless those without one; or takes
// the left values and the right ones whose signature has no left value.
func (ev *evaluator) setOperation(e *logql.BinaryExpr, l, r *matrix) (*matrix, error) {
	lk, rk, nk := matchKeys(e.Matching, l, r)
	n := len(ev.steps)
	lr, rr := l.byStep(n), r.byStep(n)
	b := newSeriesBuilder()
	lout := make([]int, len(l.series))
	for i, s := range l.series {
		lout[i] = b.get(s.labels)
	}
	var rout []int
	if e.Op == logql.OpOr {
		rout = make([]int, len(r.series))
		for i, s := range r.series {
			rout[i] = b.get(s.labels)
		}
	}
	seen := make([]int, nk) // step+1 at which the signature was seen
	for j := 0; j < n; j++ {
		switch e.Op {
		case logql.OpAnd, logql.OpUnless:
			for _, x := range rr.at(j) {
				seen[rk[x.s]] = j + 1
			}
			for _, x := range lr.at(j) {
				if (seen[lk[x.s]] == j+1) == (e.Op == logql.OpAnd) {
					if err := b.add(lout[x.s], j, x.v); err != nil {
						return nil, err
					}
				}
			}
		case logql.OpOr:
			for _, x := range lr.at(j) {
				seen[lk[x.s]] = j + 1
				if err := b.add(lout[x.s], j, x.v); err != nil {
					return nil, err
				}
			}
			for _, x := range rr.at(j) {
				if seen[rk[x.s]] != j+1 {
					if err := b.add(rout[x.s], j, x.v); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return &matrix{series: b.out}, nil
}

// firstDuplicate returns, among the series of refs that share a match
// signature with another, the two with the smallest labels.
func firstDuplicate(mx *matrix, refs []sref, sig []int) (a, b labels.Labels) {
	idx := make([]int, len(refs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int {
		return labels.Compare(mx.series[refs[x].s].labels, mx.series[refs[y].s].labels)
	})
	seen := map[int]labels.Labels{}
	for _, i := range idx {
		ls := mx.series[refs[i].s].labels
		k := sig[refs[i].s]
		if first, ok := seen[k]; ok {
			return first, ls
		}
		seen[k] = ls
	}
	return nil, nil
}

// vectorVector is arithmetic or comparison between two vectors, matched
// one-to-one, or many-to-one with group_left (group_right: one-to-many).
// The "one" side must have one series per signature at every step; the
// result has the "many" side's labels, reduced to the on (...) labels or
// without the ignoring (...) ones for one-to-one matching, plus the
// group_x (...) labels copied from the "one" side. Comparisons without
// bool keep the left value where they hold.
func (ev *evaluator) vectorVector(e *logql.BinaryExpr, l, r *matrix) (*matrix, error) {
	m := e.Matching
	card := logql.OneToOne
	if m != nil {
		card = m.Card
	}
	lk, rk, nk := matchKeys(m, l, r)
	many, one, mk, ok := l, r, lk, rk
	if card == logql.OneToMany {
		many, one, mk, ok = r, l, rk, lk
	}
	n := len(ev.steps)
	manyRefs, oneRefs := many.byStep(n), one.byStep(n)
	b := newSeriesBuilder()
	type pair struct{ m, o int32 }
	outOf := map[pair]int{}
	oneAt := make([]sref, nk) // the one-side value of a signature at this step
	mark := make([]int, nk)
	for j := 0; j < n; j++ {
		for _, x := range oneRefs.at(j) {
			k := ok[x.s]
			if mark[k] == j+1 {
				side := "right"
				if card == logql.OneToMany {
					side = "left"
				}
				// Name the duplicate pair of the smallest match group, so
				// that the message does not depend on series order.
				a, b := firstDuplicate(one, oneRefs.at(j), ok)
				return nil, userError("found duplicate series for the match group %s on the %s hand-side of the operation: [%s, %s];"+
					"many-to-many matching not allowed: matching labels must be unique on one side",
					matchingLabels(a, m), side, a, b)
			}
			mark[k] = j + 1
			oneAt[k] = x
		}
		for _, x := range manyRefs.at(j) {
			k := mk[x.s]
			if mark[k] != j+1 {
				continue
			}
			o := oneAt[k]
			lv, rv := x.v, o.v
			if card == logql.OneToMany {
				lv, rv = rv, lv
			}
			val, keep := arith(e.Op, lv, rv)
			if e.ReturnBool {
				val, keep = boolValue(keep), true
			}
			if !keep {
				continue
			}
			pk := pair{x.s, o.s}
			i, found := outOf[pk]
			if !found {
				i = b.get(resultLabels(many.series[x.s].labels, one.series[o.s].labels, m))
				outOf[pk] = i
			}
			if err := b.add(i, j, val); err != nil {
				if card == logql.OneToOne {
					return nil, userError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
				}
				return nil, userError("multiple matches for matching labels; many-to-one matching must be explicit (group_left/group_right)")
			}
		}
	}
	return &matrix{series: b.out}, nil
}

// resultLabels is Prometheus' resultMetric for a match of a "many" series
// with a "one" series.
func resultLabels(many, one labels.Labels, m *logql.VectorMatching) labels.Labels {
	if m == nil {
		return many
	}
	out := make(labels.Labels, 0, len(many)+len(m.Include))
	for _, l := range many {
		if m.Card == logql.OneToOne && slices.Contains(m.Labels, l.Name) != m.On {
			continue
		}
		if slices.Contains(m.Include, l.Name) {
			continue
		}
		out = append(out, l)
	}
	for _, name := range m.Include {
		if v := one.Get(name); v != "" {
			out = append(out, labels.Label{Name: name, Value: v})
		}
	}
	return out.Sort()
}
