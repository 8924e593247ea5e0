package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/logql"
)

// The JSON parsers scan the line in place: no reflection, no decoding into
// values, strings unescaped only when they become labels. Like Loki's
// parser they stop at the end of the top-level object and ignore what
// follows it.

// maxJSONDepth bounds the nesting the plain parser follows.
const maxJSONDepth = 512

// maxKeyCache bounds the per-worker cache of label names by JSON path;
// lines with endless distinct keys fall back to computing names.
const maxKeyCache = 1 << 14

var errJSONDepth = errors.New("json nesting too deep")

type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

func jsonErrf(off int, format string, args ...any) error {
	return &jsonError{off: off, msg: fmt.Sprintf(format, args...)}
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// strStop marks the bytes that end a fast scan of a string.
var strStop = [256]bool{'"': true, '\\': true}

// scanJSONString reads the string starting at b[i] == '"'. It returns the
// index of the closing quote and whether the string holds escapes.
func scanJSONString(b []byte, i int) (end int, esc bool, err error) {
	// Most strings are short and plain: a byte loop beats IndexByte.
	j := i + 1
	for j < len(b) && j-i < 64 {
		c := b[j]
		if strStop[c] {
			if c == '"' {
				return j, false, nil
			}
			break
		}
		j++
	}
	j = i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false, jsonErrf(i, "unterminated string")
		}
		q := j + k
		if bytes.IndexByte(b[j:q], '\\') >= 0 {
			esc = true
			// The quote is escaped when an odd run of backslashes
			// precedes it.
			n := 0
			for p := q - 1; p > i && b[p] == '\\'; p-- {
				n++
			}
			if n%2 == 1 {
				j = q + 1
				continue
			}
		}
		return q, esc, nil
	}
}

// JSON value kinds.
const (
	jsonString byte = iota + 1
	jsonNumber
	jsonTrue
	jsonFalse
	jsonNull
	jsonObject
	jsonArray
)

// skipJSONValue returns the end (exclusive) and kind of the value at b[i].
func skipJSONValue(b []byte, i int) (int, byte, error) {
	if i >= len(b) {
		return 0, 0, jsonErrf(i, "unexpected end of input, expected a value")
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanJSONString(b, i)
		return end + 1, jsonString, err
	case c == '{' || c == '[':
		return skipJSONContainer(b, i)
	case c == 't':
		if bytes.HasPrefix(b[i:], []byte("true")) {
			return i + 4, jsonTrue, nil
		}
	case c == 'f':
		if bytes.HasPrefix(b[i:], []byte("false")) {
			return i + 5, jsonFalse, nil
		}
	case c == 'n':
		if bytes.HasPrefix(b[i:], []byte("null")) {
			return i + 4, jsonNull, nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		j := i + 1
		for j < len(b) && isNumberChar(b[j]) {
			j++
		}
		return j, jsonNumber, nil
	}
	return 0, 0, jsonErrf(i, "unexpected character %q, expected a value", b[i])
}

func isNumberChar(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// skipJSONContainer skips an object or array by counting brackets,
// stepping over strings; it checks nesting but not the grammar inside.
func skipJSONContainer(b []byte, i int) (int, byte, error) {
	kind := jsonObject
	if b[i] == '[' {
		kind = jsonArray
	}
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			end, _, err := scanJSONString(b, j)
			if err != nil {
				return 0, 0, err
			}
			j = end
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, kind, nil
			}
		}
	}
	if kind == jsonObject {
		return 0, 0, jsonErrf(i, "object is not closed")
	}
	return 0, 0, jsonErrf(i, "array is not closed")
}

// unescapeJSON appends the unescaped content of a JSON string (without
// quotes) to dst. It fails on an invalid escape.
func unescapeJSON(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...), true
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		if i+1 >= len(s) {
			return dst, false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return dst, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if x, ok := hex4(s[i+2:]); ok {
						r2 = x
					}
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// jsonStringValue returns the label value of the JSON string b[start:end]
// (without quotes): unescaped, and empty when invalid (Loki's rule).
func jsonStringValue(st *entryState, raw []byte, esc bool) string {
	if !esc {
		return cleanValue(bytesView(raw))
	}
	start := len(st.arena)
	buf, ok := unescapeJSON(st.arena, raw)
	if !ok {
		return ""
	}
	if cap(buf) != cap(st.arena) {
		// unescapeJSON grew the arena into a new array: keep it.
		st.arena = buf
	} else {
		st.arena = buf
	}
	if len(buf) == start {
		return ""
	}
	return cleanValue(bytesView(buf[start:]))
}

// jsonStage is `| json` without parameters: every scalar of the object
// becomes a label, nested keys joined with '_', arrays skipped.
type jsonStage struct{ hints *hints }

// jsonParams is `| json a="expr", ...`.
type jsonParamsStage struct {
	names []string
	paths [][]logql.JSONPathPart
	hints *hints
}

func newJSONStage(s *logql.JSONParser, h *hints) (stage, error) {
	if len(s.Params) == 0 {
		return &jsonStage{hints: h}, nil
	}
	p := &jsonParamsStage{hints: h}
	for _, ex := range s.Params {
		path, err := logql.ParseJSONPath(ex.Expression)
		if err != nil {
			return nil, err
		}
		if isReserved(ex.Label) {
			return nil, fmt.Errorf("%s cannot be extracted", ex.Label)
		}
		p.names = append(p.names, ex.Label)
		p.paths = append(p.paths, path)
	}
	return p, nil
}

type jsonInst struct {
	hints *hints
	seq   keySeq
	// keys caches label names by the raw JSON path of a key: the raw keys
	// of each level joined with 0.
	keys     map[string]*labelName
	prefixes map[string]bool
	path     []byte
	stop     bool
}

func (s *jsonStage) instance() stageInstance {
	return &jsonInst{hints: s.hints, keys: map[string]*labelName{}, prefixes: map[string]bool{}}
}

func (j *jsonInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	if j.hints.skip() {
		return line, true
	}
	j.path = j.path[:0]
	j.stop = false
	j.seq.start()
	i := skipJSONSpace(line, 0)
	var err error
	if i >= len(line) {
		err = jsonErrf(i, "empty line, expected a json object")
	} else if line[i] != '{' {
		err = jsonErrf(i, "unexpected character %q, expected a json object", line[i])
	} else {
		_, err = j.object(st, line, i, 0)
	}
	if err != nil && !j.stop {
		st.setErr(ErrJSON, err.Error())
	}
	return line, true
}

var errStop = errors.New("all labels found")

// object parses the object at b[i] == '{' whose keys are prefixed by
// j.path, and returns the index after it.
func (j *jsonInst) object(st *entryState, b []byte, i, depth int) (int, error) {
	if depth >= maxJSONDepth {
		return 0, errJSONDepth
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	prefixLen := len(j.path)
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, expected(b, i, "a key")
		}
		kend, kesc, err := scanJSONString(b, i)
		if err != nil {
			return 0, err
		}
		rawKey := b[i+1 : kend]
		i = skipJSONSpace(b, kend+1)
		if i >= len(b) || b[i] != ':' {
			return 0, expected(b, i, "':'")
		}
		i = skipJSONSpace(b, i+1)
		if i >= len(b) {
			return 0, expected(b, i, "a value")
		}
		if prefixLen > 0 {
			j.path = append(j.path, 0)
		}
		j.path = append(j.path, rawKey...)
		switch c := b[i]; c {
		case '{':
			if j.wantPrefix() {
				i, err = j.object(st, b, i, depth+1)
			} else {
				i, _, err = skipJSONContainer(b, i)
			}
			if err != nil {
				return 0, err
			}
		case '"':
			end, esc, err := scanJSONString(b, i)
			if err != nil {
				return 0, err
			}
			if k := j.key(kesc); k != nil {
				j.set(st, k, jsonStringValue(st, b[i+1:end], esc))
			}
			i = end + 1
		default:
			end, kind, err := skipJSONValue(b, i)
			if err != nil {
				return 0, err
			}
			var v string
			switch kind {
			case jsonNumber:
				v = bytesView(b[i:end])
			case jsonTrue:
				v = "true"
			case jsonFalse:
				v = "false"
			}
			if kind == jsonNumber || kind == jsonTrue || kind == jsonFalse {
				if k := j.key(kesc); k != nil {
					j.set(st, k, v)
				}
			}
			i = end
		}
		j.path = j.path[:prefixLen]
		if j.stop {
			return 0, errStop
		}
		i = skipJSONSpace(b, i)
		if i >= len(b) {
			return 0, expected(b, i, "',' or '}'")
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, expected(b, i, "',' or '}'")
		}
	}
}

func expected(b []byte, i int, what string) error {
	if i >= len(b) {
		return jsonErrf(i, "unexpected end of input, expected %s", what)
	}
	return jsonErrf(i, "unexpected character %q, expected %s", b[i], what)
}

func (j *jsonInst) set(st *entryState, k *labelName, v string) {
	if !k.want {
		return
	}
	if st.setParsed(k, v) && j.hints != nil && j.hints.allFound(st) {
		j.stop = true
	}
}

// key returns the label name for the path in j.path, nil to skip it.
func (j *jsonInst) key(esc bool) *labelName {
	if k, ok := j.seq.lookup(j.path); ok {
		return k
	}
	k := j.keySlow(esc)
	j.seq.store(j.path, k)
	return k
}

func (j *jsonInst) keySlow(esc bool) *labelName {
	if k, ok := j.keys[string(j.path)]; ok {
		return k
	}
	name := sanitizeLabelName(joinJSONPath(j.path, esc))
	var k *labelName
	if name != "" && !isReserved(name) {
		k = newLabelName(name, j.hints)
	}
	if len(j.keys) < maxKeyCache {
		j.keys[string(j.path)] = k
	}
	return k
}

func (j *jsonInst) wantPrefix() bool {
	if j.hints == nil {
		return true
	}
	if w, ok := j.prefixes[string(j.path)]; ok {
		return w
	}
	w := j.hints.wantPrefix(sanitizeLabelName(joinJSONPath(j.path, true)))
	if len(j.prefixes) < maxKeyCache {
		j.prefixes[string(j.path)] = w
	}
	return w
}

// joinJSONPath turns raw keys separated by 0 into the flattened key,
// unescaping the parts.
func joinJSONPath(path []byte, esc bool) string {
	var b strings.Builder
	for i, part := range bytes.Split(path, []byte{0}) {
		if i > 0 {
			b.WriteByte('_')
		}
		if bytes.IndexByte(part, '\\') >= 0 {
			if u, ok := unescapeJSON(nil, part); ok {
				part = u
			}
		}
		b.Write(part)
	}
	return b.String()
}

// jsonParamsInst evaluates extraction expressions by walking the document
// once per expression.
type jsonParamsInst struct {
	s     *jsonParamsStage
	names []*labelName
	tmp   []byte
}

func (s *jsonParamsStage) instance() stageInstance {
	in := &jsonParamsInst{s: s}
	for _, n := range s.names {
		in.names = append(in.names, newLabelName(n, nil))
	}
	return in
}

func (in *jsonParamsInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	if len(line) == 0 || in.s.hints.skip() {
		return line, true
	}
	if c := line[0]; c != '{' && c != '[' && c != '"' {
		st.setErr(ErrJSON, "")
		return line, true
	}
	for i, path := range in.s.paths {
		start, end, kind, found, err := in.find(line, skipJSONSpace(line, 0), path)
		if err != nil {
			st.setErr(ErrJSON, "")
			found = false
		}
		k := in.names[i]
		// Every expression yields a label, empty when the path is
		// missing, unless the stream has the name already.
		if !found {
			if _, ok := st.get(k.name, k.h); !ok {
				st.setParsed(k, "")
			}
			continue
		}
		var v string
		switch kind {
		case jsonString:
			end2, esc, _ := scanJSONString(line, start)
			v = jsonStringValue(st, line[start+1:end2], esc)
		case jsonNull:
			v = ""
		case jsonTrue:
			v = "true"
		case jsonFalse:
			v = "false"
		default:
			v = cleanValue(bytesView(line[start:end]))
		}
		st.setParsed(k, v)
	}
	return line, true
}

// find locates the value at path inside the value at b[i].
func (in *jsonParamsInst) find(b []byte, i int, path []logql.JSONPathPart) (start, end int, kind byte, found bool, err error) {
	for {
		i = skipJSONSpace(b, i)
		if len(path) == 0 {
			end, kind, err := skipJSONValue(b, i)
			return i, end, kind, err == nil, err
		}
		if i >= len(b) {
			return 0, 0, 0, false, expected(b, i, "a value")
		}
		part := path[0]
		next := -1
		if part.IsIndex {
			if b[i] != '[' {
				return 0, 0, 0, false, nil
			}
			i = skipJSONSpace(b, i+1)
			if i < len(b) && b[i] == ']' {
				return 0, 0, 0, false, nil
			}
			for n := 0; ; n++ {
				if n == part.Index {
					next = i
					break
				}
				e, _, err := skipJSONValue(b, i)
				if err != nil {
					return 0, 0, 0, false, err
				}
				i = skipJSONSpace(b, e)
				if i >= len(b) {
					return 0, 0, 0, false, expected(b, i, "',' or ']'")
				}
				if b[i] == ']' {
					return 0, 0, 0, false, nil
				}
				if b[i] != ',' {
					return 0, 0, 0, false, expected(b, i, "',' or ']'")
				}
				i = skipJSONSpace(b, i+1)
			}
		} else {
			if b[i] != '{' {
				return 0, 0, 0, false, nil
			}
			i = skipJSONSpace(b, i+1)
			if i < len(b) && b[i] == '}' {
				return 0, 0, 0, false, nil
			}
			for {
				if i >= len(b) || b[i] != '"' {
					return 0, 0, 0, false, expected(b, i, "a key")
				}
				kend, kesc, err := scanJSONString(b, i)
				if err != nil {
					return 0, 0, 0, false, err
				}
				match := in.keyEquals(b[i+1:kend], kesc, part.Key)
				i = skipJSONSpace(b, kend+1)
				if i >= len(b) || b[i] != ':' {
					return 0, 0, 0, false, expected(b, i, "':'")
				}
				i = skipJSONSpace(b, i+1)
				if match {
					next = i
					break
				}
				e, _, err := skipJSONValue(b, i)
				if err != nil {
					return 0, 0, 0, false, err
				}
				i = skipJSONSpace(b, e)
				if i >= len(b) {
					return 0, 0, 0, false, expected(b, i, "',' or '}'")
				}
				if b[i] == '}' {
					return 0, 0, 0, false, nil
				}
				if b[i] != ',' {
					return 0, 0, 0, false, expected(b, i, "',' or '}'")
				}
				i = skipJSONSpace(b, i+1)
			}
		}
		i = next
		path = path[1:]
	}
}

func (in *jsonParamsInst) keyEquals(raw []byte, esc bool, key string) bool {
	if !esc {
		return string(raw) == key
	}
	var ok bool
	in.tmp, ok = unescapeJSON(in.tmp[:0], raw)
	return ok && string(in.tmp) == key
}

// unpackStage is `| unpack`: a JSON object whose string values become
// labels and whose _entry, when present, becomes the line. Without _entry
// nothing changes, as in Loki.
type unpackStage struct{ hints *hints }

type unpackInst struct {
	hints *hints
	keys  map[string]*labelName
	buf   []unpacked
}

type unpacked struct {
	k *labelName
	v string
}

func (s *unpackStage) instance() stageInstance {
	return &unpackInst{hints: s.hints, keys: map[string]*labelName{}}
}

const packedEntryKey = "_entry"

func (u *unpackInst) process(st *entryState, _ int64, line []byte) ([]byte, bool) {
	if len(line) == 0 || u.hints.skip() {
		return line, true
	}
	u.buf = u.buf[:0]
	var entry []byte
	packed := false
	err := u.scan(st, line, func(k []byte, kesc bool, raw []byte, esc bool) {
		if !kesc && string(k) == packedEntryKey {
			packed = true
			if !esc {
				entry = raw
				return
			}
			start := len(st.arena)
			buf, ok := unescapeJSON(st.arena, raw)
			if !ok {
				entry = nil
				return
			}
			st.arena = buf
			entry = buf[start:len(buf):len(buf)]
			return
		}
		name := u.key(k, kesc)
		if name == nil {
			return
		}
		u.buf = append(u.buf, unpacked{name, jsonStringValue(st, raw, esc)})
	})
	if err != nil {
		st.setErr(ErrJSON, err.Error())
		return line, true
	}
	if !packed {
		return line, true
	}
	for _, p := range u.buf {
		if p.k.want {
			st.setParsed(p.k, p.v)
		}
	}
	if entry == nil {
		return []byte{}, true
	}
	return entry, true
}

// scan calls f for every string member of the top-level object.
func (u *unpackInst) scan(st *entryState, b []byte, f func(k []byte, kesc bool, raw []byte, esc bool)) error {
	i := skipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("expecting a json object, but it is not")
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return expected(b, i, "a key")
		}
		kend, kesc, err := scanJSONString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : kend]
		i = skipJSONSpace(b, kend+1)
		if i >= len(b) || b[i] != ':' {
			return expected(b, i, "':'")
		}
		i = skipJSONSpace(b, i+1)
		end, kind, err := skipJSONValue(b, i)
		if err != nil {
			return err
		}
		if kind == jsonString {
			vend, esc, _ := scanJSONString(b, i)
			f(key, kesc, b[i+1:vend], esc)
		}
		i = skipJSONSpace(b, end)
		if i >= len(b) {
			return expected(b, i, "',' or '}'")
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
		case '}':
			return nil
		default:
			return expected(b, i, "',' or '}'")
		}
	}
}

func (u *unpackInst) key(raw []byte, esc bool) *labelName {
	if k, ok := u.keys[string(raw)]; ok {
		return k
	}
	key := string(raw)
	if esc {
		if b, ok := unescapeJSON(nil, raw); ok {
			key = string(b)
		}
	}
	name := sanitizeLabelName(key)
	var k *labelName
	if name != "" && !isReserved(name) {
		k = newLabelName(name, u.hints)
	}
	if len(u.keys) < maxKeyCache {
		u.keys[string(raw)] = k
	}
	return k
}
