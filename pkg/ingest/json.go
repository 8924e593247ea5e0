package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// DecodeJSON decodes Loki's JSON push body:
//
//	{"streams":[{"stream":{"app":"api"},"values":[["<unix ns>","line"],["<unix ns>","line",{"trace_id":"x"}]]}]}
//
// Timestamps are strings of Unix nanoseconds, as Loki documents; the
// optional third element of a value is the entry's structured metadata.
// Unknown keys are skipped. Strings are unescaped in place, so body is
// modified and lines point into it; the caller must not reuse body. A
// syntax error fails the whole push; a bad timestamp or a value of the
// wrong type fails only its entry (see PushStream.Problems). maxSize bounds
// the memory spent on decoded entries and metadata.
func DecodeJSON(body []byte, maxSize int) (*PushRequest, error) {
	p := jsonParser{b: body, budget: newBudget(maxSize)}
	req, err := p.pushRequest()
	if err != nil {
		var tl *TooLargeError
		if errors.As(err, &tl) {
			return nil, tl
		}
		return nil, fmt.Errorf("malformed JSON push request: %w", err)
	}
	return req, nil
}

// maxJSONDepth bounds the nesting of skipped values, so that "[[[[..." fails
// cleanly instead of exhausting the stack.
const maxJSONDepth = 64

type jsonParser struct {
	b      []byte
	i      int
	budget budget
	arena  labelArena
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, 0 at the end (or at a
// NUL byte, which is never valid where peek is used).
func (p *jsonParser) peek() byte {
	p.ws()
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

// atEnd reports whether only white space is left.
func (p *jsonParser) atEnd() bool {
	p.ws()
	return p.i >= len(p.b)
}

func (p *jsonParser) expect(c byte) error {
	got := p.peek()
	if got != c {
		if p.i >= len(p.b) {
			return p.errorf("expected %q, found end of input", c)
		}
		return p.errorf("expected %q, found %q", c, got)
	}
	p.i++
	return nil
}

// literal consumes null, true or false.
func (p *jsonParser) literal(word string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		p.i += len(word)
		return true
	}
	return false
}

// more handles the separator after an element of an object or array: true
// after a comma, false after the closing byte.
func (p *jsonParser) more(closing byte) (bool, error) {
	switch c := p.peek(); {
	case c == ',':
		p.i++
		return true, nil
	case c == closing:
		p.i++
		return false, nil
	case p.i >= len(p.b):
		return false, p.errorf("expected ',' or %q, found end of input", closing)
	default:
		return false, p.errorf("expected ',' or %q, found %q", closing, c)
	}
}

// needsWork marks bytes that end the fast path of a string scan.
var needsWork = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str reads the string at the current position (after white space),
// unescaping it in place: every escape is at least as long as what it
// stands for, so the output never overtakes the input. The result is capped
// so that appending to it cannot clobber what follows.
func (p *jsonParser) str() ([]byte, error) {
	if p.peek() != '"' {
		return nil, p.errorf("expected a string")
	}
	b := p.b
	start := p.i + 1
	j := skipPlain(b, start)
	if j < len(b) && b[j] == '"' {
		p.i = j + 1
		return b[start:j:j], nil
	}
	w := j
	for j < len(b) {
		switch c := b[j]; {
		case c == '"':
			p.i = j + 1
			return b[start:w:w], nil
		case c < 0x20:
			p.i = j
			return nil, p.errorf("control character %q in string must be escaped", c)
		}
		// b[j] is a backslash.
		if j+1 >= len(b) {
			break
		}
		switch e := b[j+1]; e {
		case '"', '\\', '/':
			b[w] = e
		case 'b':
			b[w] = '\b'
		case 'f':
			b[w] = '\f'
		case 'n':
			b[w] = '\n'
		case 'r':
			b[w] = '\r'
		case 't':
			b[w] = '\t'
		case 'u':
			r, ok := hex4(b, j+2)
			if !ok {
				p.i = j
				return nil, p.errorf(`bad \u escape`)
			}
			j += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if j+1 < len(b) && b[j] == '\\' && b[j+1] == 'u' {
					r2, ok = hex4(b, j+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					j += 6
				} else {
					r = utf8.RuneError // a lone surrogate, as encoding/json does
				}
			}
			w += utf8.EncodeRune(b[w:], r)
			w, j = p.plainRun(w, j)
			continue
		default:
			p.i = j
			return nil, p.errorf("invalid escape %q in string", b[j:j+2])
		}
		w, j = p.plainRun(w+1, j+2)
	}
	p.i = len(b)
	return nil, p.errorf("unterminated string")
}

// plainRun moves the bytes from j up to the next quote, backslash or
// control byte down to w in one copy, and returns both advanced.
func (p *jsonParser) plainRun(w, j int) (int, int) {
	b := p.b
	k := skipPlain(b, j)
	copy(b[w:], b[j:k])
	return w + k - j, k
}

// skipPlain returns the index of the first quote, backslash or control
// byte at or after i, or len(b). It tests eight bytes at a time: lines are
// long and such bytes rare.
func skipPlain(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// The "has a zero byte" trick, (v-ones) &^ v & highs, applied to
		// x^'"' and x^'\\', and its "has a byte below n" form to x: z is
		// non-zero exactly when some byte needs work (borrows can add
		// false hits only above a true one, which the byte loop finds).
		q := x ^ (ones * '"')
		s := x ^ (ones * '\\')
		z := ((x-ones*0x20)&^x | (q-ones)&^q | (s-ones)&^s) & highs
		if z != 0 {
			break
		}
	}
	for i < len(b) && !needsWork[b[i]] {
		i++
	}
	return i
}

func hex4(b []byte, i int) (rune, bool) {
	if len(b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipString moves past a string without modifying it.
func (p *jsonParser) skipString() error {
	b := p.b
	for j := p.i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			if j+1 >= len(b) {
				break
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if _, ok := hex4(b, j+2); !ok {
					p.i = j
					return p.errorf(`bad \u escape`)
				}
				j += 5
			default:
				p.i = j
				return p.errorf("invalid escape %q in string", b[j:j+2])
			}
		case c == '"':
			p.i = j + 1
			return nil
		case c < 0x20:
			p.i = j
			return p.errorf("control character %q in string must be escaped", c)
		}
	}
	p.i = len(b)
	return p.errorf("unterminated string")
}

// skipValue moves past any value without modifying it and returns its
// bytes; it checks the syntax as it goes.
func (p *jsonParser) skipValue(depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("values nested deeper than %d levels", maxJSONDepth)
	}
	c := p.peek()
	start := p.i
	var err error
	switch {
	case c == '"':
		err = p.skipString()
	case c == '{':
		p.i++
		if p.peek() == '}' {
			p.i++
			break
		}
		for {
			if p.peek() != '"' {
				return nil, p.errorf("expected a string as object key")
			}
			if err = p.skipString(); err != nil {
				return nil, err
			}
			if err = p.expect(':'); err != nil {
				return nil, err
			}
			if _, err = p.skipValue(depth + 1); err != nil {
				return nil, err
			}
			more, err := p.more('}')
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
		}
	case c == '[':
		p.i++
		if p.peek() == ']' {
			p.i++
			break
		}
		for {
			if _, err = p.skipValue(depth + 1); err != nil {
				return nil, err
			}
			more, err := p.more(']')
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		err = p.skipNumber()
	case c == 'n' && p.literal("null"), c == 't' && p.literal("true"), c == 'f' && p.literal("false"):
	case p.i >= len(p.b):
		return nil, p.errorf("expected a value, found end of input")
	default:
		return nil, p.errorf("expected a value, found %q", c)
	}
	if err != nil {
		return nil, err
	}
	return p.b[start:p.i], nil
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *jsonParser) skipNumber() error {
	b, i := p.b, p.i
	digits := func() bool {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	leadingZero := i < len(b) && b[i] == '0'
	if !digits() || (leadingZero && i-p.i > 1+boolToInt(b[p.i] == '-')) {
		p.i = i
		return p.errorf("bad number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			p.i = i
			return p.errorf("bad number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			p.i = i
			return p.errorf("bad number")
		}
	}
	p.i = i
	return nil
}

// object calls fn for each key of the object at the current position; fn
// must consume the value.
func (p *jsonParser) object(fn func(key []byte) error) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		key, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
		more, err := p.more('}')
		if err != nil || !more {
			return err
		}
	}
}

// array calls fn for each element of the array at the current position
// (null counts as empty); fn must consume the element.
func (p *jsonParser) array(fn func() error) error {
	if p.peek() == 'n' && p.literal("null") {
		return nil
	}
	if err := p.expect('['); err != nil {
		return err
	}
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		more, err := p.more(']')
		if err != nil || !more {
			return err
		}
	}
}

// Keys match case-insensitively, as with encoding/json and the jsoniter
// configuration Loki decodes pushes with.
var (
	keyStreams = []byte("streams")
	keyStream  = []byte("stream")
	keyValues  = []byte("values")
)

func (p *jsonParser) pushRequest() (*PushRequest, error) {
	req := &PushRequest{}
	seen := false
	err := p.object(func(key []byte) error {
		if !bytes.EqualFold(key, keyStreams) {
			_, err := p.skipValue(1)
			return err
		}
		if seen {
			return p.errorf(`duplicate key "streams"`)
		}
		seen = true
		return p.array(func() error {
			if err := p.budget.charge(streamCost); err != nil {
				return err
			}
			req.Streams = append(req.Streams, PushStream{LabelsJSON: true})
			if err := p.stream(&req.Streams[len(req.Streams)-1]); err != nil {
				return fmt.Errorf("stream %d: %w", len(req.Streams)-1, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if !p.atEnd() {
		return nil, p.errorf("unexpected data after the push object")
	}
	return req, nil
}

func (p *jsonParser) stream(s *PushStream) error {
	var seenStream, seenValues bool
	return p.object(func(key []byte) error {
		switch {
		case bytes.EqualFold(key, keyStream):
			if seenStream {
				return p.errorf(`duplicate key "stream"`)
			}
			seenStream = true
			if c := p.peek(); c != '{' && c != 'n' {
				return p.errorf(`"stream" must be an object of label names and values`)
			}
			raw, err := p.skipValue(1)
			if err != nil {
				return err
			}
			if string(raw) != "null" {
				s.Labels = bytesToString(raw)
			}
			return nil
		case bytes.EqualFold(key, keyValues):
			if seenValues {
				return p.errorf(`duplicate key "values"`)
			}
			seenValues = true
			return p.array(func() error { return p.entry(s) })
		default:
			_, err := p.skipValue(1)
			return err
		}
	})
}

// entry reads one ["<ns>", "line", {metadata}] value.
func (p *jsonParser) entry(s *PushStream) error {
	if err := p.budget.charge(entryCost); err != nil {
		return err
	}
	idx := len(s.Entries)
	s.Entries = append(s.Entries, chunk.Entry{})
	e := &s.Entries[idx]
	var problem string
	var reason Reason
	fail := func(r Reason, msg string) {
		if problem == "" { // the first problem explains the entry best
			problem, reason = msg, r
		}
	}
	n := 0
	p.arena.begin()
	err := p.array(func() error {
		n++
		switch n {
		case 1:
			if p.peek() != '"' {
				raw, err := p.skipValue(1)
				if err == nil {
					fail(ReasonInvalidTimestamp, fmt.Sprintf("timestamp %s must be a string of Unix nanoseconds", truncateBytes(raw, 32)))
				}
				return err
			}
			raw, err := p.str()
			if err != nil {
				return err
			}
			ts, msg := parseNanos(raw)
			if msg != "" {
				fail(ReasonInvalidTimestamp, msg)
			}
			e.Timestamp = ts
		case 2:
			if p.peek() != '"' {
				_, err := p.skipValue(1)
				if err == nil {
					fail(ReasonInvalidEntry, "line must be a string")
				}
				return err
			}
			line, err := p.str()
			if err != nil {
				return err
			}
			e.Line = line
		case 3:
			if p.peek() == 'n' && p.literal("null") {
				return nil
			}
			return p.object(func(key []byte) error {
				if p.peek() != '"' {
					_, err := p.skipValue(1)
					if err == nil {
						fail(ReasonInvalidMetadata, fmt.Sprintf("structured metadata %q must have a string value", truncateBytes(key, 64)))
					}
					return err
				}
				if err := p.budget.charge(labelCost); err != nil {
					return err
				}
				v, err := p.str()
				if err != nil {
					return err
				}
				p.arena.add(labels.Label{Name: bytesToString(key), Value: bytesToString(v)})
				return nil
			})
		default:
			_, err := p.skipValue(1)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("entry %d: %w", idx, err)
	}
	e.Metadata = p.arena.end()
	if n < 2 || n > 3 {
		fail(ReasonInvalidEntry, fmt.Sprintf("entry has %d elements, want [\"<unix ns>\", \"line\"] with optional structured metadata", n))
	}
	if problem != "" {
		s.Problems = append(s.Problems, EntryProblem{Index: idx, Reason: reason, Message: problem})
	}
	return nil
}

// parseNanos reads a decimal Unix nanosecond timestamp. It refuses values
// that are not after 1970 or do not fit int64 (past 2262-04-11).
func parseNanos(s []byte) (int64, string) {
	var v int64
	if len(s) == 0 {
		return 0, "timestamp is an empty string, want Unix nanoseconds"
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			if c == '-' && len(s) > 1 {
				return 0, fmt.Sprintf("timestamp %q is not after 1970-01-01T00:00:00Z", truncateBytes(s, 32))
			}
			return 0, fmt.Sprintf("timestamp %q is not a string of Unix nanoseconds", truncateBytes(s, 32))
		}
		d := int64(c - '0')
		if v > (1<<63-1-d)/10 {
			return 0, fmt.Sprintf("timestamp %q is beyond 2262-04-11, the end of int64 nanoseconds", truncateBytes(s, 32))
		}
		v = v*10 + d
	}
	if v == 0 {
		return 0, "timestamp 0 is not after 1970-01-01T00:00:00Z"
	}
	return v, ""
}

// ParseJSONLabels reads a stream's labels in JSON push form, {"a":"b"}, and
// returns them sorted; raw is not modified. It stops early, without allocating for the rest,
// when the object has more than maxLabels names (0: no limit), returning
// an error that says so.
func ParseJSONLabels(raw []byte, maxLabels int) (labels.Labels, error) {
	p := jsonParser{b: bytes.Clone(raw)} // unescaping writes in place
	var ls labels.Labels
	err := p.object(func(key []byte) error {
		if maxLabels > 0 && len(ls) >= maxLabels {
			return &tooManyLabelsError{count: len(ls) + 1}
		}
		if p.peek() != '"' {
			return fmt.Errorf("label %q must have a string value", truncateBytes(key, 64))
		}
		v, err := p.str()
		if err != nil {
			return err
		}
		ls = append(ls, labels.Label{Name: bytesToString(key), Value: bytesToString(v)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !p.atEnd() {
		return nil, p.errorf("unexpected data after the labels")
	}
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	for i := 1; i < len(ls); i++ {
		if ls[i].Name == ls[i-1].Name {
			return nil, &duplicateLabelError{name: ls[i].Name}
		}
	}
	return ls, nil
}

type tooManyLabelsError struct{ count int }

func (e *tooManyLabelsError) Error() string {
	return "more than " + strconv.Itoa(e.count-1) + " labels"
}

type duplicateLabelError struct{ name string }

func (e *duplicateLabelError) Error() string {
	return fmt.Sprintf("duplicate label name %q", e.name)
}

func truncateBytes(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
