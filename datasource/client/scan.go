package client

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
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
	// arena hands out the label sets of entries from shared blocks,
	// entries the entries of streams.
	arena   []Label
	entries []Entry
	// strs holds the strings that had to be decoded, in shared blocks.
	strs *strings.Builder
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

// str reads a string. A string without escapes and of valid UTF-8 is
// cut from the input; any other is decoded in the same pass that finds
// its end.
func (s *scanner) str() (string, bool) {
	if !s.expect('"') {
		return "", false
	}
	start := s.i
	c, high := s.scanRun()
	if c == '"' && (high&msb8 == 0 || utf8.ValidString(s.b[start:s.i])) {
		s.i++
		return s.b[start : s.i-1], true
	}
	w := s.out(s.i - start)
	from := w.Len()
	for {
		writeRun(w, s.b[start:s.i], high)
		switch {
		case s.i >= len(s.b):
			return "", s.fail("unterminated string")
		case c == '"':
			s.i++
			return w.String()[from:], true
		case c == '\\':
			if !s.unescape(w) {
				return "", false
			}
		default:
			return "", s.fail("control character in string")
		}
		start = s.i
		c, high = s.scanRun()
	}
}

// name reads an object key.
func (s *scanner) name() (string, bool) { return s.str() }

// Eight bytes at a time: the bytes a string scan stops at, and the high
// bits of non-ASCII bytes.
const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// stopBytes flags, in their high bits, the bytes of x that are a quote,
// a backslash or a control character. Borrows may flag bytes above a
// flagged one; the lowest flag is always exact.
func stopBytes(x uint64) uint64 {
	q := x ^ (lsb8 * '"')
	bs := x ^ (lsb8 * '\\')
	return ((q-lsb8)&^q | (bs-lsb8)&^bs | (x-lsb8*0x20)&^x) & msb8
}

// load8 reads eight bytes of b at i, little endian.
func load8(b string, i int) uint64 {
	b = b[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// scanRun steps to the next quote, backslash or control character of a
// string and returns it (0 at the end of the input), with the or of the
// bytes passed, whose high bits tell whether they were all ASCII.
func (s *scanner) scanRun() (byte, uint64) {
	var high uint64
	for {
		for s.i+8 <= len(s.b) {
			x := load8(s.b, s.i)
			if m := stopBytes(x); m != 0 {
				k := bits.TrailingZeros64(m) >> 3
				high |= x & (1<<(8*k) - 1)
				s.i += k
				return s.b[s.i], high
			}
			high |= x
			s.i += 8
		}
		if s.i >= len(s.b) {
			return 0, high
		}
		c := s.b[s.i]
		if special[c] {
			return c, high
		}
		high |= uint64(c)
		s.i++
	}
}

// strBytes steps over a string without decoding it and returns its
// contents between the quotes, and whether it has escapes.
func (s *scanner) strBytes() (raw string, escaped, ok bool) {
	if !s.expect('"') {
		return "", false, false
	}
	start := s.i
	for {
		c, _ := s.scanRun()
		switch {
		case s.i >= len(s.b):
			return "", false, s.fail("unterminated string")
		case c == '"':
			s.i++
			return s.b[start : s.i-1], escaped, true
		case c == '\\':
			escaped = true
			if !s.unescape(nil) {
				return "", false, false
			}
		default:
			return "", false, s.fail("control character in string")
		}
	}
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

// arenaChunk is the size of the blocks decoded strings are written to.
const arenaChunk = 32 << 10

// out returns the block decoded strings are written to, with room for
// n bytes. Strings cut from it stay valid: a strings.Builder never
// changes what it has handed out, and a string longer than the room
// left just moves the block.
func (s *scanner) out(n int) *strings.Builder {
	if s.strs == nil || s.strs.Cap()-s.strs.Len() < n+256 {
		s.strs = new(strings.Builder)
		s.strs.Grow(max(n+256, arenaChunk))
	}
	return s.strs
}

// writeRun writes a run of a string without escapes; invalid UTF-8
// becomes U+FFFD, a byte at a time, as encoding/json decodes it.
func writeRun(w *strings.Builder, run string, high uint64) {
	if high&msb8 == 0 || utf8.ValidString(run) {
		w.WriteString(run)
		return
	}
	for _, r := range run { // an invalid byte ranges as U+FFFD
		w.WriteRune(r)
	}
}

// unescape checks the escape at s.i, writes what it stands for to w
// unless w is nil, and steps over it. A lone surrogate becomes U+FFFD,
// as encoding/json decodes it.
func (s *scanner) unescape(w *strings.Builder) bool {
	if s.i+1 >= len(s.b) {
		return s.fail("unterminated escape")
	}
	c := s.b[s.i+1]
	switch c {
	case '"', '\\', '/':
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		if s.i+6 > len(s.b) {
			return s.fail("short \\u escape")
		}
		r, ok := hex4(s.b[s.i+2 : s.i+6])
		if !ok {
			return s.fail("invalid \\u escape")
		}
		s.i += 6
		if utf16.IsSurrogate(r) {
			// A pair when the next escape completes it, else U+FFFD.
			hi := r
			r = utf8.RuneError
			if s.i+6 <= len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				if lo, ok := hex4(s.b[s.i+2 : s.i+6]); ok {
					if d := utf16.DecodeRune(hi, lo); d != utf8.RuneError {
						r = d
						s.i += 6
					}
				}
			}
		}
		if w != nil {
			w.WriteRune(r)
		}
		return true
	default:
		return s.fail("invalid escape \\%c", c)
	}
	if w != nil {
		w.WriteByte(c)
	}
	s.i += 2
	return true
}

// hex4 reads the four hex digits of a \u escape.
func hex4(h string) (rune, bool) {
	r := rune(0)
	for i := 0; i < len(h); i++ {
		d := unhex(h[i])
		if d < 0 {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
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
	if n, ok := smallDecimal(raw); ok {
		return n, true
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, s.fail("timestamp %q is not Unix nanoseconds", raw)
	}
	return n, true
}

// smallDecimal reads up to 19 plain digits (Unix nanoseconds have 19)
// that fit an int64.
func smallDecimal(raw string) (int64, bool) {
	if len(raw) == 0 || len(raw) > 19 {
		return 0, false
	}
	n := uint64(0)
	for i := 0; i < len(raw); i++ {
		c := raw[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + uint64(c)
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}
