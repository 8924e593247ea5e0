package pipeline

import (
	"bytes"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Case-insensitive search with the semantics of regexp's (?i): runes match
// when they are in the same Unicode simple-fold orbit. Most needles are
// ASCII, and most ASCII letters fold only to their other ASCII case, so the
// common path is a byte search that never decodes UTF-8. Two ASCII letters
// have non-ASCII partners, k (U+212A KELVIN SIGN) and s (U+017F LONG S);
// needles containing them fall back to a rune-wise scan when the ASCII
// search fails on a line holding non-ASCII bytes.

// exoticASCII lists, for ASCII bytes whose fold orbit leaves ASCII, the
// UTF-8 encodings of their non-ASCII partners.
var exoticASCII [128][][]byte

func init() {
	for c := rune(0); c < 128; c++ {
		for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				exoticASCII[c] = append(exoticASCII[c], []byte(string(f)))
			}
		}
	}
}

// byteRarity is a rough frequency rank of bytes in log text: lower is
// rarer. The search anchors on the rarest byte of the needle.
var byteRarity [256]uint8

func init() {
	for i := range byteRarity {
		byteRarity[i] = 20 // punctuation, control and non-ASCII bytes
	}
	for c := '0'; c <= '9'; c++ {
		byteRarity[c] = 40
	}
	// Approximate English letter frequency, both cases (a folded search
	// looks for both).
	freq := "etaoinsrhldcumfpgwybvkxjqz"
	for i, c := range freq {
		r := uint8(90 - 3*i)
		byteRarity[c] = r
		byteRarity[c-32] = r
	}
	byteRarity[' '] = 100
	byteRarity['='] = 30
	byteRarity[':'] = 35
	byteRarity['.'] = 35
	byteRarity['/'] = 30
	byteRarity['-'] = 30
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldNeedle is a compiled case-insensitive needle.
type foldNeedle struct {
	lower []byte // the needle with ASCII letters lowered
	runes []rune // for the rune-wise scan
	ascii bool
	// exotic holds the non-ASCII fold partners of the needle's letters
	// (K for k, ſ for s): only a line containing one of them can match
	// where the ASCII search fails.
	exotic [][]byte
	anchor int  // index of the rarest byte
	a0, a1 byte // the anchor byte in both cases
}

func newFoldNeedle(s string) *foldNeedle {
	n := &foldNeedle{runes: []rune(s), ascii: true}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			n.ascii = false
		} else {
			for _, e := range exoticASCII[c] {
				if !slices.ContainsFunc(n.exotic, func(x []byte) bool { return bytes.Equal(x, e) }) {
					n.exotic = append(n.exotic, e)
				}
			}
		}
		n.lower = append(n.lower, lowerASCII(c))
	}
	if len(n.lower) > 0 {
		for i, c := range n.lower {
			if byteRarity[c] < byteRarity[n.lower[n.anchor]] {
				n.anchor = i
			}
		}
		n.a0 = n.lower[n.anchor]
		n.a1 = n.a0
		if n.a0 >= 'a' && n.a0 <= 'z' {
			n.a1 = n.a0 - ('a' - 'A')
		}
	}
	return n
}

// match reports whether line contains the needle under case folding.
func (n *foldNeedle) match(line []byte) bool {
	if !n.ascii {
		return containsFoldRunes(line, n.runes)
	}
	if n.indexASCII(line) >= 0 {
		return true
	}
	for _, e := range n.exotic {
		if bytes.Contains(line, e) {
			return containsFoldRunes(line, n.runes)
		}
	}
	return false
}

// indexASCII finds the needle in s, comparing ASCII letters without case.
// It jumps between occurrences of the anchor byte with bytes.IndexByte,
// remembering the next position of each case so that no byte is scanned
// twice for the same value.
func (n *foldNeedle) indexASCII(s []byte) int {
	m := len(n.lower)
	if m == 0 {
		return 0
	}
	if len(s) < m {
		return -1
	}
	k := n.anchor
	last := len(s) - m + k // last index where the anchor can sit
	next0, next1 := -1, -1 // next occurrence at or after pos; -1 unknown
	if n.a0 == n.a1 {
		next1 = len(s) // never
	}
	for pos := k; pos <= last; {
		if next0 < pos {
			if i := bytes.IndexByte(s[pos:last+1], n.a0); i >= 0 {
				next0 = pos + i
			} else {
				next0 = len(s)
			}
		}
		if next1 < pos {
			if i := bytes.IndexByte(s[pos:last+1], n.a1); i >= 0 {
				next1 = pos + i
			} else {
				next1 = len(s)
			}
		}
		p := min(next0, next1)
		if p > last {
			return -1
		}
		start := p - k
		if equalFoldASCII(s[start:start+m], n.lower) {
			return start
		}
		pos = p + 1
	}
	return -1
}

// equalFoldASCII compares s with a lowered needle.
func equalFoldASCII(s, lower []byte) bool {
	for i, c := range lower {
		if lowerASCII(s[i]) != c {
			return false
		}
	}
	return true
}

// containsFoldRunes is the exact (?i) containment test: at every rune
// boundary of line (as regexp decodes it, an invalid byte being one
// U+FFFD), compare rune by rune under simple folding.
func containsFoldRunes(line []byte, needle []rune) bool {
	if len(needle) == 0 {
		return true
	}
	for i := 0; i < len(line); {
		if matchFoldAt(line[i:], needle) {
			return true
		}
		_, w := utf8.DecodeRune(line[i:])
		i += w
	}
	return false
}

func matchFoldAt(s []byte, needle []rune) bool {
	for _, nr := range needle {
		if len(s) == 0 {
			return false
		}
		r, w := utf8.DecodeRune(s)
		if r != nr && !foldEqual(r, nr) {
			return false
		}
		s = s[w:]
	}
	return true
}

func foldEqual(a, b rune) bool {
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}

// foldFilter is |~ "(?i)literal".
type foldFilter struct{ n *foldNeedle }

func (f foldFilter) Match(line []byte) bool { return f.n.match(line) }

// foldAnyFilter is |~ "(?i)(a|b|c)".
type foldAnyFilter struct{ ns []*foldNeedle }

func (f foldAnyFilter) Match(line []byte) bool {
	for _, n := range f.ns {
		if n.match(line) {
			return true
		}
	}
	return false
}
