package logql

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type tokenKind uint8

const (
	tEOF tokenKind = iota
	tError
	tIdent
	tString
	tNumber
	tDuration
	tBytes
	tFlag // --strict, --keep-empty

	tLBrace
	tRBrace
	tLParen
	tRParen
	tLBracket
	tRBracket
	tComma

	tEq          // =
	tNeq         // !=
	tRe          // =~
	tNre         // !~
	tPipeExact   // |=
	tPipeMatch   // |~
	tPipePattern // |>
	tNotPattern  // !>
	tPipe        // |
	tCmpEq       // ==
	tGt          // >
	tGte         // >=
	tLt          // <
	tLte         // <=
	tAdd         // +
	tSub         // -
	tMul         // *
	tDiv         // /
	tMod         // %
	tPow         // ^
)

var tokenNames = [...]string{
	tEOF:         "end of input",
	tError:       "invalid token",
	tIdent:       "IDENTIFIER",
	tString:      "STRING",
	tNumber:      "NUMBER",
	tDuration:    "DURATION",
	tBytes:       "BYTES",
	tFlag:        "FLAG",
	tLBrace:      "{",
	tRBrace:      "}",
	tLParen:      "(",
	tRParen:      ")",
	tLBracket:    "[",
	tRBracket:    "]",
	tComma:       ",",
	tEq:          "=",
	tNeq:         "!=",
	tRe:          "=~",
	tNre:         "!~",
	tPipeExact:   "|=",
	tPipeMatch:   "|~",
	tPipePattern: "|>",
	tNotPattern:  "!>",
	tPipe:        "|",
	tCmpEq:       "==",
	tGt:          ">",
	tGte:         ">=",
	tLt:          "<",
	tLte:         "<=",
	tAdd:         "+",
	tSub:         "-",
	tMul:         "*",
	tDiv:         "/",
	tMod:         "%",
	tPow:         "^",
}

func (k tokenKind) String() string { return tokenNames[k] }

// token is one lexeme. text is the identifier or flag name, the decoded
// value of a string, or the message of an error token.
type token struct {
	kind  tokenKind
	pos   int
	text  string
	num   float64
	dur   time.Duration
	bytes uint64
}

// describe names the token for "unexpected X" messages.
func (t token) describe() string {
	switch t.kind {
	case tIdent:
		return "IDENTIFIER " + strconv.Quote(t.text)
	case tFlag:
		return "FLAG --" + t.text
	}
	return t.kind.String()
}

// lex splits the whole query into tokens. It stops at the first lexical
// error and ends the list with an error token, so the parser reports errors
// in the order they occur in the text. The list always ends with tEOF or
// tError.
func lex(s string) []token {
	toks := make([]token, 0, len(s)/3+1)
	i := 0
	for {
		// Whitespace and # comments.
		for i < len(s) {
			c := s[i]
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				i++
				continue
			}
			if c == '#' {
				for i < len(s) && s[i] != '\n' {
					i++
				}
				continue
			}
			break
		}
		if i >= len(s) {
			return append(toks, token{kind: tEOF, pos: i})
		}
		start := i
		c := s[i]
		var t token
		switch {
		case isIdentStart(c):
			for i < len(s) && isIdentByte(s[i]) {
				i++
			}
			t = token{kind: tIdent, text: s[start:i]}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			t, i = lexNumber(s, i)
		case c == '"':
			t, i = lexQuoted(s, i)
		case c == '`':
			end := strings.IndexByte(s[i+1:], '`')
			if end < 0 {
				return append(toks, token{kind: tError, pos: start, text: "unterminated raw string"})
			}
			t = token{kind: tString, text: s[i+1 : i+1+end]}
			i += end + 2
		default:
			t, i = lexOperator(s, i)
		}
		t.pos = start
		toks = append(toks, t)
		if t.kind == tError {
			return toks
		}
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentByte(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// lexNumber reads a number, or a number with a unit suffix: a duration
// (5m, 1h30m) or a byte size (20MB). Duration wins where both would fit.
func lexNumber(s string, i int) (token, int) {
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			i = j
			if i < len(s) && isUnitByte(s, i) {
				return token{kind: tError, text: "invalid number " + strconv.Quote(s[start:i+1])}, i
			}
			return parseNumberToken(s[start:i]), i
		}
	}
	if i >= len(s) || !isUnitByte(s, i) {
		return parseNumberToken(s[start:i]), i
	}
	// A unit follows: take the whole run of digits, dots and unit letters.
	for i < len(s) && (isUnitByte(s, i) || s[i] == '.' || s[i] >= '0' && s[i] <= '9') {
		if s[i] >= 0x80 {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		} else {
			i++
		}
	}
	text := s[start:i]
	if d, err := ParseDuration(text); err == nil {
		return token{kind: tDuration, dur: d}, i
	} else if err == errDurationRange {
		return token{kind: tError, text: "duration out of range: " + text}, i
	}
	if n, err := ParseBytes(text); err == nil {
		return token{kind: tBytes, bytes: n}, i
	}
	return token{kind: tError, text: "invalid number, duration or byte size " + strconv.Quote(text)}, i
}

// isUnitByte reports whether s[i] starts a unit letter: ASCII letters and
// the two micro signs of µs.
func isUnitByte(s string, i int) bool {
	c := s[i]
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		return true
	}
	return strings.HasPrefix(s[i:], "µ") || strings.HasPrefix(s[i:], "μ")
}

func parseNumberToken(text string) token {
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(v, 0) {
		return token{kind: tError, text: "number out of range: " + text}
	}
	return token{kind: tNumber, num: v}
}

// lexQuoted reads a double-quoted string with Go escapes.
func lexQuoted(s string, i int) (token, int) {
	start := i
	i++
	escaped := false
	for i < len(s) {
		c := s[i]
		i++
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '\n':
			return token{kind: tError, text: "newline in string"}, i
		case c == '"':
			raw := s[start:i]
			if !strings.ContainsRune(raw, '\\') {
				return token{kind: tString, text: raw[1 : len(raw)-1]}, i
			}
			v, err := strconv.Unquote(raw)
			if err != nil {
				return token{kind: tError, text: "invalid escape sequence in string " + truncate(raw, 64)}, i
			}
			return token{kind: tString, text: v}, i
		}
	}
	return token{kind: tError, text: "unterminated string"}, i
}

func lexOperator(s string, i int) (token, int) {
	c := s[i]
	var next byte
	if i+1 < len(s) {
		next = s[i+1]
	}
	two := func(k tokenKind) (token, int) { return token{kind: k}, i + 2 }
	one := func(k tokenKind) (token, int) { return token{kind: k}, i + 1 }
	switch c {
	case '{':
		return one(tLBrace)
	case '}':
		return one(tRBrace)
	case '(':
		return one(tLParen)
	case ')':
		return one(tRParen)
	case '[':
		return one(tLBracket)
	case ']':
		return one(tRBracket)
	case ',':
		return one(tComma)
	case '=':
		switch next {
		case '~':
			return two(tRe)
		case '=':
			return two(tCmpEq)
		}
		return one(tEq)
	case '!':
		switch next {
		case '=':
			return two(tNeq)
		case '~':
			return two(tNre)
		case '>':
			return two(tNotPattern)
		}
	case '|':
		switch next {
		case '=':
			return two(tPipeExact)
		case '~':
			return two(tPipeMatch)
		case '>':
			return two(tPipePattern)
		}
		return one(tPipe)
	case '>':
		if next == '=' {
			return two(tGte)
		}
		return one(tGt)
	case '<':
		if next == '=' {
			return two(tLte)
		}
		return one(tLt)
	case '+':
		return one(tAdd)
	case '-':
		if next == '-' && i+2 < len(s) && isIdentStart(s[i+2]) {
			j := i + 2
			for j < len(s) && (isIdentByte(s[j]) || s[j] == '-') {
				j++
			}
			return token{kind: tFlag, text: s[i+2 : j]}, j
		}
		return one(tSub)
	case '*':
		return one(tMul)
	case '/':
		return one(tDiv)
	case '%':
		return one(tMod)
	case '^':
		return one(tPow)
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && w <= 1 {
		return token{kind: tError, text: "invalid UTF-8 byte in query"}, i + 1
	}
	return token{kind: tError, text: "unexpected character " + strconv.QuoteRune(r)}, i + w
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
