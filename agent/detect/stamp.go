package detect

import (
	"time"
)

// stamp holds a timestamp's fields as a scanner read them, before the year
// is inferred and the zone applied.
type stamp struct {
	year, month, day     int
	hour, min, sec, nsec int
	offset               int  // seconds east of UTC, when zoned
	zoned                bool // the text carried a zone or offset
	noYear               bool // the text carried no year
	epoch                bool // unixNano is already absolute
	unixNano             int64
}

// Bounds of a plausible timestamp. Scanners reject dates outside them so a
// stray number never becomes a date centuries away.
const (
	minYear = 1970
	maxYear = 2199
)

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm); faster than time.Date, which matters
// at millions of lines per second.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func validDate(y, m, d int) bool {
	if m < 1 || m > 12 || d < 1 || d > daysIn[m] {
		return false
	}
	if m == 2 && d == 29 && !(y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		return false
	}
	return true
}

func validClock(h, mi, s int) bool {
	return h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 60
}

// unixNano converts a complete stamp. Stamps without a zone are read in loc
// (UTC when nil).
func (st *stamp) unixNanoIn(loc *time.Location) (int64, bool) {
	if st.epoch {
		return st.unixNano, true
	}
	if st.year < minYear || st.year > maxYear || !validDate(st.year, st.month, st.day) || !validClock(st.hour, st.min, st.sec) {
		return 0, false
	}
	sec := st.sec
	if sec == 60 { // a leap second is read as the last second of the minute
		sec = 59
	}
	if !st.zoned && loc != nil && loc != time.UTC {
		t := time.Date(st.year, time.Month(st.month), st.day, st.hour, st.min, sec, st.nsec, loc)
		return t.UnixNano(), true
	}
	s := daysFromCivil(st.year, st.month, st.day)*86400 + int64(st.hour*3600+st.min*60+sec)
	if st.zoned {
		s -= int64(st.offset)
	}
	return s*1e9 + int64(st.nsec), true
}

// zoneAbbrevs maps the zone abbreviations logs commonly print to their
// offsets. Ambiguous ones take their most common meaning in server logs
// (CST is US Central, IST is India); the timezone override corrects it.
var zoneAbbrevs = map[string]int{
	"UTC": 0, "GMT": 0, "UT": 0, "Z": 0, "WET": 0,
	"WEST": 3600, "BST": 3600, "CET": 3600, "MET": 3600,
	"CEST": 7200, "MEST": 7200, "EET": 7200, "SAST": 7200, "IST": 19800,
	"EEST": 10800, "MSK": 10800,
	"PKT": 18000, "ICT": 25200, "WIB": 25200,
	"CST": -21600, "CDT": -18000, "EST": -18000, "EDT": -14400,
	"MST": -25200, "MDT": -21600, "PST": -28800, "PDT": -25200,
	"AKST": -32400, "AKDT": -28800, "HST": -36000,
	"AST": -14400, "ADT": -10800, "NST": -12600, "NDT": -9000,
	"HKT": 28800, "SGT": 28800, "AWST": 28800, "PHT": 28800,
	"JST": 32400, "KST": 32400,
	"ACST": 34200, "ACDT": 37800, "AEST": 36000, "AEDT": 39600,
	"NZST": 43200, "NZDT": 46800,
}

// zoneAbbrevAt reads an upper-case zone abbreviation at b[i:] that is known
// and ends at a non-letter, returning its offset and end.
func zoneAbbrevAt(b []byte, i int) (offset, end int, ok bool) {
	j := i
	for j < len(b) && j-i < 5 && b[j] >= 'A' && b[j] <= 'Z' {
		j++
	}
	if j-i < 2 || (j < len(b) && isLetter(b[j])) {
		return 0, 0, false
	}
	off, ok := zoneAbbrevs[string(b[i:j])] // no allocation: map lookup of a converted slice
	return off, j, ok
}

var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// monthAt reads a three-letter English month name (Title or upper case).
func monthAt(b []byte, i int) (int, bool) {
	if i+3 > len(b) {
		return 0, false
	}
	c0, c1, c2 := b[i], b[i+1]|0x20, b[i+2]|0x20
	if c0 >= 'a' && c0 <= 'z' {
		return 0, false
	}
	c0 |= 0x20
	switch c0 {
	case 'j':
		switch {
		case c1 == 'a' && c2 == 'n':
			return 1, true
		case c1 == 'u' && c2 == 'n':
			return 6, true
		case c1 == 'u' && c2 == 'l':
			return 7, true
		}
	case 'f':
		if c1 == 'e' && c2 == 'b' {
			return 2, true
		}
	case 'm':
		if c1 == 'a' && c2 == 'r' {
			return 3, true
		}
		if c1 == 'a' && c2 == 'y' {
			return 5, true
		}
	case 'a':
		if c1 == 'p' && c2 == 'r' {
			return 4, true
		}
		if c1 == 'u' && c2 == 'g' {
			return 8, true
		}
	case 's':
		if c1 == 'e' && c2 == 'p' {
			return 9, true
		}
	case 'o':
		if c1 == 'c' && c2 == 't' {
			return 10, true
		}
	case 'n':
		if c1 == 'o' && c2 == 'v' {
			return 11, true
		}
	case 'd':
		if c1 == 'e' && c2 == 'c' {
			return 12, true
		}
	}
	return 0, false
}

// weekdayAt reads a three-letter English weekday name.
func weekdayAt(b []byte, i int) bool {
	if i+3 > len(b) {
		return false
	}
	switch string(b[i : i+3]) {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN":
		return true
	}
	return false
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }

// num reads exactly n digits at b[i:].
func num(b []byte, i, n int) (int, bool) {
	if i < 0 || i+n > len(b) {
		return 0, false
	}
	v := 0
	for k := i; k < i+n; k++ {
		c := b[k]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// fraction reads 1 to 9+ digits of a decimal fraction at b[i:] as
// nanoseconds; digits past the ninth are read and dropped.
func fraction(b []byte, i int) (nsec, end int, ok bool) {
	j := i
	scale := 100_000_000
	for j < len(b) && isDigit(b[j]) {
		if scale > 0 {
			nsec += int(b[j]-'0') * scale
			scale /= 10
		}
		j++
		if j-i > 12 {
			return 0, 0, false
		}
	}
	return nsec, j, j > i
}

// clockAt reads HH:MM:SS at b[i:].
func clockAt(b []byte, i int, st *stamp) (end int, ok bool) {
	h, ok1 := num(b, i, 2)
	m, ok2 := num(b, i+3, 2)
	s, ok3 := num(b, i+6, 2)
	if !ok1 || !ok2 || !ok3 || b[i+2] != ':' || b[i+5] != ':' || !validClock(h, m, s) {
		return 0, false
	}
	st.hour, st.min, st.sec = h, m, s
	return i + 8, true
}

// optFraction reads an optional '.' or ',' fraction after a clock.
func optFraction(b []byte, i int, st *stamp) int {
	if i+1 < len(b) && (b[i] == '.' || b[i] == ',') && isDigit(b[i+1]) {
		ns, end, ok := fraction(b, i+1)
		if ok {
			st.nsec = ns
			return end
		}
	}
	return i
}

// numericOffset reads +HH:MM, +HHMM or +HH at b[i:].
func numericOffset(b []byte, i int) (offset, end int, ok bool) {
	if i >= len(b) || (b[i] != '+' && b[i] != '-') {
		return 0, 0, false
	}
	sign := 1
	if b[i] == '-' {
		sign = -1
	}
	h, ok := num(b, i+1, 2)
	if !ok || h > 18 {
		return 0, 0, false
	}
	j := i + 3
	m := 0
	if j < len(b) && b[j] == ':' {
		if mm, ok := num(b, j+1, 2); ok {
			m, j = mm, j+3
		}
	} else if mm, ok := num(b, j, 2); ok {
		m, j = mm, j+2
	}
	if m > 59 || (j < len(b) && isDigit(b[j])) {
		return 0, 0, false
	}
	return sign * (h*3600 + m*60), j, true
}
