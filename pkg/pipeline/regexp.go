package pipeline

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"unicode"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/logql"
)

// Line filter regexps are unanchored and, as Loki documents, let . match
// newlines. Many are really substring searches in disguise; those run as
// such. The rest run on Go's regexp behind a prefilter of the literals any
// match must contain.

const maxLiteralSet = 64

// dotAll is prepended to every line filter regexp.
const dotAll = "(?s)"

func newRegexpFilter(expr string) (LineFilter, error) {
	re, err := syntax.Parse(dotAll+expr, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	if f := simplifyRegexp(re.Simplify()); f != nil {
		return f, nil
	}
	compiled, err := regexp.Compile(dotAll + expr)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	clauses, err := logql.RegexpNeedles(expr, 1)
	if err != nil {
		return nil, err
	}
	pre := make([]LineFilter, 0, len(clauses))
	for _, c := range clauses {
		pre = append(pre, clauseFilter(c))
	}
	return &regexpFilter{re: compiled, pre: pre}, nil
}

// regexpFilter runs a regexp after cheap necessary conditions.
type regexpFilter struct {
	re  *regexp.Regexp
	pre []LineFilter
}

func (f *regexpFilter) Match(line []byte) bool {
	for _, p := range f.pre {
		if !p.Match(line) {
			return false
		}
	}
	return f.re.Match(line)
}

// clauseFilter tests that a line contains one of the clause's needles.
func clauseFilter(c logql.Clause) LineFilter {
	var plain [][]byte
	var folded []*foldNeedle
	for _, n := range c {
		if n.Fold {
			folded = append(folded, newFoldNeedle(string(n.Text)))
		} else {
			plain = append(plain, n.Text)
		}
	}
	var fs []LineFilter
	if len(plain) > 0 {
		fs = append(fs, containsAny(plain))
	}
	if len(folded) > 0 {
		fs = append(fs, foldAnyFilter{folded})
	}
	return anyOf(fs)
}

// simplifyRegexp returns a literal search exactly equivalent to the
// regexp, or nil. It handles a literal, (?i)literal, alternations of
// literals, and any of those between .* on either side, which an
// unanchored search ignores.
func simplifyRegexp(re *syntax.Regexp) LineFilter {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if isDotStar(re) {
		return trueFilter{}
	}
	if re.Op == syntax.OpConcat {
		subs := re.Sub
		for len(subs) > 0 && isDotStar(subs[0]) {
			subs = subs[1:]
		}
		for len(subs) > 0 && isDotStar(subs[len(subs)-1]) {
			subs = subs[:len(subs)-1]
		}
		switch len(subs) {
		case 0:
			return trueFilter{}
		case 1:
			re = subs[0]
		default:
			re = &syntax.Regexp{Op: syntax.OpConcat, Sub: subs, Flags: re.Flags}
		}
	}
	var mode foldMode
	set, ok := literalSet(re, &mode, false)
	if !ok {
		// Mixed case-sensitive and folded parts, as in [Ee]rror (the
		// class becomes a folded E): spell out the fold variants.
		mode = modeUnknown
		set, ok = literalSet(re, &mode, true)
	}
	if !ok || len(set) == 0 {
		return nil
	}
	for _, s := range set {
		if s == "" {
			return trueFilter{}
		}
	}
	if mode == modeFold {
		ns := make([]*foldNeedle, len(set))
		for i, s := range set {
			ns[i] = newFoldNeedle(s)
		}
		if len(ns) == 1 {
			return foldFilter{ns[0]}
		}
		return foldAnyFilter{ns}
	}
	bs := make([][]byte, len(set))
	for i, s := range set {
		bs[i] = []byte(s)
	}
	return containsAny(bs)
}

func isDotStar(re *syntax.Regexp) bool {
	return re.Op == syntax.OpStar && (re.Sub[0].Op == syntax.OpAnyChar || re.Sub[0].Op == syntax.OpAnyCharNotNL)
}

// foldMode records whether the literals of a set compare exactly or
// folded; a set cannot mix both.
type foldMode int

const (
	modeUnknown foldMode = iota // only case-less literals so far
	modeExact
	modeFold
)

func (m *foldMode) join(want foldMode) bool {
	if *m == modeUnknown {
		*m = want
		return true
	}
	return *m == want
}

// literalSet returns the finite language of re when it is small and made
// of literals, else false. With expand, folded literals are spelled out as
// all their case variants, so the set compares exactly.
func literalSet(re *syntax.Regexp, mode *foldMode, expand bool) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		if bytes.ContainsRune([]byte(string(re.Rune)), utf8.RuneError) {
			return nil, false // regexp matches U+FFFD against invalid bytes
		}
		caseless := true
		for _, r := range re.Rune {
			if unicode.SimpleFold(r) != r {
				caseless = false
				break
			}
		}
		if caseless {
			return []string{string(re.Rune)}, true
		}
		if re.Flags&syntax.FoldCase == 0 {
			return []string{string(re.Rune)}, mode.join(modeExact)
		}
		if !expand {
			return []string{string(re.Rune)}, mode.join(modeFold)
		}
		if !mode.join(modeExact) {
			return nil, false
		}
		out := []string{""}
		for _, r := range re.Rune {
			orbit := []rune{r}
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				orbit = append(orbit, f)
			}
			if len(out)*len(orbit) > maxLiteralSet {
				return nil, false
			}
			next := make([]string, 0, len(out)*len(orbit))
			for _, a := range out {
				for _, o := range orbit {
					next = append(next, a+string(o))
				}
			}
			out = next
		}
		return out, true
	case syntax.OpCharClass:
		// A class is a set of exact runes; folding would widen it.
		n := 0
		for i := 0; i < len(re.Rune); i += 2 {
			n += int(re.Rune[i+1]-re.Rune[i]) + 1
			if n > 16 {
				return nil, false
			}
		}
		var out []string
		for i := 0; i < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if r == utf8.RuneError {
					return nil, false
				}
				if unicode.SimpleFold(r) != r && !mode.join(modeExact) {
					return nil, false
				}
				out = append(out, string(r))
			}
		}
		return out, len(out) > 0
	case syntax.OpCapture:
		return literalSet(re.Sub[0], mode, expand)
	case syntax.OpQuest:
		sub, ok := literalSet(re.Sub[0], mode, expand)
		if !ok || len(sub) >= maxLiteralSet {
			return nil, false
		}
		return append(sub, ""), true
	case syntax.OpConcat:
		out := []string{""}
		for _, s := range re.Sub {
			sub, ok := literalSet(s, mode, expand)
			if !ok || len(out)*len(sub) > maxLiteralSet {
				return nil, false
			}
			next := make([]string, 0, len(out)*len(sub))
			for _, a := range out {
				for _, b := range sub {
					next = append(next, a+b)
				}
			}
			out = next
		}
		return out, true
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			sub, ok := literalSet(s, mode, expand)
			if !ok || len(out)+len(sub) > maxLiteralSet {
				return nil, false
			}
			out = append(out, sub...)
		}
		return out, true
	}
	return nil, false
}
