// Package levels detects the severity of a log entry the way Loki's
// discover_log_levels does: from a level-like label or structured metadata
// field if there is one, else from a level field in a JSON or logfmt line,
// else from the first severity word near the start of the line. The result
// is one of Loki's normalised names, which Grafana colours and Logs
// Drilldown groups by.
package levels

import (
	"github.com/logsift/logsift/pkg/labels"
)

// The normalised levels.
const (
	Critical = "critical"
	Error    = "error"
	Warn     = "warn"
	Info     = "info"
	Debug    = "debug"
	Trace    = "trace"
	Unknown  = "unknown"
)

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
	case "critical", "crit", "fatal", "panic", "emerg", "emergency", "alert", "f", "c":
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
	for _, name := range fieldNames {
		if v := stream.Get(name); v != "" {
			if l, ok := Normalize(v); ok {
				return l
			}
		}
		if v := metadata.Get(name); v != "" {
			if l, ok := Normalize(v); ok {
				return l
			}
		}
	}
	return FromLine(line)
}

// FromLine detects the level from the line alone.
func FromLine(line []byte) string {
	p := line
	if len(p) > scanPrefix {
		p = p[:scanPrefix]
	}
	if l, ok := fromFields(p); ok {
		return l
	}
	if l, ok := fromWords(p); ok {
		return l
	}
	return Unknown
}

// fromFields looks for `level=x`, `"level":"x"` and their variants. It
// stops only at '=' and ':' and looks back for the key, so ordinary text
// costs one byte comparison per byte.
func fromFields(p []byte) (string, bool) {
	for i := 0; i < len(p); i++ {
		if p[i] != '=' && p[i] != ':' {
			continue
		}
		k := i
		for k > 0 && p[k-1] == ' ' {
			k--
		}
		if k > 0 && p[k-1] == '"' {
			k--
		}
		start := k
		for start > 0 && k-start < 10 && isWordByte(p[start-1]) {
			start--
		}
		if start > 0 && isWordByte(p[start-1]) {
			continue // the key is longer than any level key
		}
		if !isLevelKey(p[start:k]) {
			continue
		}
		j := i + 1
		for j < len(p) && (p[j] == ' ' || p[j] == '\t' || p[j] == '"' || p[j] == '\'') {
			j++
		}
		e := j
		for e < len(p) && isLetter(p[e]) {
			e++
		}
		if e-j == 0 || e-j > 16 {
			continue
		}
		var buf [16]byte
		low := buf[:e-j]
		for n, c := range p[j:e] {
			low[n] = c | 0x20
		}
		if l, ok := normalizeLower(low); ok {
			return l, true
		}
	}
	return "", false
}

func isLevelKey(k []byte) bool {
	switch string(k) {
	case "level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl", "log.level", "loglevel", "levelname":
		return true
	}
	return false
}

// fromWords finds the first whole word that names a level. Single letters
// are not words here: "I" and "a" occur in ordinary text. Words must be all
// upper or all lower case, or capitalised, as loggers print them.
func fromWords(p []byte) (string, bool) {
	for i := 0; i < len(p); {
		if !isLetter(p[i]) {
			i++
			continue
		}
		j := i
		for j < len(p) && isLetter(p[j]) {
			j++
		}
		w := p[i:j]
		if len(w) < 3 || len(w) > 8 || !startsLikeALevel(w[0]) {
			i = j
			continue
		}
		boundaryBefore := i == 0 || !isWordByte(p[i-1])
		boundaryAfter := j == len(p) || !isWordByte(p[j])
		if boundaryBefore && boundaryAfter && casedLikeALevel(w) {
			var buf [8]byte
			low := buf[:len(w)]
			for k, c := range w {
				low[k] = c | 0x20
			}
			if l, ok := wordLevel(low); ok {
				return l, true
			}
		}
		i = j
	}
	return "", false
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
