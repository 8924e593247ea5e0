package detect

// Level names as Loki's detected_level uses them.
const (
	LevelCritical = "critical"
	LevelFatal    = "fatal"
	LevelError    = "error"
	LevelWarn     = "warn"
	LevelInfo     = "info"
	LevelDebug    = "debug"
	LevelTrace    = "trace"
)

// levelPrefix bounds how far into a record a level word is looked for: the
// level sits in the header of a line, and a word deep in a message ("no
// error") must not become the record's level.
const levelPrefix = 200

// levelKeys are the JSON and logfmt keys that commonly hold a level.
var levelKeys = []string{"level", "lvl", "severity", "log.level", "loglevel", "levelname", "log_level", "Level", "Severity"}

// levelWord maps a level word to its Loki name. Upper-case and Title-case
// words count anywhere in the prefix; lower-case ones only when delimited
// like a level field ("[error]", "<warn>", "error:").
func levelWord(w []byte, lowerOK bool) string {
	switch string(w) {
	case "ERROR", "Error", "ERR", "SEVERE", "Severe", "EROR", "FAILURE":
		return LevelError
	case "WARN", "WARNING", "Warn", "Warning", "WRN":
		return LevelWarn
	case "INFO", "Info", "INF", "NOTICE", "Notice", "INFORMATION", "Information":
		return LevelInfo
	case "DEBUG", "Debug", "DBG", "FINE", "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4", "DEBUG5":
		return LevelDebug
	case "TRACE", "Trace", "TRC", "FINER", "FINEST", "VERBOSE", "Verbose":
		return LevelTrace
	case "FATAL", "Fatal", "PANIC", "FTL":
		return LevelFatal
	case "CRITICAL", "Critical", "CRIT", "EMERG", "EMERGENCY", "ALERT":
		return LevelCritical
	}
	if lowerOK {
		switch string(w) {
		case "error", "err", "severe":
			return LevelError
		case "warn", "warning":
			return LevelWarn
		case "info", "notice", "information":
			return LevelInfo
		case "debug", "dbg":
			return LevelDebug
		case "trace", "verbose":
			return LevelTrace
		case "fatal", "panic":
			return LevelFatal
		case "critical", "crit", "emerg", "alert":
			return LevelCritical
		}
	}
	return ""
}

// levelLetter maps the one-letter levels of klog, Android and MongoDB.
func levelLetter(c byte) string {
	switch c {
	case 'F':
		return LevelFatal
	case 'E':
		return LevelError
	case 'W':
		return LevelWarn
	case 'I':
		return LevelInfo
	case 'D':
		return LevelDebug
	case 'V':
		return LevelTrace
	}
	return ""
}

// findLevel returns the Loki level of a record's first line, or "".
func (p *Profile) findLevel(line []byte) string {
	if p.LevelField != "" {
		if v := fieldValue(line, p.LevelField); v != nil {
			return normalizeLevel(v)
		}
		return ""
	}
	switch p.Format {
	case klogFormat:
		if len(line) > 0 {
			return levelLetter(line[0])
		}
	case monthDayFormat:
		// Android logcat threadtime: "MM-dd HH:mm:ss.SSS  pid  tid L tag:".
		if lv := androidLevel(line); lv != "" {
			return lv
		}
	}
	if isJSONLine(line) {
		for _, k := range levelKeys {
			if v := jsonString(line, k); v != nil {
				return normalizeLevel(v)
			}
		}
		if v := jsonString(line, "s"); len(v) >= 1 && len(v) <= 2 { // MongoDB
			return levelLetter(v[0])
		}
		return ""
	}
	return wordLevel(line)
}

// Byte classes for the level scan.
var (
	alnumByte    = byteSet("", [2]byte{'0', '9'}, [2]byte{'a', 'z'}, [2]byte{'A', 'Z'})
	letterByte   = byteSet("", [2]byte{'a', 'z'}, [2]byte{'A', 'Z'})
	joinerByte   = byteSet("_.-/", [2]byte{'0', '9'}, [2]byte{'a', 'z'}, [2]byte{'A', 'Z'})
	levelInitial = byteSet("EWIDTFCSNPVALewidtfcsnpval")
)

// wordLevel scans the first bytes for a level word or a logfmt level key.
// It jumps from word to word and looks closer only at words of level
// length that start with a level word's letter.
func wordLevel(line []byte) string {
	n := min(len(line), levelPrefix)
	for i := 0; i < n; {
		if !letterByte[line[i]] {
			i++
			continue
		}
		start := i
		j := i + 1
		for j < len(line) && alnumByte[line[j]] {
			j++
		}
		i = j
		wl := j - start
		if wl < 3 || wl > 11 || !levelInitial[line[start]] || (start > 0 && joinerByte[line[start-1]]) {
			continue
		}
		w := line[start:j]
		next := byte(' ')
		if j < len(line) {
			next = line[j]
		}
		if next == '_' || next == '.' && j+1 < len(line) && alnumByte[line[j+1]] {
			continue
		}
		if next == '=' && (string(w) == "level" || string(w) == "lvl" || string(w) == "severity") {
			v := line[j+1:]
			if len(v) > 0 && v[0] == '"' {
				v = v[1:]
			}
			k := 0
			for k < len(v) && letterByte[v[k]] {
				k++
			}
			return normalizeLevel(v[:k])
		}
		var prev byte = ' '
		if start > 0 {
			prev = line[start-1]
		}
		lowerOK := next == ':' || next == ']' || next == '>' || prev == '[' || prev == '<'
		if lv := levelWord(w, lowerOK); lv != "" {
			return lv
		}
		if string(w) == "LOG" && next == ':' { // PostgreSQL's LOG severity
			return LevelInfo
		}
	}
	return ""
}

func normalizeLevel(v []byte) string {
	if len(v) == 1 {
		return levelLetter(v[0] &^ 0x20)
	}
	var buf [16]byte
	if len(v) > len(buf) {
		return ""
	}
	for i, c := range v {
		buf[i] = c | 0x20
	}
	if lv := levelWord(buf[:len(v)], true); lv != "" {
		return lv
	}
	return ""
}

// fieldValue reads a user-named level field as JSON or logfmt.
func fieldValue(line []byte, key string) []byte {
	if isJSONLine(line) {
		return jsonString(line, key)
	}
	for i := 0; i+len(key) < len(line); i++ {
		if (i == 0 || line[i-1] == ' ') && string(line[i:i+len(key)]) == key && line[i+len(key)] == '=' {
			v := line[i+len(key)+1:]
			if len(v) > 0 && v[0] == '"' {
				v = v[1:]
			}
			k := 0
			for k < len(v) && isAlnum(v[k]) {
				k++
			}
			return v[:k]
		}
	}
	return nil
}

func androidLevel(line []byte) string {
	i := 18 // after "MM-dd HH:mm:ss.SSS"
	for f := 0; f < 2; f++ {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) || !isDigit(line[i]) {
			return ""
		}
		for i < len(line) && isDigit(line[i]) {
			i++
		}
	}
	if i+2 < len(line) && line[i] == ' ' && line[i+2] == ' ' {
		return levelLetter(line[i+1])
	}
	return ""
}

var (
	klogFormat     = FormatByName("klog")
	monthDayFormat = FormatByName("month-day")
)
