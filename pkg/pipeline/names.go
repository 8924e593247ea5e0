package pipeline

import (
	"strings"
	"unicode/utf8"
)

// labelName is a label name a stage writes, with what it needs at run
// time precomputed: its hash, and the _extracted form used when the stream
// already has the name.
type labelName struct {
	name, ext string
	h, extH   uint64
	// want reports whether hints ask for this label (always true without
	// hints).
	want bool
}

func newLabelName(name string, h *hints) *labelName {
	ext := name + duplicateSuffix
	return &labelName{name: name, ext: ext, h: nameHash(name), extH: nameHash(ext), want: h.want(name)}
}

// resolve returns the name a parsed label gets on this stream.
func (k *labelName) resolve(st *entryState) (string, uint64) {
	if st.baseHas(k.name, k.h) {
		return k.ext, k.extH
	}
	return k.name, k.h
}

// setParsed stores a parser's label unless a parser already set that name
// for this entry: "if an extracted key appears twice, only the first label
// value will be kept". It reports whether the label was stored.
func (st *entryState) setParsed(k *labelName, value string) bool {
	name, h := k.resolve(st)
	if i := st.find(name, h); i >= 0 {
		e := &st.ents[i]
		if e.parsed {
			return false
		}
		e.value, e.cat, e.dead, e.parsed = value, catParsed, false, true
		st.shadowBase(name, h)
		return true
	}
	st.ents = append(st.ents, ent{name: name, value: value, h: h, cat: catParsed, parsed: true})
	st.insertSlot(h, len(st.ents)-1)
	st.shadowBase(name, h)
	return true
}

// keySeq remembers the keys of the previous line in order. Lines of one
// stream usually share their shape, so most keys are found by comparing
// bytes with the key at the same position instead of a map lookup.
type keySeq struct {
	seq []seqKey
	n   int // position in the current line
}

type seqKey struct {
	raw []byte
	k   *labelName
}

const maxKeySeq = 256

func (s *keySeq) start() { s.n = 0 }

// lookup returns the name cached for raw at the current position.
func (s *keySeq) lookup(raw []byte) (*labelName, bool) {
	if s.n < len(s.seq) {
		if e := &s.seq[s.n]; string(e.raw) == string(raw) {
			s.n++
			return e.k, true
		}
	}
	return nil, false
}

// store records the name of raw at the current position.
func (s *keySeq) store(raw []byte, k *labelName) {
	switch {
	case s.n < len(s.seq):
		e := &s.seq[s.n]
		e.raw = append(e.raw[:0], raw...)
		e.k = k
	case s.n < maxKeySeq:
		s.seq = append(s.seq, seqKey{raw: append([]byte(nil), raw...), k: k})
	}
	s.n++
}

// sanitizeLabelName turns an extracted key into a valid label name the way
// Loki does: surrounding spaces trimmed, every character other than ASCII
// letters, digits and '_' replaced by '_' (one per character, not per
// byte), and a leading digit prefixed with '_'. Keys that are empty after
// trimming give "", which callers skip.
func sanitizeLabelName(key string) string {
	key = strings.TrimSpace(key)
	if key == "" {
		return ""
	}
	valid := true
	for i := 0; i < len(key); i++ {
		if !isNameChar(key[i]) {
			valid = false
			break
		}
	}
	if valid {
		if key[0] >= '0' && key[0] <= '9' {
			return "_" + key
		}
		return key
	}
	var b strings.Builder
	b.Grow(len(key) + 1)
	if key[0] >= '0' && key[0] <= '9' {
		b.WriteByte('_')
	}
	for _, r := range key {
		if r < utf8.RuneSelf && isNameChar(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func isNameChar(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// isReserved reports whether a parser must not write the name: the error
// labels belong to the pipeline.
func isReserved(name string) bool {
	return name == ErrorLabel || name == ErrorDetailsLabel
}

// cleanValue applies Loki's rule for parsed json and logfmt values: a
// value that is not valid UTF-8 or holds the replacement character becomes
// empty.
func cleanValue(v string) string {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError {
			return ""
		}
		i += n
	}
	return v
}

// validValue makes a value captured by regexp or pattern valid UTF-8,
// replacing bad bytes, so that result labels always encode.
func (st *entryState) validValue(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	return st.appendValue([]byte(strings.ToValidUTF8(v, "\uFFFD")))
}

// hints tell the parsers of a metric query which labels matter, so that
// they can skip the others and stop early, as Loki does. nil hints mean
// every label matters (log queries).
type hints struct {
	// none: no label is needed at all and parsers do nothing.
	none bool
	// req is the set of needed names; nil means all.
	req map[string]bool
	// reqList holds the names with hashes for the all-found check.
	reqList []reqName
}

type reqName struct {
	name string
	h    uint64
}

func newHints(required []string, none bool) *hints {
	h := &hints{req: map[string]bool{}}
	for _, n := range required {
		if h.req[n] {
			continue
		}
		h.req[n] = true
		h.reqList = append(h.reqList, reqName{n, nameHash(n)})
		// A parsed label that collides with a stream label is renamed,
		// but the parser sees the key before the rename.
		if base, ok := strings.CutSuffix(n, duplicateSuffix); ok && !h.req[base] {
			h.req[base] = true
			h.reqList = append(h.reqList, reqName{base, nameHash(base)})
		}
	}
	if len(h.req) == 0 && none {
		h.none = true
	}
	return h
}

func (h *hints) want(name string) bool {
	return h == nil || h.req == nil || h.req[name]
}

// wantPrefix reports whether some needed label starts with prefix, so that
// a parser descends into a nested object.
func (h *hints) wantPrefix(prefix string) bool {
	if h == nil || h.req == nil {
		return true
	}
	for n := range h.req {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// skip reports whether parsers have nothing to do.
func (h *hints) skip() bool { return h != nil && h.none }

// allFound reports whether every needed label was extracted by a parser in
// this entry, so that parsing can stop.
func (h *hints) allFound(st *entryState) bool {
	if h == nil || h.req == nil || len(h.reqList) == 0 {
		return false
	}
	for _, r := range h.reqList {
		if !st.extracted(r.name, r.h) {
			return false
		}
	}
	return true
}
