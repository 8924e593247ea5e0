// Package levels detects the severity of a log entry the way Loki's
// discover_log_levels does: from a level-like label or structured metadata
// field if there is one, else from a level field in a JSON or logfmt line,
// else from the first severity word near the start of the line. The result
// is one of Loki's normalised names, which Grafana colours and Logs
// Drilldown groups by.
//
// It is logsift's one level detector: the server's push path calls Detect
// on every entry, logsift-agent calls it on every tailed line, and the
// agent's importer calls DetectRecord, which adds what a reader of a whole
// file knows (a user's level field, the level letter of klog and logcat
// lines, where a multi-line record's header ends) and otherwise only fills
// in where Detect finds no level, so a line gets the same level whichever
// way it reaches the store.
package levels

import (
	"encoding/binary"
	"math/bits"

	"github.com/logsift/logsift/pkg/labels"
)

// The normalised levels.
const (
	Critical = "critical"
	Fatal    = "fatal"
	Error    = "error"
	Warn     = "warn"
	Info     = "info"
	Debug    = "debug"
	Trace    = "trace"
	Unknown  = "unknown"
)

// All lists every level Detect can return, most severe first.
var All = []string{Critical, Fatal, Error, Warn, Info, Debug, Trace, Unknown}

// Label is the structured metadata name the level is stored under.
const Label = "detected_level"

// fieldNames are the label, metadata and JSON/logfmt keys that carry a
// level, in the order they are tried.
var fieldNames = []string{"level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl", "log.level", "loglevel", "levelname"}

// scanPrefix bounds how far into a line the detector looks: the level of
// a record is at its start, and scanning a 200 KB stack trace to its end
// would cost more than the rest of ingest.
const scanPrefix = 256

// Normalize maps a level value onto Loki's names; ok is false when the
// value is not a level at all.
func Normalize(v string) (string, bool) {
	if len(v) == 0 || len(v) > 16 {
		return "", false
	}
	var buf [16]byte
	b := buf[:len(v)]
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return normalizeLower(b)
}

func normalizeLower(b []byte) (string, bool) {
	switch string(b) {
	case "fatal", "panic", "f":
		return Fatal, true
	case "critical", "crit", "emerg", "emergency", "alert", "c":
		return Critical, true
	case "error", "err", "eror", "e":
		return Error, true
	case "warn", "warning", "w":
		return Warn, true
	case "info", "information", "informational", "notice", "i":
		return Info, true
	case "debug", "dbug", "d":
		return Debug, true
	case "trace", "trc", "t":
		return Trace, true
	}
	return "", false
}

// Detect returns the level of an entry of a stream.
func Detect(stream, metadata labels.Labels, line []byte) string {
	if l, ok := FromLabels(stream, metadata); ok {
		return l
	}
	return FromLine(line)
}

// FromLine detects the level from the line alone: a level field
// (`level=x`, `"level":"x"` and their variants) anywhere in the scanned
// prefix wins; else the first whole word that names a level.
//
// It runs on every pushed entry and every line the agent tails, so it is
// one pass over the prefix with a byte-class table: words are skipped
// whole, and only '=' and ':' make it look back for a key.
func FromLine(line []byte) string {
	p := line
	if len(p) > scanPrefix {
		p = p[:scanPrefix]
	}
	l, _ := scan(p, false)
	return l
}

// scan is FromLine's pass over the prefix p. With markers it also returns
// the first marker word (markerAt) when it finds no level: DetectRecord's
// fill-in, found in the same pass.
func scan(p []byte, markers bool) (level, marker string) {
	n := len(p)
	for i := 0; i < n; {
		c := class[p[i]]
		if c&cLetter == 0 {
			if c&cSep != 0 {
				if l, ok := fieldAt(p, i); ok {
					return l, ""
				}
			}
			i++
			continue
		}
		j := i + 1
		for j < n && class[p[j]]&cLetter != 0 {
			j++
		}
		// Most words are not 3 to 8 letters from a level's initial: they
		// are passed over without a call.
		if wl := j - i; wl >= 3 && wl <= 8 && c&cInitial != 0 {
			if l, ok := wordAt(p, i, j); ok {
				// The first level word; a field further on still wins.
				if fl, ok := fieldAfter(p, j); ok {
					return fl, ""
				}
				return l, ""
			}
		}
		if markers && marker == "" && c&cMarker != 0 {
			marker = markerAt(p, i, j)
		}
		i = j
	}
	return Unknown, marker
}

// fieldAfter looks for a level field at the separators from p[k] on.
func fieldAfter(p []byte, k int) (string, bool) {
	for k < len(p) {
		for k+8 <= len(p) {
			x := binary.LittleEndian.Uint64(p[k:])
			if m := equal(x, ':') | equal(x, '='); m != 0 {
				k += bits.TrailingZeros64(m) >> 3
				break
			}
			k += 8
		}
		if k >= len(p) {
			break
		}
		if class[p[k]]&cSep != 0 {
			if l, ok := fieldAt(p, k); ok {
				return l, true
			}
		}
		k++
	}
	return "", false
}

// fieldAfter's search eight bytes at a time: equal sets the high bit of
// each byte of x that equals b. Its lowest set bit is exact; bits above a
// match may be false, which only the first match's position, never a
// missed one, depends on. (Words are short, so the main scan goes byte
// by byte with the class table, which measured faster than this.)
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

func equal(x uint64, b byte) uint64 {
	y := x ^ uint64(b)*lowBits
	return (y - lowBits) &^ y & highBits
}

// Byte classes of FromLine's scan.
const (
	cLetter  = 1 << iota // a-z, A-Z
	cWord                // letters, digits, '_', '.'
	cSep                 // '=' and ':', which end a field's key
	cInitial             // the first letters of level words
	cMarker              // the first letters of DetectRecord's marker words
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if isLetter(b) {
			t[c] |= cLetter
		}
		if isWordByte(b) {
			t[c] |= cWord
		}
		if b == '=' || b == ':' {
			t[c] |= cSep
		}
		if isLetter(b) && startsLikeALevel(b) {
			t[c] |= cInitial
		}
	}
	for _, b := range []byte("SFWINDVAELsnidvae") { // markerWord's words and LOG
		t[b] |= cMarker
	}
	return t
}()

// fieldAt reads `key=value` or `"key": "value"` around the separator at
// p[i]: it looks back for a level key and forward for a level value.
func fieldAt(p []byte, i int) (string, bool) {
	k := i
	for k > 0 && p[k-1] == ' ' {
		k--
	}
	if k > 0 && p[k-1] == '"' {
		k--
	}
	start := k
	for start > 0 && k-start < 10 && class[p[start-1]]&cWord != 0 {
		start--
	}
	if start > 0 && class[p[start-1]]&cWord != 0 {
		return "", false // the key is longer than any level key
	}
	if !isLevelKey(p[start:k]) {
		return "", false
	}
	j := i + 1
	for j < len(p) && (p[j] == ' ' || p[j] == '\t' || p[j] == '"' || p[j] == '\'') {
		j++
	}
	e := j
	for e < len(p) && class[p[e]]&cLetter != 0 {
		e++
	}
	if e-j == 0 || e-j > 16 {
		return "", false
	}
	var buf [16]byte
	low := buf[:e-j]
	for n, c := range p[j:e] {
		low[n] = c | 0x20
	}
	return normalizeLower(low)
}

// wordAt decides whether the word p[i:j] (letters only) names a level.
// Single letters are not words here: "I" and "a" occur in ordinary text.
// Words must be all upper or all lower case, or capitalised, as loggers
// print them, and stand alone (not part of an identifier or a path).
func wordAt(p []byte, i, j int) (string, bool) {
	w := p[i:j]
	if len(w) < 3 || len(w) > 8 || class[w[0]]&cInitial == 0 {
		return "", false
	}
	if (i > 0 && class[p[i-1]]&cWord != 0) || (j < len(p) && class[p[j]]&cWord != 0) {
		return "", false
	}
	if !casedLikeALevel(w) {
		return "", false
	}
	var buf [8]byte
	low := buf[:len(w)]
	for k, c := range w {
		low[k] = c | 0x20
	}
	return wordLevel(low)
}

func isLevelKey(k []byte) bool {
	switch string(k) {
	case "level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl", "log.level", "loglevel", "levelname":
		return true
	}
	return false
}

// wordLevel is normalizeLower for words in free text: words that are also
// common English ("alert", "notice", "information") do not count there.
func wordLevel(low []byte) (string, bool) {
	switch string(low) {
	case "alert", "notice", "information", "informational", "emergency":
		return "", false
	}
	return normalizeLower(low)
}

func startsLikeALevel(c byte) bool {
	switch c | 0x20 {
	case 'c', 'e', 'w', 'i', 'd', 't', 'f', 'p':
		return true
	}
	return false
}

func casedLikeALevel(w []byte) bool {
	upper, lower := 0, 0
	for _, c := range w[1:] {
		if c >= 'A' && c <= 'Z' {
			upper++
		} else {
			lower++
		}
	}
	return upper == 0 || lower == 0
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isWordByte(c byte) bool {
	return isLetter(c) || (c >= '0' && c <= '9') || c == '_' || c == '.'
}
