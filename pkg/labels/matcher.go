package labels

import (
	"fmt"
	"regexp"
	"strconv"
)

// MatchType is the operator of a label matcher.
type MatchType int

// The four operators of a LogQL stream selector.
const (
	MatchEqual     MatchType = iota // =
	MatchNotEqual                   // !=
	MatchRegexp                     // =~
	MatchNotRegexp                  // !~
)

func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return fmt.Sprintf("MatchType(%d)", int(t))
}

// Matcher tests one label of a set. Regular expressions are anchored at both
// ends, as in Prometheus and Loki: name=~"api" matches only "api".
type Matcher struct {
	Type  MatchType
	Name  string
	Value string
	re    *regexp.Regexp
}

// NewMatcher builds a matcher, compiling the expression of a regexp matcher.
func NewMatcher(t MatchType, name, value string) (*Matcher, error) {
	m := &Matcher{Type: t, Name: name, Value: value}
	if t == MatchRegexp || t == MatchNotRegexp {
		// Check the expression on its own first: wrapped in the anchors, a
		// value such as "a)|(b" would compile into a different expression.
		if _, err := regexp.Compile(value); err != nil {
			return nil, fmt.Errorf("invalid regular expression %q in matcher for %s: %w", value, name, err)
		}
		re, err := regexp.Compile("^(?s:" + value + ")$")
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression %q in matcher for %s: %w", value, name, err)
		}
		m.re = re
	}
	return m, nil
}

// MustNewMatcher is NewMatcher for constants in code and tests.
func MustNewMatcher(t MatchType, name, value string) *Matcher {
	m, err := NewMatcher(t, name, value)
	if err != nil {
		panic(err)
	}
	return m
}

// Matches tests a single value; a missing label is tested as "".
func (m *Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	case MatchNotRegexp:
		return !m.re.MatchString(v)
	}
	return false
}

// MatchesEmpty reports whether the matcher accepts a set that lacks the
// label; a selector made only of such matchers would select every stream.
func (m *Matcher) MatchesEmpty() bool { return m.Matches("") }

// String formats the matcher as LogQL writes it: name="value".
func (m *Matcher) String() string {
	return m.Name + m.Type.String() + strconv.Quote(m.Value)
}

// MatchLabels reports whether every matcher accepts the set.
func MatchLabels(ls Labels, ms []*Matcher) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}
