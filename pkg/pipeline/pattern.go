package pipeline

import (
	"bytes"
	"fmt"

	"github.com/logsift/logsift/pkg/logql"
)

// patternFilter is |> "pattern": the whole line must match, every capture
// standing for a non-empty run of any bytes and every literal for itself.
// So "<_> error <_>" needs " error " strictly inside the line, "" matches
// only the empty line and "<_>" any non-empty one.
//
// Matching is a glob match: a leading literal must be a prefix, a trailing
// literal a suffix, and each literal in between is taken at its leftmost
// position after the previous one plus one byte for the capture. Taking the
// leftmost position is never worse for what follows, so the greedy search
// finds a match whenever one exists.
type patternFilter struct {
	prefix, suffix []byte
	middle         []literal // literals strictly between captures
	captures       int
	literalOnly    bool // the pattern has no capture: the line must equal prefix
}

func newPatternFilter(s string) (*patternFilter, error) {
	p, err := logql.ParsePattern(s)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %w", s, err)
	}
	parts := p.Parts
	f := &patternFilter{}
	if len(parts) > 0 && !parts[0].Capture {
		f.prefix = []byte(parts[0].Text)
		parts = parts[1:]
	}
	if len(parts) == 0 {
		f.literalOnly = true
		return f, nil
	}
	if !parts[len(parts)-1].Capture {
		f.suffix = []byte(parts[len(parts)-1].Text)
		parts = parts[:len(parts)-1]
	}
	// parts now alternates capture, literal, ..., capture.
	for _, part := range parts {
		if part.Capture {
			f.captures++
		} else {
			f.middle = append(f.middle, newLiteral(part.Text))
		}
	}
	return f, nil
}

func (f *patternFilter) Match(line []byte) bool {
	if f.literalOnly {
		return bytes.Equal(line, f.prefix)
	}
	if !bytes.HasPrefix(line, f.prefix) {
		return false
	}
	end := len(line) - len(f.suffix)
	if end < len(f.prefix) || !bytes.HasSuffix(line, f.suffix) {
		return false
	}
	pos := len(f.prefix)
	for i := range f.middle {
		lit := &f.middle[i]
		// The capture before lit takes at least one byte.
		from := pos + 1
		if from > end {
			return false
		}
		j := lit.index(line[from:end])
		if j < 0 {
			return false
		}
		pos = from + j + len(lit.b)
	}
	// The last capture needs at least one byte before the suffix.
	return pos < end
}
