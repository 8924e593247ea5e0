package client

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads the JSON the server answers with, in one pass and
// without reflection: a 1,000-line answer decodes in a fraction of the
// time encoding/json takes, which matters because every millisecond here
// is added to every query. It accepts exactly the JSON grammar; strings
// decode as encoding/json decodes them (invalid UTF-8 and lone surrogates
// become U+FFFD).
type scanner struct {
	// b is the input; strings without escapes are cut from it, so that a
	// line costs no allocation of its own.
	b     string
	i     int
	depth int
	err   error
	// arena hands out the label sets of entries from shared blocks.
	arena []Label
}

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
const maxDepth = 64

func newScanner(b string) *scanner {
	return &scanner{b: b}
}

func (s *scanner) fail(format string, args ...any) bool {
	if s.err == nil {
		s.err = fmt.Errorf("at byte %d: %s", s.i, fmt.Sprintf(format, args...))
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) bool {
	if s.peek() != c {
		if s.i >= len(s.b) {
			return s.fail("unexpected end, want %q", c)
		}
		return s.fail("unexpected %q, want %q", s.b[s.i], c)
	}
	s.i++
	return true
}

// literal consumes null, true or false.
func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || s.b[s.i:s.i+len(word)] != word {
		return s.fail("invalid literal")
	}
	s.i += len(word)
	return true
}

// null consumes a null if one comes next.
func (s *scanner) null() bool {
	if s.peek() == 'n' {
		return s.literal("null")
	}
	return false
}

// str reads a string.
func (s *scanner) str() (string, bool) {
	raw, escaped, ok := s.strBytes()
	if !ok {
		return "", false
	}
	if !escaped && utf8.ValidString(raw) {
		return raw, true
	}
	return unquote(raw), true
}

// name reads an object key.
func (s *scanner) name() (string, bool) { return s.str() }

// strBytes returns a string's contents between the quotes, and whether
// it has escapes.
func (s *scanner) strBytes() (string, bool, bool) {
	if !s.expect('"') {
		return "", false, false
	}
	start := s.i
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		if !special[c] {
			s.i++
			continue
		}
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return "", false, s.fail("unterminated escape")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return "", false, s.fail("short \\u escape")
				}
				for k := s.i + 2; k < s.i+6; k++ {
					if unhex(s.b[k]) < 0 {
						return "", false, s.fail("invalid \\u escape")
					}
				}
				s.i += 6
			default:
				return "", false, s.fail("invalid escape \\%c", s.b[s.i+1])
			}
		case c < 0x20:
			return "", false, s.fail("control character in string")
		default:
			s.i++
		}
	}
	return "", false, s.fail("unterminated string")
}

// special marks the bytes a string scan must stop at: the quote, the
// backslash and control characters.
var special = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unquote decodes a string's checked contents: escapes, and U+FFFD for
// invalid UTF-8 and lone surrogates, as encoding/json does.
func unquote(raw string) string {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' && c < utf8.RuneSelf {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' && raw[j] < utf8.RuneSelf {
				j++
			}
			out = append(out, raw[i:j]...)
			i = j
			continue
		}
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := rune(hex4(raw[i+2 : i+6]))
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if r2 := utf16.DecodeRune(r, rune(hex4(raw[i+2:i+6]))); r2 != utf8.RuneError {
							out = utf8.AppendRune(out, r2)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default: // " \ /
				out = append(out, raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(raw[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, raw[i:i+size]...)
			}
			i += size
		}
	}
	return string(out)
}

func hex4(b string) int {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// number returns a number's text.
func (s *scanner) number() (string, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	intStart := s.i
	if digits() == 0 {
		return "", s.fail("invalid number")
	}
	if s.b[intStart] == '0' && s.i-intStart > 1 {
		return "", s.fail("number with a leading zero")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return "", s.fail("invalid number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return "", s.fail("invalid number")
		}
	}
	return s.b[start:s.i], true
}

// object calls fn for each key; fn must consume the value.
func (s *scanner) object(fn func(key string) bool) bool {
	if !s.expect('{') {
		return false
	}
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deep")
	}
	defer func() { s.depth-- }()
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		k, ok := s.name()
		if !ok || !s.expect(':') || !fn(k) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return s.fail("want ',' or '}' in object")
		}
	}
}

// array calls fn for each element; fn must consume it.
func (s *scanner) array(fn func(i int) bool) bool {
	if !s.expect('[') {
		return false
	}
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deep")
	}
	defer func() { s.depth-- }()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for n := 0; ; n++ {
		if !fn(n) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return s.fail("want ',' or ']' in array")
		}
	}
}

// skip consumes any value.
func (s *scanner) skip() bool {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func(string) bool { return s.skip() })
	case c == '[':
		return s.array(func(int) bool { return s.skip() })
	case c == '"':
		_, _, ok := s.strBytes()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		_, ok := s.number()
		return ok
	case c == 0:
		return s.fail("unexpected end")
	default:
		return s.fail("unexpected %q", c)
	}
}

// span consumes a value and returns its text.
func (s *scanner) span() (string, bool) {
	s.ws()
	start := s.i
	if !s.skip() {
		return "", false
	}
	return s.b[start:s.i], true
}

// labels reads an object of strings into a sorted set; null is empty.
func (s *scanner) labels() (Labels, bool) {
	if s.null() {
		return nil, s.err == nil
	}
	if len(s.arena) == cap(s.arena) {
		s.arena = make([]Label, 0, 1024)
	}
	from := len(s.arena)
	sorted := true
	ok := s.object(func(k string) bool {
		v, ok := s.str()
		if !ok {
			return false
		}
		if n := len(s.arena); n > from && s.arena[n-1].Name >= k {
			sorted = false
		}
		s.arena = append(s.arena, Label{Name: k, Value: v})
		return true
	})
	if !ok {
		return nil, false
	}
	if len(s.arena) == from {
		return nil, true
	}
	// Capped, so that appending to one set cannot overwrite the next.
	ls := s.arena[from:len(s.arena):len(s.arena)]
	if !sorted {
		ls = normalizeLabels(slices.Clone(ls))
	}
	return ls, true
}

// end checks that only white space follows the value.
func (s *scanner) end() bool {
	if s.ws(); s.i < len(s.b) {
		return s.fail("data after the end of the value")
	}
	return true
}

func (s *scanner) error(what string) error {
	if s.err == nil {
		s.err = errors.New("invalid JSON")
	}
	return fmt.Errorf("decode %s: %w", what, s.err)
}

// timestamp reads a "<unix nanoseconds>" string.
func (s *scanner) timestamp() (int64, bool) {
	raw, escaped, ok := s.strBytes()
	if !ok {
		return 0, false
	}
	if escaped {
		return 0, s.fail("escaped timestamp")
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, s.fail("timestamp %q is not Unix nanoseconds", raw)
	}
	return n, true
}
