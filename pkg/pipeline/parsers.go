package pipeline

import (
	"bytes"
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
	s     *regexpStage
	names []*labelName
	idx   []int
}

func (s *regexpStage) instance() stageInstance {
	in := &regexpInst{s: s, names: make([]*labelName, len(s.names))}
	for i, n := range s.names {
		if n != "" {
			in.names[i] = newLabelName(n, s.hints)
		}
	}
	return in
}

func (in *regexpInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	if in.s.hints.skip() {
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
	parts []patternPart
	hints *hints
	// lastWanted is the index in parts of the last capture the query
	// uses (-1: none); matching stops after it, since what follows can
	// set no label anyone reads.
	lastWanted int
}

type patternPart struct {
	lit     []byte
	capture *labelName // nil for literals and <_>
	isCap   bool
}

func (s *patternStage) instance() stageInstance {
	in := &patternInst{hints: s.hints, lastWanted: -1}
	for i, p := range s.parts {
		pp := patternPart{isCap: p.Capture}
		if p.Capture {
			if p.Text != "_" {
				pp.capture = newLabelName(p.Text, s.hints)
				if pp.capture.want {
					in.lastWanted = i
				}
			}
		} else {
			pp.lit = []byte(p.Text)
		}
		in.parts = append(in.parts, pp)
	}
	return in
}

func (in *patternInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	if len(line) == 0 || in.lastWanted < 0 || in.hints.skip() {
		return line, true
	}
	parts := in.parts[:in.lastWanted+1]
	rest := line
	if !parts[0].isCap {
		if !bytes.HasPrefix(rest, parts[0].lit) {
			return line, true
		}
		rest = rest[len(parts[0].lit):]
		parts = parts[1:]
	}
	// parts alternates capture, literal, capture, ... and ends with the
	// last wanted capture, whose end is still found by the literal after
	// it in the full pattern.
	for len(parts) > 0 {
		c := parts[0]
		var lit []byte
		if len(parts) > 1 {
			lit = parts[1].lit
		} else if next := in.lastWanted + 1; next < len(in.parts) {
			lit = in.parts[next].lit
		}
		if lit == nil {
			in.capture(st, c, rest)
			break
		}
		i := bytes.Index(rest, lit)
		if i < 0 {
			in.capture(st, c, rest)
			break
		}
		in.capture(st, c, rest[:i])
		if len(parts) == 1 {
			break
		}
		rest = rest[i+len(lit):]
		parts = parts[2:]
	}
	return line, true
}

func (in *patternInst) capture(st *entryState, p patternPart, v []byte) {
	if p.capture == nil || !p.capture.want {
		return
	}
	st.setParsed(p.capture, st.validValue(bytesView(v)))
}
