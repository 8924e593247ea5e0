package pipeline

import (
	"bytes"
	"fmt"

	"github.com/logsift/logsift/pkg/logql"
)

// LineFilter decides whether a line passes. Implementations hold no
// mutable state and are safe for concurrent use.
type LineFilter interface {
	Match(line []byte) bool
}

// NewLineFilter compiles one line filter stage: `op value [or value...]`.
// A positive operator keeps lines matching any value, a negated one lines
// matching none (Loki: != "a" or "b" keeps lines with neither).
func NewLineFilter(f *logql.LineFilter) (LineFilter, error) {
	if len(f.Values) == 0 {
		return nil, fmt.Errorf("line filter %s has no value", f.Op)
	}
	var m LineFilter
	switch f.Op {
	case logql.LineContains, logql.LineNotContains:
		var plain [][]byte
		var others []LineFilter
		for _, v := range f.Values {
			if v.IP {
				ipf, err := newIPFilter(v.Value)
				if err != nil {
					return nil, err
				}
				others = append(others, ipf)
				continue
			}
			plain = append(plain, []byte(v.Value))
		}
		if len(plain) > 0 {
			others = append([]LineFilter{containsAny(plain)}, others...)
		}
		m = anyOf(others)
	case logql.LineMatchRegexp, logql.LineNotMatchRegexp:
		alts := make([]LineFilter, 0, len(f.Values))
		for _, v := range f.Values {
			rf, err := newRegexpFilter(v.Value)
			if err != nil {
				return nil, err
			}
			alts = append(alts, rf)
		}
		m = anyOf(alts)
	case logql.LineMatchPattern, logql.LineNotPattern:
		alts := make([]LineFilter, 0, len(f.Values))
		for _, v := range f.Values {
			pf, err := newPatternFilter(v.Value)
			if err != nil {
				return nil, err
			}
			alts = append(alts, pf)
		}
		m = anyOf(alts)
	default:
		return nil, fmt.Errorf("unknown line filter operator %q", f.Op)
	}
	if f.Op.Negated() {
		return negate(m), nil
	}
	return m, nil
}

// trueFilter keeps every line; falseFilter none.
type trueFilter struct{}
type falseFilter struct{}

func (trueFilter) Match([]byte) bool  { return true }
func (falseFilter) Match([]byte) bool { return false }

// containsFilter is |= "x".
type containsFilter struct{ needle []byte }

func (f containsFilter) Match(line []byte) bool { return bytes.Contains(line, f.needle) }

// containsAnyFilter is |= "a" or "b".
type containsAnyFilter struct{ needles [][]byte }

func (f containsAnyFilter) Match(line []byte) bool {
	for _, n := range f.needles {
		if bytes.Contains(line, n) {
			return true
		}
	}
	return false
}

func containsAny(needles [][]byte) LineFilter {
	for _, n := range needles {
		if len(n) == 0 {
			return trueFilter{}
		}
	}
	if len(needles) == 1 {
		return containsFilter{needles[0]}
	}
	return containsAnyFilter{needles}
}

type notFilter struct{ f LineFilter }

func (f notFilter) Match(line []byte) bool { return !f.f.Match(line) }

func negate(f LineFilter) LineFilter {
	switch f := f.(type) {
	case trueFilter:
		return falseFilter{}
	case falseFilter:
		return trueFilter{}
	case notFilter:
		return f.f
	}
	return notFilter{f}
}

type orFilter []LineFilter

func (fs orFilter) Match(line []byte) bool {
	for _, f := range fs {
		if f.Match(line) {
			return true
		}
	}
	return false
}

func anyOf(fs []LineFilter) LineFilter {
	var out orFilter
	for _, f := range fs {
		switch f.(type) {
		case trueFilter:
			return trueFilter{}
		case falseFilter:
			continue
		}
		out = append(out, f)
	}
	switch len(out) {
	case 0:
		return falseFilter{}
	case 1:
		return out[0]
	}
	return out
}

type andFilter []LineFilter

func (fs andFilter) Match(line []byte) bool {
	for _, f := range fs {
		if !f.Match(line) {
			return false
		}
	}
	return true
}

func allOf(fs []LineFilter) LineFilter {
	var out andFilter
	for _, f := range fs {
		switch f.(type) {
		case falseFilter:
			return falseFilter{}
		case trueFilter:
			continue
		}
		out = append(out, f)
	}
	switch len(out) {
	case 0:
		return trueFilter{}
	case 1:
		return out[0]
	}
	return out
}
