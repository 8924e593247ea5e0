package logql

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Needle is a substring that a line must contain.
type Needle struct {
	Text []byte
	// Fold asks for case-insensitive containment with Unicode simple case
	// folding, exactly as regexp's (?i) matches: rune by rune, where each
	// rune may be any member of its fold orbit (so "k" also stands for
	// U+212A KELVIN SIGN and "s" for U+017F LONG S). Otherwise containment
	// is byte for byte.
	Fold bool
}

// Clause is a disjunction: a line that passes contains at least one needle.
type Clause []Needle

// Analysis bounds: sets of exact strings and clauses stay small, so that
// analysis is cheap and clauses stay useful to a substring filter.
const (
	maxExactSet   = 16
	maxClassRunes = 8
	maxClauseSize = 32
)

// RequiredNeedles returns, for the line filters of a log query, a
// conjunction of clauses: every line that passes those filters contains at
// least one needle of every clause. A planner may skip a chunk whose
// substring filter rules out every needle of some clause.
//
// The analysis is sound first: a needle is only claimed when every
// matching line must contain it. Negated filters and ip() contribute
// nothing; |= contributes its strings, |~ the literals its regexp requires,
// |> the literal parts of its pattern. Filters after a stage that rewrites
// the line (line_format, decolorize, unpack) are ignored. Clauses with a
// needle shorter than minLen bytes are dropped.
func RequiredNeedles(sel *LogSelectorExpr, minLen int) []Clause {
	minLen = max(minLen, 1)
	var out []clause
	for _, st := range sel.Stages {
		switch s := st.(type) {
		case *LineFilter:
			out = append(out, lineFilterClauses(s, minLen)...)
		case *LineFormat, *Decolorize, *UnpackParser:
			return exportClauses(dedupeClauses(out))
		}
	}
	return exportClauses(dedupeClauses(out))
}

// RegexpNeedles returns the clauses that every line matched by the line
// filter regexp re satisfies (see RequiredNeedles).
func RegexpNeedles(re string, minLen int) ([]Clause, error) {
	cs, err := regexpClauses(re, max(minLen, 1))
	if err != nil {
		return nil, err
	}
	return exportClauses(dedupeClauses(cs)), nil
}

// PatternNeedles returns the clauses of a |> pattern: each literal part
// long enough is required.
func PatternNeedles(pattern string, minLen int) ([]Clause, error) {
	p, err := ParsePattern(pattern)
	if err != nil {
		return nil, err
	}
	return exportClauses(dedupeClauses(patternClauses(p, max(minLen, 1)))), nil
}

type needle struct {
	s    string
	fold bool
}

type clause []needle

func lineFilterClauses(f *LineFilter, minLen int) []clause {
	if f.Op.Negated() {
		return nil
	}
	switch f.Op {
	case LineContains:
		c := make(clause, 0, len(f.Values))
		for _, v := range f.Values {
			if v.IP || len(v.Value) < minLen {
				return nil
			}
			c = append(c, needle{s: v.Value})
		}
		return []clause{c}
	case LineMatchRegexp, LineMatchPattern:
		per := make([][]clause, 0, len(f.Values))
		for _, v := range f.Values {
			var cs []clause
			if f.Op == LineMatchRegexp {
				cs, _ = regexpClauses(v.Value, minLen)
			} else if p, err := ParsePattern(v.Value); err == nil {
				cs = patternClauses(p, minLen)
			}
			per = append(per, cs)
		}
		if len(per) == 1 {
			return per[0]
		}
		// Alternatives: each contributes one clause, and the line
		// satisfies at least one of them.
		if c := unionBest(per); c != nil {
			return []clause{c}
		}
	}
	return nil
}

func patternClauses(p *Pattern, minLen int) []clause {
	var cs []clause
	for _, lit := range p.Literals() {
		if len(lit) >= minLen {
			cs = append(cs, clause{{s: lit}})
		}
	}
	return cs
}

// regexpClauses analyses a line filter regexp, which runs with . matching
// newlines.
func regexpClauses(re string, minLen int) ([]clause, error) {
	r, err := syntax.Parse("(?s)"+re, syntax.Perl)
	if err != nil {
		return nil, err
	}
	a := reAnalyzer{minLen: minLen}
	return a.finalize(a.analyze(r.Simplify())), nil
}

// reInfo is what is known of every string a regexp node matches: with exact
// set, the match equals one of the strings (under folding when fold); and
// the match contains a needle of each clause.
type reInfo struct {
	exact   []string
	fold    bool
	clauses []clause
}

type reAnalyzer struct{ minLen int }

var emptyExact = reInfo{exact: []string{""}}

func (a *reAnalyzer) analyze(re *syntax.Regexp) reInfo {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		// Zero-width: the match itself is empty.
		return emptyExact
	case syntax.OpLiteral:
		return a.literal(re)
	case syntax.OpCharClass:
		return charClass(re)
	case syntax.OpCapture:
		return a.analyze(re.Sub[0])
	case syntax.OpQuest:
		sub := a.analyze(re.Sub[0])
		if sub.exact != nil && len(sub.exact) < maxExactSet {
			return reInfo{exact: appendUnique(slices.Clone(sub.exact), ""), fold: sub.fold}
		}
		return reInfo{}
	case syntax.OpPlus:
		return reInfo{clauses: a.finalize(a.analyze(re.Sub[0]))}
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return reInfo{clauses: a.finalize(a.analyze(re.Sub[0]))}
		}
		return reInfo{}
	case syntax.OpConcat:
		return a.concat(re.Sub)
	case syntax.OpAlternate:
		return a.alternate(re.Sub)
	}
	// Star, any char, large classes, no-match: nothing is required.
	return reInfo{}
}

// literal handles a literal run. U+FFFD is left out: regexp matches it
// against any invalid UTF-8 byte, so its encoding need not be in the line.
func (a *reAnalyzer) literal(re *syntax.Regexp) reInfo {
	fold := re.Flags&syntax.FoldCase != 0 && slices.ContainsFunc(re.Rune, hasFoldVariants)
	if !slices.Contains(re.Rune, utf8.RuneError) {
		return reInfo{exact: []string{string(re.Rune)}, fold: fold}
	}
	var info reInfo
	for _, piece := range strings.Split(string(re.Rune), string(utf8.RuneError)) {
		if len(piece) >= a.minLen {
			info.clauses = append(info.clauses, clause{{s: piece, fold: fold}})
		}
	}
	return info
}

func hasFoldVariants(r rune) bool { return unicode.SimpleFold(r) != r }

func charClass(re *syntax.Regexp) reInfo {
	n := 0
	for i := 0; i < len(re.Rune); i += 2 {
		lo, hi := re.Rune[i], re.Rune[i+1]
		if lo <= utf8.RuneError && utf8.RuneError <= hi {
			return reInfo{}
		}
		n += int(hi-lo) + 1
		if n > maxClassRunes {
			return reInfo{}
		}
	}
	exact := make([]string, 0, n)
	for i := 0; i < len(re.Rune); i += 2 {
		for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
			exact = append(exact, string(r))
		}
	}
	if len(exact) == 0 {
		return reInfo{} // matches nothing
	}
	return reInfo{exact: exact}
}

// concat builds exact strings across adjacent parts while the set stays
// small, and turns each maximal run into a clause where it has to stop.
func (a *reAnalyzer) concat(subs []*syntax.Regexp) reInfo {
	var out reInfo
	cur, curFold := []string{""}, false
	whole := true // every part so far was exact and nothing was flushed
	flush := func() {
		if c := a.exactClause(cur, curFold); c != nil {
			out.clauses = append(out.clauses, c)
		}
		cur, curFold = []string{""}, false
		whole = false
	}
	for _, sub := range subs {
		info := a.analyze(sub)
		out.clauses = append(out.clauses, info.clauses...)
		if info.exact == nil {
			flush()
			continue
		}
		if len(cur)*len(info.exact) > maxExactSet {
			flush()
			cur, curFold = slices.Clone(info.exact), info.fold
			continue
		}
		next := make([]string, 0, len(cur)*len(info.exact))
		for _, x := range cur {
			for _, y := range info.exact {
				next = appendUnique(next, x+y)
			}
		}
		cur, curFold = next, curFold || info.fold
	}
	if whole {
		out.exact, out.fold = cur, curFold
		return out
	}
	flush()
	return out
}

func (a *reAnalyzer) alternate(subs []*syntax.Regexp) reInfo {
	infos := make([]reInfo, len(subs))
	allExact := true
	for i, sub := range subs {
		infos[i] = a.analyze(sub)
		allExact = allExact && infos[i].exact != nil
	}
	if allExact {
		var exact []string
		fold := false
		for _, info := range infos {
			for _, s := range info.exact {
				exact = appendUnique(exact, s)
			}
			fold = fold || info.fold
		}
		if len(exact) <= maxExactSet {
			return reInfo{exact: exact, fold: fold}
		}
	}
	per := make([][]clause, len(infos))
	for i, info := range infos {
		per[i] = a.finalize(info)
	}
	if c := unionBest(per); c != nil {
		return reInfo{clauses: []clause{c}}
	}
	return reInfo{}
}

// finalize lists everything known of a node as clauses.
func (a *reAnalyzer) finalize(info reInfo) []clause {
	cs := info.clauses
	if c := a.exactClause(info.exact, info.fold); c != nil {
		cs = append(slices.Clip(cs), c)
	}
	return cs
}

// exactClause turns an exact set into a clause; it has none when any
// string is empty or too short to be useful.
func (a *reAnalyzer) exactClause(exact []string, fold bool) clause {
	if len(exact) == 0 {
		return nil
	}
	c := make(clause, 0, len(exact))
	for _, s := range exact {
		if len(s) < a.minLen {
			return nil
		}
		c = append(c, needle{s: s, fold: fold})
	}
	return c
}

// unionBest combines alternatives: from each one's clauses it takes the
// most selective and returns their union, or nil when some alternative
// requires nothing.
func unionBest(per [][]clause) clause {
	var out clause
	for _, cs := range per {
		if len(cs) == 0 {
			return nil
		}
		best := cs[0]
		for _, c := range cs[1:] {
			if betterClause(c, best) {
				best = c
			}
		}
		for _, n := range best {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	if len(out) > maxClauseSize {
		return nil
	}
	return out
}

// betterClause prefers the clause whose shortest needle is longer, then the
// one with fewer needles.
func betterClause(a, b clause) bool {
	ma, mb := minNeedle(a), minNeedle(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minNeedle(c clause) int {
	m := -1
	for _, n := range c {
		if m < 0 || len(n.s) < m {
			m = len(n.s)
		}
	}
	return m
}

func appendUnique(ss []string, s string) []string {
	if slices.Contains(ss, s) {
		return ss
	}
	return append(ss, s)
}

func dedupeClauses(cs []clause) []clause {
	var out []clause
	seen := map[string]bool{}
	for _, c := range cs {
		if len(c) == 0 {
			continue
		}
		keys := make([]string, len(c))
		for i, n := range c {
			keys[i] = n.s
			if n.fold {
				keys[i] = "\x01" + n.s
			} else {
				keys[i] = "\x00" + n.s
			}
		}
		slices.Sort(keys)
		k := strings.Join(keys, "\xff")
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, c)
	}
	return out
}

// minimizeClause drops a needle when another one of the clause is a
// substring of it and implied by it: a line containing "errorerror"
// contains "error". An exact needle is not implied by a folded one.
func minimizeClause(c clause) clause {
	out := c[:0:0]
	for i, b := range c {
		implied := false
		for j, a := range c {
			if i == j || !(a.fold || !b.fold) || !strings.Contains(b.s, a.s) {
				continue
			}
			// Of two equal needles keep the first.
			if a.s != b.s || a.fold != b.fold || j < i {
				implied = true
				break
			}
		}
		if !implied {
			out = append(out, b)
		}
	}
	return out
}

// lowerFold writes folded needles in lower case where the lower-case rune
// is in the same fold orbit (unicode.ToLower maps U+0130 to "i", which
// (?i) does not match).
func lowerFold(s string) string {
	return strings.Map(func(r rune) rune {
		if l := unicode.ToLower(r); l != r && foldsTo(r, l) {
			return l
		}
		return r
	}, s)
}

func foldsTo(a, b rune) bool {
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}

func exportClauses(cs []clause) []Clause {
	if len(cs) == 0 {
		return nil
	}
	out := make([]Clause, len(cs))
	for i, c := range cs {
		c = minimizeClause(c)
		out[i] = make(Clause, len(c))
		for j, n := range c {
			text := n.s
			if n.fold {
				text = lowerFold(text)
			}
			out[i][j] = Needle{Text: []byte(text), Fold: n.fold}
		}
	}
	return out
}
