package detect

import "bytes"

// jsonTimeKeys are the fields JSON logs commonly keep their time in, in
// order of preference: when a line has several ("_write_ts" and "ts" in
// Zeek logs, "load_timestamp" and "timestamp" in NGINX Plus status), the
// earlier one in this list is the event time.
var jsonTimeKeys = []string{"@timestamp", "timestamp", "time", "ts", "t", "date", "datetime", "eventTime", "_time", "Timestamp", "@t", "asctime"}

// maxJSONScan bounds how far into a line a JSON key is searched for.
const maxJSONScan = 64 << 10

func isJSONLine(b []byte) bool {
	for i := 0; i < len(b) && i < 8; i++ {
		switch b[i] {
		case ' ', '\t':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// jsonValue returns the column just after `"key":` (spaces allowed around
// the colon) where key is a real key of b, or -1. A key is real when its
// opening quote follows '{', ',' or whitespace.
func jsonValue(b []byte, key string) int {
	if len(b) > maxJSONScan {
		b = b[:maxJSONScan]
	}
	off := 0
	for off < len(b) {
		k := bytes.Index(b[off:], []byte(key)) // no allocation: the conversion does not escape
		if k < 0 {
			return -1
		}
		k += off
		off = k + 1
		if k == 0 || b[k-1] != '"' || k+len(key) >= len(b) || b[k+len(key)] != '"' {
			continue
		}
		p := k - 2
		for p >= 0 && (b[p] == ' ' || b[p] == '\t') {
			p--
		}
		if p < 0 || (b[p] != '{' && b[p] != ',') {
			continue
		}
		j := k + len(key) + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		if j >= len(b) || b[j] != ':' {
			continue
		}
		j++
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		return j
	}
	return -1
}

// jsonTime reads the timestamp of JSON field key in b: a string holding a
// timestamp of any built-in text format, a number of Unix time, or
// MongoDB's {"$date": ...}.
func jsonTime(b []byte, key string, st *stamp) (pos int, ok bool) {
	j := jsonValue(b, key)
	if j < 0 || j >= len(b) {
		return -1, false
	}
	if b[j] == '{' {
		rest := b[j:]
		if len(rest) > 256 {
			rest = rest[:256]
		}
		k := jsonValue(rest, "$date")
		if k < 0 {
			return -1, false
		}
		j += k
		if j >= len(b) {
			return -1, false
		}
	}
	switch {
	case b[j] == '"':
		j++
		for _, f := range builtinFormats {
			if f == epochFormat {
				continue
			}
			if e := f.at(b, j, st); e >= 0 {
				return j, true
			}
		}
		if e := epochFormat.at(b, j, st); e >= 0 && e < len(b) && b[e] == '"' {
			return j, true
		}
	case isDigit(b[j]):
		if e := epochFormat.at(b, j, st); e >= 0 {
			return j, true
		}
	}
	return -1, false
}

// jsonFind tries every known key and returns the first that holds a time.
func jsonFind(b []byte, st *stamp) (key string, pos int) {
	for _, k := range jsonTimeKeys {
		if p, ok := jsonTime(b, k, st); ok {
			return k, p
		}
	}
	return "", -1
}

// jsonString returns the raw (still escaped) text of string field key, or nil.
func jsonString(b []byte, key string) []byte {
	j := jsonValue(b, key)
	if j < 0 || j >= len(b) || b[j] != '"' {
		return nil
	}
	j++
	for k := j; k < len(b); k++ {
		switch b[k] {
		case '\\':
			k++
		case '"':
			return b[j:k]
		}
	}
	return nil
}

var epochFormat = FormatByName("epoch")
