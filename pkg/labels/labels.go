// Package labels is the label set that names a stream, in the one canonical
// form (sorted by name, names unique) that the chunk format, the store, the
// ingest path and the query engine all share.
package labels

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// Label is one name/value pair.
type Label struct {
	Name  string
	Value string
}

// Labels is a label set sorted by name with unique names. Functions in this
// package return sets in that form; code that builds a Labels by hand must
// call Sort.
type Labels []Label

// New builds a set from name, value, name, value... pairs. It panics on an
// odd count because that is a programming error, never input.
func New(pairs ...string) Labels {
	if len(pairs)%2 != 0 {
		panic("labels.New: odd number of arguments")
	}
	ls := make(Labels, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		ls = append(ls, Label{Name: pairs[i], Value: pairs[i+1]})
	}
	return ls.Sort()
}

// FromMap builds a sorted set from a map.
func FromMap(m map[string]string) Labels {
	ls := make(Labels, 0, len(m))
	for k, v := range m {
		ls = append(ls, Label{Name: k, Value: v})
	}
	return ls.Sort()
}

// Sort orders the set by name in place and drops later duplicates of a name,
// returning the (possibly shorter) set.
func (ls Labels) Sort() Labels {
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	out := ls[:0]
	for i, l := range ls {
		if i > 0 && l.Name == ls[i-1].Name {
			continue
		}
		out = append(out, l)
	}
	return out
}

// Get returns the value of name, or "" when the set has no such label.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Has reports whether the set has a label called name.
func (ls Labels) Has(name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// Map returns the set as a map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// Equal reports whether two sets hold the same pairs.
func (ls Labels) Equal(o Labels) bool {
	if len(ls) != len(o) {
		return false
	}
	for i := range ls {
		if ls[i] != o[i] {
			return false
		}
	}
	return true
}

// Copy returns a set that shares no memory with ls.
func (ls Labels) Copy() Labels {
	out := make(Labels, len(ls))
	copy(out, ls)
	return out
}

// String formats the set the way Loki and Prometheus print a stream:
// {a="1", b="2"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.Grow(ls.size())
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

func (ls Labels) size() int {
	n := 2
	for _, l := range ls {
		n += len(l.Name) + len(l.Value) + 5
	}
	return n
}

// Hash is a stable 64-bit hash of the set; the store uses it as a stream id.
// Separator bytes that cannot occur in a valid name keep {a="bc"} and
// {ab="c"} apart.
func (ls Labels) Hash() uint64 {
	d := xxhash.New()
	for _, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{0xff})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{0xfe})
	}
	return d.Sum64()
}

// ValidName reports whether s is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// Validate checks the rules every stored set must follow: valid names,
// UTF-8 values, no duplicate names, sorted.
func (ls Labels) Validate() error {
	for i, l := range ls {
		if !ValidName(l.Name) {
			return fmt.Errorf("invalid label name %q", l.Name)
		}
		if !utf8.ValidString(l.Value) {
			return fmt.Errorf("label %s has a value that is not valid UTF-8", l.Name)
		}
		if i > 0 && ls[i-1].Name >= l.Name {
			if ls[i-1].Name == l.Name {
				return fmt.Errorf("duplicate label name %q", l.Name)
			}
			return errors.New("labels are not sorted")
		}
	}
	return nil
}

// Parse reads a stream's label set as Loki's push API carries it:
// {name="value", other="x"}. Values are double-quoted Go strings. The result
// is sorted; a duplicate name is an error, as Loki makes it.
func Parse(s string) (Labels, error) {
	p := parser{s: s}
	ls, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("parse labels %q: %w", truncate(s, 128), err)
	}
	return ls, nil
}

type parser struct {
	s   string
	pos int
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
		p.pos++
	}
}

func (p *parser) expect(c byte) error {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return fmt.Errorf("at %d: expected %q, found end of input", p.pos, c)
	}
	if p.s[p.pos] != c {
		return fmt.Errorf("at %d: expected %q, found %q", p.pos, c, p.s[p.pos])
	}
	p.pos++
	return nil
}

func (p *parser) parse() (Labels, error) {
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	var ls Labels
	p.skipSpace()
	if p.pos < len(p.s) && p.s[p.pos] == '}' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			start := p.pos
			for p.pos < len(p.s) && isNameByte(p.s[p.pos], p.pos > start) {
				p.pos++
			}
			name := p.s[start:p.pos]
			if name == "" {
				return nil, fmt.Errorf("at %d: expected a label name", start)
			}
			if err := p.expect('='); err != nil {
				return nil, err
			}
			p.skipSpace()
			value, err := p.quoted()
			if err != nil {
				return nil, err
			}
			ls = append(ls, Label{Name: name, Value: value})
			p.skipSpace()
			if p.pos < len(p.s) && p.s[p.pos] == ',' {
				p.pos++
				p.skipSpace()
				if p.pos < len(p.s) && p.s[p.pos] == '}' { // trailing comma
					p.pos++
					break
				}
				continue
			}
			if err := p.expect('}'); err != nil {
				return nil, err
			}
			break
		}
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("at %d: unexpected text after '}'", p.pos)
	}
	n := len(ls)
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	for i := 1; i < n; i++ {
		if ls[i].Name == ls[i-1].Name {
			return nil, fmt.Errorf("duplicate label name %q", ls[i].Name)
		}
	}
	return ls, nil
}

func isNameByte(c byte, notFirst bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (notFirst && c >= '0' && c <= '9')
}

func (p *parser) quoted() (string, error) {
	if p.pos >= len(p.s) || p.s[p.pos] != '"' {
		return "", fmt.Errorf("at %d: expected a double-quoted value", p.pos)
	}
	start := p.pos
	p.pos++
	escaped := false
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			raw := p.s[start:p.pos]
			if !strings.ContainsRune(raw, '\\') {
				return raw[1 : len(raw)-1], nil
			}
			v, err := strconv.Unquote(raw)
			if err != nil {
				return "", fmt.Errorf("at %d: bad escape in value %s", start, truncate(raw, 64))
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("at %d: unterminated string", start)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Compare orders label sets by their pairs, name first; it gives query
// results a stable stream order.
func Compare(a, b Labels) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
