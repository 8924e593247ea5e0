package pipeline

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/logql"
)

// logfmt follows the grammar of Loki's decoder: pairs separated by bytes up
// to ' ' (spaces and control characters); a key runs to '=' or a separator
// and may not hold '"'; a value is empty, a run without '=' and '"', or a
// double-quoted string with JSON-style escapes. A key without '=' is a
// standalone key with no value.
//
// Malformed pairs (=value, foo=bar=buzz, fo"o=bar, an unterminated or
// badly escaped quote) stop the parser with LogfmtParserErr in --strict
// mode. Otherwise the parser skips to the next separator and goes on, and
// the line gets no error: Loki documents the default as best effort.

type logfmtSyntaxError struct {
	pos int // 1-based
	msg string
}

func (e *logfmtSyntaxError) Error() string {
	return fmt.Sprintf("logfmt syntax error at pos %d : %s", e.pos, e.msg)
}

// logfmtDecoder scans one line.
type logfmtDecoder struct {
	line       []byte
	pos        int
	key, value []byte
	hasValue   bool // key=... (possibly empty) rather than a standalone key
	quotedEsc  bool // value is a quoted string with escapes, still raw
	err        *logfmtSyntaxError
}

func (d *logfmtDecoder) reset(line []byte) {
	d.line, d.pos, d.err = line, 0, nil
}

func (d *logfmtDecoder) fail(pos int, msg string) {
	d.err = &logfmtSyntaxError{pos: pos + 1, msg: msg}
}

func (d *logfmtDecoder) unexpected(pos int, c byte) {
	d.fail(pos, fmt.Sprintf("unexpected %q", c))
}

// skipPair moves past the rest of a malformed pair.
func (d *logfmtDecoder) skipPair() {
	for d.pos < len(d.line) && d.line[d.pos] > ' ' {
		d.pos++
	}
}

// next scans the next pair. It returns false at the end of the line or on
// a malformed pair (d.err set, d.pos past the pair).
func (d *logfmtDecoder) next() bool {
	d.key, d.value, d.hasValue, d.quotedEsc = nil, nil, false, false
	line := d.line
	for d.pos < len(line) && line[d.pos] <= ' ' {
		d.pos++
	}
	if d.pos >= len(line) {
		return false
	}
	start := d.pos
	multibyte := false
	for d.pos < len(line) {
		c := line[d.pos]
		switch {
		case c == '=':
			if d.pos == start {
				d.unexpected(d.pos, c)
				d.skipPair()
				return false
			}
			d.key = line[start:d.pos]
			if multibyte && !validKey(d.key) {
				d.fail(d.pos, "invalid key")
				d.skipPair()
				return false
			}
			d.pos++
			d.hasValue = true
			return d.scanValue()
		case c == '"':
			d.unexpected(d.pos, c)
			d.skipPair()
			return false
		case c <= ' ':
			d.key = line[start:d.pos]
			if multibyte && !validKey(d.key) {
				d.fail(d.pos, "invalid key")
				return false
			}
			return true
		case c >= utf8.RuneSelf:
			multibyte = true
		}
		d.pos++
	}
	d.key = line[start:]
	if multibyte && !validKey(d.key) {
		d.fail(d.pos, "invalid key")
		return false
	}
	return true
}

func validKey(k []byte) bool { return utf8.Valid(k) && !bytes.ContainsRune(k, utf8.RuneError) }

func (d *logfmtDecoder) scanValue() bool {
	line := d.line
	if d.pos >= len(line) || line[d.pos] <= ' ' {
		return true
	}
	if line[d.pos] == '"' {
		return d.scanQuoted()
	}
	start := d.pos
	for d.pos < len(line) {
		c := line[d.pos]
		if c == '=' || c == '"' {
			d.unexpected(d.pos, c)
			d.skipPair()
			return false
		}
		if c <= ' ' {
			break
		}
		d.pos++
	}
	d.value = line[start:d.pos]
	return true
}

func (d *logfmtDecoder) scanQuoted() bool {
	line := d.line
	open := d.pos
	esc, hasEsc := false, false
	for p := open + 1; p < len(line); p++ {
		c := line[p]
		switch {
		case esc:
			esc = false
		case c == '\\':
			esc, hasEsc = true, true
		case c == '"':
			d.pos = p + 1
			d.value = line[open+1 : p]
			if hasEsc {
				if !validEscapes(d.value) {
					d.fail(d.pos-1, "invalid quoted value")
					return false
				}
				d.quotedEsc = true
			}
			return true
		}
	}
	d.pos = len(line)
	d.fail(d.pos, "unterminated quoted value")
	return false
}

// validEscapes reports whether unescapeJSON would accept s.
func validEscapes(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 >= len(s) {
			return false
		}
		switch s[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if _, ok := hex4(s[i+2:]); !ok {
				return false
			}
			i += 5
		default:
			return false
		}
	}
	return true
}

// valueString returns the current value as a label value.
func (d *logfmtDecoder) valueString(st *entryState) string {
	if !d.quotedEsc {
		return cleanValue(bytesView(d.value))
	}
	start := len(st.arena)
	buf, _ := unescapeJSON(st.arena, d.value)
	st.arena = buf
	return cleanValue(bytesView(buf[start:]))
}

type logfmtStage struct {
	strict, keepEmpty bool
	hints             *hints
	// With extraction parameters: label names by logfmt key.
	params map[string][]string
	order  []string // parameter labels in query order
}

func newLogfmtStage(s *logql.LogfmtParser, h *hints) (stage, error) {
	st := &logfmtStage{strict: s.Strict, keepEmpty: s.KeepEmpty, hints: h}
	if len(s.Params) > 0 {
		st.params = map[string][]string{}
		for _, p := range s.Params {
			if isReserved(p.Label) {
				return nil, fmt.Errorf("%s cannot be extracted", p.Label)
			}
			st.params[p.Expression] = append(st.params[p.Expression], p.Label)
			st.order = append(st.order, p.Label)
		}
	}
	return st, nil
}

type logfmtInst struct {
	s     *logfmtStage
	dec   logfmtDecoder
	seq   keySeq
	keys  map[string]*labelName
	names map[string]*labelName // parameter labels
	// found holds, per parameter label, the value of its first
	// occurrence in the line.
	found map[string]string
}

func (s *logfmtStage) instance() stageInstance {
	in := &logfmtInst{s: s, keys: map[string]*labelName{}}
	if s.params != nil {
		in.names = map[string]*labelName{}
		for _, n := range s.order {
			in.names[n] = newLabelName(n, nil)
		}
		in.found = map[string]string{}
	}
	return in
}

func (in *logfmtInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	s := in.s
	if s.hints.skip() {
		return line, true
	}
	in.dec.reset(line)
	in.seq.start()
	if s.params != nil {
		in.extractParams(st)
	} else {
		in.extractAll(st)
	}
	if in.dec.err != nil && s.strict {
		st.setErr(ErrLogfmt, in.dec.err.Error())
	}
	return line, true
}

// scan advances to the next well-formed pair, skipping malformed ones
// unless strict.
func (in *logfmtInst) scan() bool {
	d := &in.dec
	for {
		if d.next() {
			return true
		}
		if d.err == nil || in.s.strict || d.pos >= len(d.line) {
			return false
		}
		d.err = nil
	}
}

func (in *logfmtInst) extractAll(st *entryState) {
	d := &in.dec
	h := in.s.hints
	for in.scan() {
		if len(d.value) == 0 && !in.s.keepEmpty {
			continue
		}
		k := in.key(d.key)
		if k == nil || !k.want {
			continue
		}
		if st.setParsed(k, d.valueString(st)) && h != nil && h.allFound(st) {
			return
		}
	}
	if !in.s.strict {
		d.err = nil
	}
}

func (in *logfmtInst) extractParams(st *entryState) {
	d := &in.dec
	clear(in.found)
	for in.scan() {
		labels, ok := in.s.params[bytesView(d.key)]
		if !ok {
			k := in.key(d.key)
			if k == nil {
				continue
			}
			if labels, ok = in.s.params[k.name]; !ok {
				continue
			}
		}
		for _, l := range labels {
			if _, seen := in.found[l]; !seen {
				in.found[l] = d.valueString(st)
			}
		}
	}
	if !in.s.strict {
		d.err = nil
	}
	for _, l := range in.s.order {
		k := in.names[l]
		v, ok := in.found[l]
		if !ok {
			// A requested key that is missing yields an empty label,
			// unless the stream has that name.
			if st.baseHas(k.name, k.h) {
				continue
			}
		}
		st.setParsed(k, v)
	}
}

func (in *logfmtInst) key(raw []byte) *labelName {
	if k, ok := in.seq.lookup(raw); ok {
		return k
	}
	k := in.keySlow(raw)
	in.seq.store(raw, k)
	return k
}

func (in *logfmtInst) keySlow(raw []byte) *labelName {
	if k, ok := in.keys[string(raw)]; ok {
		return k
	}
	name := sanitizeLabelName(string(raw))
	var k *labelName
	if name != "" && !isReserved(name) {
		k = newLabelName(name, in.s.hints)
	}
	if len(in.keys) < maxKeyCache {
		in.keys[string(raw)] = k
	}
	return k
}
