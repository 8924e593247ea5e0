package logql

import (
	"errors"
	"fmt"
	"strings"
)

// PatternPart is a literal or a capture of a pattern expression.
type PatternPart struct {
	// Text is the literal text, or the capture name ("_" for <_>).
	Text    string
	Capture bool
}

// Pattern is a parsed pattern expression as used by `| pattern` and the
// |> and !> line filters: literals and <name> captures, never two captures
// in a row. A `<` that does not open a valid <name> is literal text, so
// `<<from>>` is the literal `<`, the capture from and the literal `>`.
type Pattern struct {
	Parts []PatternPart
}

// Names returns the named captures in order, without <_>.
func (p *Pattern) Names() []string {
	var names []string
	for _, part := range p.Parts {
		if part.Capture && part.Text != "_" {
			names = append(names, part.Text)
		}
	}
	return names
}

// Literals returns the literal parts in order.
func (p *Pattern) Literals() []string {
	var lits []string
	for _, part := range p.Parts {
		if !part.Capture {
			lits = append(lits, part.Text)
		}
	}
	return lits
}

// ParsePattern parses a pattern expression and checks the rules shared by
// the parser stage and the line filters: no two consecutive captures and no
// name captured twice. The parser stage also needs a named capture; see
// validatePatternParser.
func ParsePattern(s string) (*Pattern, error) {
	p := &Pattern{}
	var lit strings.Builder
	seen := map[string]bool{}
	for i := 0; i < len(s); {
		if s[i] == '<' {
			j := i + 1
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			name := s[i+1 : j]
			if j < len(s) && s[j] == '>' && name != "" && isIdentStart(name[0]) {
				if lit.Len() > 0 {
					p.Parts = append(p.Parts, PatternPart{Text: lit.String()})
					lit.Reset()
				}
				if n := len(p.Parts); n > 0 && p.Parts[n-1].Capture {
					return nil, fmt.Errorf("invalid pattern: consecutive captures <%s><%s> must be separated by a literal", p.Parts[n-1].Text, name)
				}
				if name != "_" {
					if seen[name] {
						return nil, fmt.Errorf("invalid pattern: duplicate capture <%s>", name)
					}
					seen[name] = true
				}
				p.Parts = append(p.Parts, PatternPart{Text: name, Capture: true})
				i = j + 1
				continue
			}
		}
		lit.WriteByte(s[i])
		i++
	}
	if lit.Len() > 0 {
		p.Parts = append(p.Parts, PatternPart{Text: lit.String()})
	}
	return p, nil
}

func validatePatternParser(s string) error {
	p, err := ParsePattern(s)
	if err != nil {
		return err
	}
	if len(p.Names()) == 0 {
		return errors.New("invalid pattern: at least one named capture is required")
	}
	return nil
}
