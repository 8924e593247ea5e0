package pipeline

import (
	"fmt"
	"strconv"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// Label filters follow Loki: a string filter compares the value (a missing
// label is "") and is the only kind that sees __error__; number, duration
// and bytes filters let entries that already carry an error through,
// drop entries without the label, and on a value they cannot convert set
// __error__=LabelFilterErr and keep the entry. "and" and "or" evaluate
// left to right and stop early.

type labelFilter interface {
	match(st *entryState) bool
	// names appends the label names the filter reads.
	names(dst []string) []string
}

type labelFilterStage struct{ f labelFilter }

func (s labelFilterStage) instance() stageInstance { return s }
func (s labelFilterStage) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	return line, s.f.match(st)
}

func compileLabelFilter(f logql.LabelFilter) (labelFilter, error) {
	switch f := f.(type) {
	case *logql.LabelFilterBinary:
		l, err := compileLabelFilter(f.Left)
		if err != nil {
			return nil, err
		}
		r, err := compileLabelFilter(f.Right)
		if err != nil {
			return nil, err
		}
		if f.Or {
			return orLabelFilter{l, r}, nil
		}
		return andLabelFilter{l, r}, nil
	case *logql.StringLabelFilter:
		return &stringLabelFilter{m: f.Matcher, h: nameHash(f.Matcher.Name)}, nil
	case *logql.NumberLabelFilter:
		return &numberLabelFilter{name: f.Name, h: nameHash(f.Name), op: f.Op, v: f.Value}, nil
	case *logql.DurationLabelFilter:
		return &durationLabelFilter{name: f.Name, h: nameHash(f.Name), op: f.Op, v: f.Value}, nil
	case *logql.BytesLabelFilter:
		return &bytesLabelFilter{name: f.Name, h: nameHash(f.Name), op: f.Op, v: f.Value}, nil
	case *logql.IPLabelFilter:
		ipf, err := newIPFilter(f.Pattern)
		if err != nil {
			return nil, err
		}
		return &ipLabelFilter{name: f.Name, h: nameHash(f.Name), neg: f.Negated, f: ipf}, nil
	}
	return nil, fmt.Errorf("unsupported label filter %T", f)
}

type andLabelFilter struct{ l, r labelFilter }

func (f andLabelFilter) match(st *entryState) bool { return f.l.match(st) && f.r.match(st) }
func (f andLabelFilter) names(dst []string) []string {
	return f.r.names(f.l.names(dst))
}

type orLabelFilter struct{ l, r labelFilter }

func (f orLabelFilter) match(st *entryState) bool { return f.l.match(st) || f.r.match(st) }
func (f orLabelFilter) names(dst []string) []string {
	return f.r.names(f.l.names(dst))
}

type stringLabelFilter struct {
	m *labels.Matcher
	h uint64
}

func (f *stringLabelFilter) match(st *entryState) bool {
	v, _ := st.getSpecial(f.m.Name, f.h)
	return f.m.Matches(v)
}

func (f *stringLabelFilter) names(dst []string) []string { return append(dst, f.m.Name) }

// numericValue fetches a label for a conversion filter; ok false decides
// the entry (the returned verdict) without comparing.
func numericValue(st *entryState, name string, h uint64) (v string, verdict, ok bool) {
	if st.err != "" {
		return "", true, false
	}
	v, found := st.get(name, h)
	if !found {
		return "", false, false
	}
	return v, false, true
}

type numberLabelFilter struct {
	name string
	h    uint64
	op   logql.CmpOp
	v    float64
}

func (f *numberLabelFilter) match(st *entryState) bool {
	s, verdict, ok := numericValue(st, f.name, f.h)
	if !ok {
		return verdict
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		st.setErr(ErrLabelFilter, err.Error())
		return true
	}
	return compare(f.op, x, f.v)
}

func (f *numberLabelFilter) names(dst []string) []string { return append(dst, f.name) }

type durationLabelFilter struct {
	name string
	h    uint64
	op   logql.CmpOp
	v    time.Duration
}

func (f *durationLabelFilter) match(st *entryState) bool {
	s, verdict, ok := numericValue(st, f.name, f.h)
	if !ok {
		return verdict
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		st.setErr(ErrLabelFilter, err.Error())
		return true
	}
	return compareOrdered(f.op, d, f.v)
}

func (f *durationLabelFilter) names(dst []string) []string { return append(dst, f.name) }

type bytesLabelFilter struct {
	name string
	h    uint64
	op   logql.CmpOp
	v    uint64
}

func (f *bytesLabelFilter) match(st *entryState) bool {
	s, verdict, ok := numericValue(st, f.name, f.h)
	if !ok {
		return verdict
	}
	n, err := parseHumanBytes(s)
	if err != nil {
		st.setErr(ErrLabelFilter, err.Error())
		return true
	}
	return compareOrdered(f.op, n, f.v)
}

func (f *bytesLabelFilter) names(dst []string) []string { return append(dst, f.name) }

// ipLabelFilter is `label = ip("...")`: the value holds an address in the
// range, found the way |= ip() finds one in a line.
type ipLabelFilter struct {
	name string
	h    uint64
	neg  bool
	f    *ipFilter
}

func (f *ipLabelFilter) match(st *entryState) bool {
	s, verdict, ok := numericValue(st, f.name, f.h)
	if !ok {
		return verdict
	}
	return f.f.Match(stringBytes(s)) != f.neg
}

func (f *ipLabelFilter) names(dst []string) []string { return append(dst, f.name) }

func compare(op logql.CmpOp, a, b float64) bool { return compareOrdered(op, a, b) }

func compareOrdered[T int64 | uint64 | float64 | time.Duration](op logql.CmpOp, a, b T) bool {
	switch op {
	case logql.CmpEq:
		return a == b
	case logql.CmpNeq:
		return a != b
	case logql.CmpGt:
		return a > b
	case logql.CmpGte:
		return a >= b
	case logql.CmpLt:
		return a < b
	case logql.CmpLte:
		return a <= b
	}
	return false
}
