package pipeline

import (
	"bytes"
	"encoding/binary"
)

// literal is a byte string searched for in lines. The search looks for its
// rarest byte (by how often bytes occur in log text) and checks the rest
// around each hit, which skips further than looking for a first byte that
// is a space.
type literal struct {
	b    []byte
	rare int // index in b of the byte searched for
	// word and mask hold a literal of at most 8 bytes as a little-endian
	// word, so that a hit with 8 bytes of line from its start is checked
	// with one load and compare instead of a call.
	word, mask uint64
}

func newLiteral(s string) literal {
	l := literal{b: []byte(s)}
	for i := range l.b {
		if byteCommonness(l.b[i]) < byteCommonness(l.b[l.rare]) {
			l.rare = i
		}
	}
	if len(l.b) <= 8 {
		for i, c := range l.b {
			l.word |= uint64(c) << (8 * i)
			l.mask |= 0xff << (8 * i)
		}
	}
	return l
}

// byteCommonness ranks bytes by how often they occur in log lines: letters,
// digits and spaces first, then the punctuation of numbers, paths and
// key=value pairs, then the rest.
func byteCommonness(c byte) int {
	switch {
	case c == ' ':
		return 5
	case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return 4
	case c >= 'A' && c <= 'Z':
		return 3
	case c == '.' || c == '/' || c == ':' || c == '-' || c == '_' || c == '=' || c == ',':
		return 2
	}
	return 1
}

// index returns the position of the leftmost occurrence of l in s, or -1
// (and -1 for the empty literal, which ends no capture: the last capture
// of a pattern takes the rest of the line).
func (l *literal) index(s []byte) int { return l.indexFrom(s, l.rare) }

// indexFrom is index with the search for the rare byte starting at from
// (at least l.rare): a caller that has looked at the hits before from
// goes on from there.
func (l *literal) indexFrom(s []byte, from int) int {
	n := len(l.b)
	switch n {
	case 0:
		return -1
	case 1:
		return bytes.IndexByte(s, l.b[0])
	}
	c, k := l.b[l.rare], l.rare
	// Hits of the rare byte come in order of where the literal would
	// start, so the first full match is the leftmost. A byte that is
	// not rare in these lines after all (many hits that fail) hands over
	// to bytes.Index, whose search has no bad cases.
	fails := 0
	for from < len(s) {
		if fails > 4+(from>>4) {
			j := bytes.Index(s[from-k:], l.b)
			if j < 0 {
				return -1
			}
			return from - k + j
		}
		i := bytes.IndexByte(s[from:], c)
		if i < 0 {
			return -1
		}
		start := from + i - k
		switch {
		case start+8 <= len(s) && l.mask != 0:
			if binary.LittleEndian.Uint64(s[start:])&l.mask == l.word {
				return start
			}
		case start+n > len(s):
			return -1
		case string(s[start:start+n]) == string(l.b):
			return start
		}
		fails++
		from += i + 1
	}
	return -1
}
