package levels

import (
	"bytes"

	"github.com/logsift/logsift/pkg/labels"
)

// Format is what a reader that knows a file's format (logsift-agent's
// importer detects it from a sample of the file) knows about where each
// line carries its level. The server never knows it: a pushed line stands
// alone.
type Format uint8

// The formats with a level in a fixed place.
const (
	// Plain: no fixed place; the level is searched for as Detect does.
	Plain Format = iota
	// Klog: Kubernetes' klog header, "I0507 12:04:17.597069 ...": the
	// first letter (I, W, E, F) is the level.
	Klog
	// Logcat: Android logcat's threadtime format,
	// "03-17 16:13:38.811  1702  2395 D Tag: ...": the letter after the
	// process and thread IDs (V, D, I, W, E, F, A) is the level.
	Logcat
)

// Hints are what a reader of a whole file adds to the detection of its
// records.
type Hints struct {
	// Field, when set, is the one place the level is read from: a JSON or
	// logfmt key chosen by the user. A record without it is Unknown.
	Field string
	// Format tells where the level sits in each line of the file.
	Format Format
}

// DetectRecord returns the level of a record: one or more lines joined by
// '\n', such as a stack trace under its header line. The level is the
// header's, so only the first line is searched; Detect on that line alone
// decides wherever it finds a level, so a record's level agrees with what
// the server gives the same line pushed on its own. Only where Detect
// finds none (Unknown) does DetectRecord look further, for markers Loki
// does not know: MongoDB's "s" field, java.util.logging's SEVERE and FINE,
// syslog's NOTICE and ALERT, PostgreSQL's LOG:, bracketed [notice]. Two
// hints override that order: a user's Field, and the level letter of a
// known Format, which a message word must not contradict.
func DetectRecord(stream, metadata labels.Labels, record []byte, h Hints) string {
	if l, ok := FromLabels(stream, metadata); ok {
		return l
	}
	first := record
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	if h.Field != "" {
		if l, ok := normalizeAny(fieldValue(first, h.Field)); ok {
			return l
		}
		return Unknown
	}
	switch h.Format {
	case Klog:
		if l, ok := klogLevel(first); ok {
			return l
		}
	case Logcat:
		if l, ok := logcatLevel(first); ok {
			return l
		}
	}
	if len(first) > scanPrefix {
		first = first[:scanPrefix]
	}
	l, marker := scan(first, true)
	if l != Unknown {
		return l
	}
	if l, ok := mongoLevel(first); ok {
		return l
	}
	if marker != "" {
		return marker
	}
	return Unknown
}

// metadataOf holds one shared, read-only metadata set per level.
var metadataOf = func() map[string]labels.Labels {
	m := map[string]labels.Labels{}
	for _, l := range All {
		m[l] = labels.Labels{{Name: Label, Value: l}}
	}
	return m
}()

// Metadata returns structured metadata holding only detected_level=level.
// For the normalised levels the set is shared, so that an entry gets its
// level without an allocation: callers must not modify it.
func Metadata(level string) labels.Labels {
	if md, ok := metadataOf[level]; ok {
		return md
	}
	return labels.Labels{{Name: Label, Value: level}}
}

// FromLabels reads the level of a level-like stream label or metadata
// field (level, severity, ...), the first thing Detect looks at: a caller
// with many entries of one stream can look at the stream once.
func FromLabels(stream, metadata labels.Labels) (string, bool) {
	for _, name := range fieldNames {
		if v := stream.Get(name); v != "" {
			if l, ok := Normalize(v); ok {
				return l, true
			}
		}
		if v := metadata.Get(name); v != "" {
			if l, ok := Normalize(v); ok {
				return l, true
			}
		}
	}
	return "", false
}

// normalizeAny is Normalize with the level names Loki does not normalise
// (java.util.logging's, three-letter abbreviations).
func normalizeAny(v []byte) (string, bool) {
	if len(v) == 0 || len(v) > 16 {
		return "", false
	}
	var buf [16]byte
	low := buf[:len(v)]
	for i, c := range v {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	if l, ok := normalizeLower(low); ok {
		return l, true
	}
	return normalizeMore(low)
}

func normalizeMore(low []byte) (string, bool) {
	switch string(low) {
	case "severe", "failure":
		return Error, true
	case "wrn":
		return Warn, true
	case "inf", "log":
		return Info, true
	case "dbg", "fine", "debug1", "debug2", "debug3", "debug4", "debug5":
		return Debug, true
	case "finer", "finest", "verbose", "v":
		return Trace, true
	case "ftl":
		return Fatal, true
	case "a", "assert":
		return Critical, true
	}
	return "", false
}

// letterLevel maps the one-letter levels of klog, logcat and MongoDB.
func letterLevel(c byte) (string, bool) {
	switch c {
	case 'F':
		return Fatal, true
	case 'A':
		return Critical, true
	case 'E':
		return Error, true
	case 'W':
		return Warn, true
	case 'I':
		return Info, true
	case 'D':
		return Debug, true
	case 'V':
		return Trace, true
	}
	return "", false
}

// klogLevel reads "Lmmdd " at the start of a klog line.
func klogLevel(line []byte) (string, bool) {
	if len(line) < 6 || line[5] != ' ' || !isDigits(line[1:5]) {
		return "", false
	}
	switch line[0] {
	case 'I', 'W', 'E', 'F':
		return letterLevel(line[0])
	}
	return "", false
}

// logcatLevel reads the level letter of "MM-dd HH:mm:ss.SSS  pid  tid L ".
func logcatLevel(line []byte) (string, bool) {
	const stamp = len("03-17 16:13:38.811")
	if len(line) < stamp || line[2] != '-' || line[5] != ' ' || line[8] != ':' {
		return "", false
	}
	i := stamp
	for range 2 { // process and thread IDs
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) || !isDigit(line[i]) {
			return "", false
		}
		for i < len(line) && isDigit(line[i]) {
			i++
		}
	}
	if i+2 < len(line) && line[i] == ' ' && line[i+2] == ' ' {
		return letterLevel(line[i+1])
	}
	return "", false
}

// fieldValue reads the value of a user-named level key as JSON
// ("key":"v") or logfmt (key=v, key="v") in the scanned prefix of a line;
// nil when the line has no such key.
func fieldValue(line []byte, key string) []byte {
	p := line
	if len(p) > scanPrefix {
		p = p[:scanPrefix]
	}
	for off := 0; off < len(p); {
		i := bytes.Index(p[off:], []byte(key))
		if i < 0 {
			return nil
		}
		i += off
		off = i + 1
		j := i + len(key)
		if i > 0 && p[i-1] == '"' && j < len(p) && p[j] == '"' { // JSON
			j++
			for j < len(p) && p[j] == ' ' {
				j++
			}
			if j >= len(p) || p[j] != ':' {
				continue
			}
			j++
		} else if (i == 0 || p[i-1] == ' ' || p[i-1] == '\t') && j < len(p) && p[j] == '=' { // logfmt
			j++
		} else {
			continue
		}
		for j < len(p) && (p[j] == ' ' || p[j] == '"') {
			j++
		}
		e := j
		for e < len(p) && isWordByte(p[e]) && p[e] != '.' {
			e++
		}
		return p[j:e]
	}
	return nil
}

// markerAt decides whether the word starting at p[i] (letters up to j,
// then any digits: DEBUG1..DEBUG5) is a level marker Loki does not know.
// Words that are also plain English (notice, alert, information, severe)
// count only in upper case, capitalised, or set off like a level field:
// "[notice]", "<alert>", "notice:". "" when it is not.
func markerAt(p []byte, i, j int) string {
	n := len(p)
	for j < n && isDigit(p[j]) {
		j++
	}
	if wl := j - i; wl < 3 || wl > 11 {
		return ""
	}
	if (i > 0 && class[p[i-1]]&cWord != 0) || (j < n && class[p[j]]&cWord != 0) {
		return ""
	}
	w := p[i:j]
	var prev, next byte = ' ', ' '
	if i > 0 {
		prev = p[i-1]
	}
	if j < n {
		next = p[j]
	}
	if string(w) == "LOG" && next == ':' { // PostgreSQL's LOG severity
		return Info
	}
	delimited := prev == '[' || prev == '<' || next == ']' || next == '>' || next == ':'
	l, _ := markerWord(w, delimited)
	return l
}

// markerWord maps a word to a level where Loki's words do not.
func markerWord(w []byte, delimited bool) (string, bool) {
	switch string(w) {
	case "SEVERE", "Severe", "FAILURE":
		return Error, true
	case "WRN":
		return Warn, true
	case "INF", "NOTICE", "Notice", "INFORMATION", "Information":
		return Info, true
	case "DBG", "FINE", "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4", "DEBUG5":
		return Debug, true
	case "FINER", "FINEST", "VERBOSE", "Verbose":
		return Trace, true
	case "FTL":
		return Fatal, true
	case "ALERT", "EMERG", "EMERGENCY":
		return Critical, true
	}
	if !delimited {
		return "", false
	}
	switch string(w) {
	case "severe":
		return Error, true
	case "notice", "information":
		return Info, true
	case "dbg":
		return Debug, true
	case "verbose":
		return Trace, true
	case "alert", "emerg", "emergency":
		return Critical, true
	}
	return "", false
}

// mongoLevel reads MongoDB's structured log severity, "s":"I" (D1-D5 for
// debug), in a JSON line.
func mongoLevel(p []byte) (string, bool) {
	if len(p) == 0 || p[0] != '{' {
		return "", false
	}
	i := bytes.Index(p, []byte(`"s":"`))
	if i < 0 {
		return "", false
	}
	v := p[i+5:]
	n := bytes.IndexByte(v, '"')
	if n < 1 || n > 2 {
		return "", false
	}
	return letterLevel(v[0])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}
