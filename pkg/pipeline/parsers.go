package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// regexpStage is `| regexp "re"`: each named group of the first match
// becomes a label (empty when the group did not take part); a line that
// does not match is left alone.
type regexpStage struct {
	re    *regexp.Regexp
	names []string // by group index, "" for unnamed groups
	hints *hints
}

func newRegexpStage(s *logql.RegexpParser, h *hints) (stage, error) {
	re, err := regexp.Compile(s.Regexp)
	if err != nil {
		return nil, fmt.Errorf("invalid regexp %q: %w", s.Regexp, err)
	}
	st := &regexpStage{re: re, names: re.SubexpNames(), hints: h}
	seen := map[string]bool{}
	for _, n := range st.names {
		if n == "" {
			continue
		}
		if !labels.ValidName(n) {
			return nil, fmt.Errorf("invalid extracted label name %q", n)
		}
		if isReserved(n) {
			return nil, fmt.Errorf("%s cannot be extracted", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("duplicate extracted label name %q", n)
		}
		seen[n] = true
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("regexp %q has no named group", s.Regexp)
	}
	return st, nil
}

type regexpInst struct {
	s      *regexpStage
	names  []*labelName
	wanted bool // some named group is a label the query reads
}

func (s *regexpStage) instance() stageInstance {
	in := &regexpInst{s: s, names: make([]*labelName, len(s.names))}
	for i, n := range s.names {
		if n != "" {
			in.names[i] = newLabelName(n, s.hints)
			in.wanted = in.wanted || in.names[i].want
		}
	}
	return in
}

func (in *regexpInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	if !in.wanted || in.s.hints.skip() {
		// The parser never drops a line: with no label anyone reads it
		// has nothing to do.
		return line, true
	}
	m := in.s.re.FindSubmatchIndex(line)
	if m == nil {
		return line, true
	}
	for g, k := range in.names {
		if k == nil || !k.want {
			continue
		}
		var v string
		if a, b := m[2*g], m[2*g+1]; a >= 0 {
			v = st.validValue(bytesView(line[a:b]))
		}
		st.setParsed(k, v)
	}
	return line, true
}

// groupKey appends to dst what decides every label process sets on line:
// the wanted groups' values, each after its length (a group that did not
// take part sets "", as an empty one does), and nothing when the regexp
// did not match, which no match can give (there is a length at least).
func (in *regexpInst) groupKey(dst, line []byte) []byte {
	if !in.wanted || in.s.hints.skip() {
		return dst
	}
	m := in.s.re.FindSubmatchIndex(line)
	if m == nil {
		return dst
	}
	for g, k := range in.names {
		if k == nil || !k.want {
			continue
		}
		var v []byte
		if a, b := m[2*g], m[2*g+1]; a >= 0 {
			v = line[a:b]
		}
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// patternStage is `| pattern "..."` with Loki's matching rules: the
// pattern is anchored at the start of the line (a leading literal must be
// a prefix); each capture runs to the first occurrence of the literal that
// follows it; a capture whose literal is missing takes the rest of the line
// and ends the match; a final capture takes the rest of the line, and
// anything after a final literal is ignored. Captures may be empty. A line
// that fails early keeps the captures made so far.
type patternStage struct {
	parts []logql.PatternPart
	hints *hints
}

func newPatternStage(s *logql.PatternParser, h *hints) (stage, error) {
	p, err := logql.ParsePattern(s.Pattern)
	if err != nil {
		return nil, err
	}
	names := p.Names()
	if len(names) == 0 {
		return nil, fmt.Errorf("pattern %q has no named capture", s.Pattern)
	}
	for _, n := range names {
		if !labels.ValidName(n) {
			return nil, fmt.Errorf("invalid capture label name %q", n)
		}
		if isReserved(n) {
			return nil, fmt.Errorf("%s cannot be extracted", n)
		}
	}
	return &patternStage{parts: p.Parts, hints: h}, nil
}

type patternInst struct {
	hints *hints
	// prefix is the pattern's leading literal, which the line must start
	// with for any capture to be made.
	prefix []byte
	// steps are the captures up to the last one the query uses; matching
	// stops there, since what follows can set no label anyone reads.
	steps []patternStep
	// found holds the wanted captures of the line last matched.
	found []patternCapture
}

// patternStep is one capture and the literal that ends it.
type patternStep struct {
	end literal
	// one is the literal's byte when it is a single byte (most literals
	// of access-log patterns: a space, a quote), searched for inline: a
	// pattern walks several per line, and the call into literal.index
	// costs as much as such a short search; -1 otherwise.
	one  int
	name *labelName // nil for <_> and captures the query does not use
}

type patternCapture struct {
	name  *labelName
	value []byte
}

func (s *patternStage) instance() stageInstance {
	in := &patternInst{hints: s.hints}
	parts := s.parts
	if len(parts) > 0 && !parts[0].Capture {
		in.prefix = []byte(parts[0].Text)
		parts = parts[1:]
	}
	// parts now alternates capture, literal, capture, ...
	last := -1 // the last step whose capture is wanted
	for i := 0; i < len(parts); i += 2 {
		st := patternStep{one: -1}
		if i+1 < len(parts) {
			st.end = newLiteral(parts[i+1].Text)
			if len(st.end.b) == 1 {
				st.one = int(st.end.b[0])
			}
		}
		if n := parts[i].Text; n != "_" {
			st.name = newLabelName(n, s.hints)
			if !st.name.want {
				st.name = nil
			} else {
				last = len(in.steps)
			}
		}
		in.steps = append(in.steps, st)
	}
	in.steps = in.steps[:last+1]
	return in
}

func (in *patternInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	for _, c := range in.match(line) {
		st.setParsed(c.name, st.validValue(bytesView(c.value)))
	}
	return line, true
}

// match returns the wanted captures of line in pattern order. They are
// always a prefix of the wanted captures (a line that fails early keeps
// the captures made so far), so the values alone say which were found.
func (in *patternInst) match(line []byte) []patternCapture {
	found := in.found[:0]
	// len(in.prefix) is tested first: bytes.HasPrefix with an empty
	// prefix still calls into memequal, for every line.
	if len(line) == 0 || len(in.steps) == 0 || in.hints.skip() || len(in.prefix) > 0 && !bytes.HasPrefix(line, in.prefix) {
		return found
	}
	rest := line[len(in.prefix):]
	for i := range in.steps {
		s := &in.steps[i]
		var j int
		switch e := &s.end; {
		case s.one >= 0:
			j = bytes.IndexByte(rest, byte(s.one))
		case e.mask != 0 && e.rare < len(rest):
			// literal.index's most common case, inline: the first hit
			// of the rare byte is the literal, checked in one load (a
			// miss of the rare byte means no literal either). Otherwise
			// the search goes on from that hit.
			j = bytes.IndexByte(rest[e.rare:], e.b[e.rare])
			if j >= 0 && (j+8 > len(rest) || binary.LittleEndian.Uint64(rest[j:])&e.mask != e.word) {
				j = e.indexFrom(rest, e.rare+j)
			}
		default:
			j = e.index(rest)
		}
		if j < 0 {
			// The capture takes the rest of the line and the match ends.
			if s.name != nil {
				found = append(found, patternCapture{s.name, rest})
			}
			break
		}
		if s.name != nil {
			found = append(found, patternCapture{s.name, rest[:j]})
		}
		rest = rest[j+len(s.end.b):]
	}
	in.found = found
	return found
}

// groupKey appends to dst what decides every label process sets on line:
// the wanted captures' values, each after its length.
func (in *patternInst) groupKey(dst, line []byte) []byte {
	for _, c := range in.match(line) {
		dst = binary.AppendUvarint(dst, uint64(len(c.value)))
		dst = append(dst, c.value...)
	}
	return dst
}
