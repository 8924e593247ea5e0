package detect

// Format is one timestamp format detection can choose. Each has a
// hand-written scanner that reads a timestamp starting at a given column
// or fails fast on the first byte that does not fit.
type Format struct {
	Name    string // stable name, used in overrides and explain output
	Pattern string // what it reads, in the notation of the corpus README
	Example string
	NoYear  bool // the format carries no year; it is inferred
	Zoned   bool // the format always carries a zone or is absolute

	scan    func(b []byte, i int, st *stamp) int // end of the match, or -1
	first   *[256]bool                           // bytes a match can start with
	badPrev *[256]bool                           // bytes that may not precede a match
}

// at reads a timestamp of this format starting exactly at b[i].
func (f *Format) at(b []byte, i int, st *stamp) int {
	if i >= len(b) || !f.first[b[i]] || (i > 0 && f.badPrev[b[i-1]]) {
		return -1
	}
	*st = stamp{}
	return f.scan(b, i, st)
}

// find returns the first column in b[:limit] where the format matches.
func (f *Format) find(b []byte, limit int, st *stamp) (pos, end int) {
	if limit > len(b) {
		limit = len(b)
	}
	for i := 0; i < limit; i++ {
		if !f.first[b[i]] || (i > 0 && f.badPrev[b[i-1]]) {
			continue
		}
		*st = stamp{}
		if e := f.scan(b, i, st); e >= 0 {
			return i, e
		}
	}
	return -1, -1
}

func byteSet(chars string, ranges ...[2]byte) *[256]bool {
	var t [256]bool
	for i := 0; i < len(chars); i++ {
		t[chars[i]] = true
	}
	for _, r := range ranges {
		for c := int(r[0]); c <= int(r[1]); c++ {
			t[c] = true
		}
	}
	return &t
}

var (
	digitStart = byteSet("", [2]byte{'0', '9'})
	upperStart = byteSet("", [2]byte{'A', 'Z'})
	// A numeric stamp must not continue a number, a version, a path or
	// an identifier: "v1.2017-05-16" or "blk_1117838570" are not dates.
	numericPrev = byteSet("-/._", [2]byte{'0', '9'}, [2]byte{'a', 'z'}, [2]byte{'A', 'Z'})
	wordPrev    = byteSet("_", [2]byte{'0', '9'}, [2]byte{'a', 'z'}, [2]byte{'A', 'Z'})
	epochPrev   = byteSet("-/._+", [2]byte{'0', '9'}, [2]byte{'a', 'z'}, [2]byte{'A', 'Z'})
)

// Formats lists the built-in formats in tie-break order: when two match
// the same number of sample lines at the same column, the earlier wins.
var builtinFormats = []*Format{
	{Name: "iso8601", Pattern: "yyyy-MM-dd[T ]HH:mm:ss[.,fraction][Z|±hh:mm|±hhmm| ZONE] (also yyyy/MM/dd)", Example: "2016-12-19 16:00:00,123", scan: scanISO, first: digitStart, badPrev: numericPrev},
	{Name: "bgl", Pattern: "yyyy-MM-dd-HH.mm.ss[.ffffff]", Example: "2005-06-03-15.42.50.675872", scan: scanBGL, first: digitStart, badPrev: numericPrev},
	{Name: "clf", Pattern: "dd/MMM/yyyy:HH:mm:ss [±hhmm]", Example: "17/May/2015:10:05:03 +0000", scan: scanCLF, first: digitStart, badPrev: numericPrev},
	{Name: "ansic", Pattern: "EEE MMM d HH:mm:ss[.fraction] [ZONE] yyyy", Example: "Sun Dec 04 04:47:44 2005", scan: scanANSIC, first: upperStart, badPrev: wordPrev},
	{Name: "day-month-year", Pattern: "[EEE, ]d MMM yyyy HH:mm:ss[.fraction] [ZONE|±hhmm]", Example: "27 Dec 2018 11:19:18.874", scan: scanDMY, first: digitStart, badPrev: numericPrev},
	{Name: "syslog", Pattern: "MMM d HH:mm:ss[.fraction] (no year; also MMM d yyyy HH:mm:ss)", Example: "Jun 14 15:16:01", NoYear: true, scan: scanSyslog, first: upperStart, badPrev: wordPrev},
	{Name: "klog", Pattern: "[IWEF]MMdd HH:mm:ss.ffffff (no year)", Example: "I0507 12:04:17.597069", NoYear: true, scan: scanKlog, first: byteSet("IWEF"), badPrev: wordPrev},
	{Name: "compact", Pattern: "yyyyMMdd-H:m:s[:S] (fields not zero-padded; milliseconds after a colon)", Example: "20171223-22:15:29:606", scan: scanCompact, first: digitStart, badPrev: numericPrev},
	{Name: "yymmdd", Pattern: "yyMMdd HHmmss", Example: "081109 203615", scan: scanYYMMDD, first: digitStart, badPrev: numericPrev},
	{Name: "yy/mm/dd", Pattern: "yy/MM/dd HH:mm:ss", Example: "17/06/09 20:10:40", scan: scanYYSlash, first: digitStart, badPrev: numericPrev},
	{Name: "month-day", Pattern: "MM-dd HH:mm:ss.SSS (no year)", Example: "03-17 16:13:38.811", NoYear: true, scan: scanMonthDay, first: digitStart, badPrev: numericPrev},
	{Name: "month.day", Pattern: "MM.dd HH:mm:ss (no year)", Example: "10.30 16:49:06", NoYear: true, scan: scanMonthDot, first: digitStart, badPrev: numericPrev},
	{Name: "epoch", Pattern: "Unix time: 10 digits (seconds, optional .fraction), 13 (ms), 16 (µs) or 19 (ns)", Example: "1117838570", Zoned: true, scan: scanEpoch, first: digitStart, badPrev: epochPrev},
}

// JSONFormat is the pseudo-format of JSON lines whose timestamp is a field.
var JSONFormat = &Format{Name: "json", Pattern: `a JSON field: "@timestamp", "timestamp", "time", "ts", "t":{"$date":…}, "date", … holding ISO 8601 text or Unix time`, Example: `{"ts":"2018-03-24T17:15:20.865716Z",…}`}

// Formats returns the built-in formats, in tie-break order.
func Formats() []*Format { return append([]*Format{JSONFormat}, builtinFormats...) }

// FormatByName returns a built-in format, or nil.
func FormatByName(name string) *Format {
	if name == JSONFormat.Name {
		return JSONFormat
	}
	for _, f := range builtinFormats {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func scanISO(b []byte, i int, st *stamp) int {
	if i+19 > len(b) {
		return -1
	}
	sep := b[i+4]
	if sep != '-' && sep != '/' || b[i+7] != sep {
		return -1
	}
	y, ok1 := num(b, i, 4)
	mo, ok2 := num(b, i+5, 2)
	d, ok3 := num(b, i+8, 2)
	if !ok1 || !ok2 || !ok3 || (b[i+10] != 'T' && b[i+10] != ' ') || !validDate(y, mo, d) {
		return -1
	}
	j, ok := clockAt(b, i+11, st)
	if !ok {
		return -1
	}
	st.year, st.month, st.day = y, mo, d
	j = optFraction(b, j, st)
	j = optZone(b, j, st)
	if j < len(b) && isDigit(b[j]) {
		return -1
	}
	return j
}

// optZone reads an optional zone right after a clock or fraction: Z,
// ±hh:mm, ±hhmm, or a space then ±hhmm or a known abbreviation.
func optZone(b []byte, j int, st *stamp) int {
	if j >= len(b) {
		return j
	}
	switch c := b[j]; {
	case c == 'Z' || c == 'z':
		if j+1 == len(b) || !isAlnum(b[j+1]) {
			st.zoned, st.offset = true, 0
			return j + 1
		}
	case c == '+' || c == '-':
		if off, e, ok := numericOffset(b, j); ok {
			st.zoned, st.offset = true, off
			return e
		}
	case c == ' ' && j+1 < len(b):
		n := b[j+1]
		if n == '+' || n == '-' {
			if off, e, ok := numericOffset(b, j+1); ok && e-j >= 6 { // ±hhmm or ±hh:mm only
				st.zoned, st.offset = true, off
				return e
			}
		} else if n >= 'A' && n <= 'Z' {
			if off, e, ok := zoneAbbrevAt(b, j+1); ok {
				st.zoned, st.offset = true, off
				return e
			}
		}
	}
	return j
}

func scanBGL(b []byte, i int, st *stamp) int {
	if i+19 > len(b) || b[i+4] != '-' || b[i+7] != '-' || b[i+10] != '-' || b[i+13] != '.' || b[i+16] != '.' {
		return -1
	}
	y, ok1 := num(b, i, 4)
	mo, ok2 := num(b, i+5, 2)
	d, ok3 := num(b, i+8, 2)
	h, ok4 := num(b, i+11, 2)
	mi, ok5 := num(b, i+14, 2)
	s, ok6 := num(b, i+17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !validClock(h, mi, s) || !validDate(y, mo, d) {
		return -1
	}
	st.year, st.month, st.day, st.hour, st.min, st.sec = y, mo, d, h, mi, s
	j := optFraction(b, i+19, st)
	if j < len(b) && isDigit(b[j]) {
		return -1
	}
	return j
}

func scanCLF(b []byte, i int, st *stamp) int {
	if i+20 > len(b) || b[i+2] != '/' || b[i+6] != '/' || b[i+11] != ':' {
		return -1
	}
	d, ok1 := num(b, i, 2)
	mo, ok2 := monthAt(b, i+3)
	y, ok3 := num(b, i+7, 4)
	if !ok1 || !ok2 || !ok3 || !validDate(y, mo, d) {
		return -1
	}
	j, ok := clockAt(b, i+12, st)
	if !ok {
		return -1
	}
	st.year, st.month, st.day = y, mo, d
	j = optFraction(b, j, st)
	if j < len(b) && b[j] == ' ' {
		if off, e, ok := numericOffset(b, j+1); ok {
			st.zoned, st.offset = true, off
			j = e
		}
	}
	return j
}

// syslogCore reads "MMM d HH:mm:ss", with a space-padded or unpadded day
// and an optional year between day and clock (Cisco style).
func syslogCore(b []byte, i int, st *stamp) int {
	mo, ok := monthAt(b, i)
	if !ok || i+14 > len(b) || b[i+3] != ' ' {
		return -1
	}
	j := i + 4
	if b[j] == ' ' {
		j++
	}
	d := 0
	switch {
	case j+1 < len(b) && isDigit(b[j]) && isDigit(b[j+1]):
		d = int(b[j]-'0')*10 + int(b[j+1]-'0')
		j += 2
	case j < len(b) && isDigit(b[j]):
		d = int(b[j] - '0')
		j++
	default:
		return -1
	}
	if j >= len(b) || b[j] != ' ' {
		return -1
	}
	j++
	if y, ok := num(b, j, 4); ok && j+4 < len(b) && b[j+4] == ' ' {
		st.year = y
		j += 5
	} else {
		st.noYear = true
	}
	if j+8 > len(b) {
		return -1
	}
	e, ok := clockAt(b, j, st)
	if !ok {
		return -1
	}
	st.month, st.day = mo, d
	if d < 1 || d > daysIn[mo] {
		return -1
	}
	e = optFraction(b, e, st)
	if e < len(b) && isDigit(b[e]) {
		return -1
	}
	return e
}

func scanSyslog(b []byte, i int, st *stamp) int { return syslogCore(b, i, st) }

func scanANSIC(b []byte, i int, st *stamp) int {
	if !weekdayAt(b, i) || i+4 >= len(b) || b[i+3] != ' ' {
		return -1
	}
	j := syslogCore(b, i+4, st)
	if j < 0 || !st.noYear {
		return j
	}
	// The year follows the clock, maybe after a zone: "... 15:04:05 MST 2006".
	if j+1 < len(b) && b[j] == ' ' && b[j+1] >= 'A' && b[j+1] <= 'Z' {
		if off, e, ok := zoneAbbrevAt(b, j+1); ok {
			st.zoned, st.offset = true, off
			j = e
		}
	}
	if j < len(b) && b[j] == ' ' {
		if y, ok := num(b, j+1, 4); ok && (j+5 == len(b) || !isDigit(b[j+5])) {
			st.year, st.noYear = y, false
			return j + 5
		}
	}
	return -1
}

func scanDMY(b []byte, i int, st *stamp) int {
	j := i
	d := 0
	switch {
	case j+1 < len(b) && isDigit(b[j]) && isDigit(b[j+1]):
		d = int(b[j]-'0')*10 + int(b[j+1]-'0')
		j += 2
	default:
		d = int(b[j] - '0')
		j++
	}
	if j+18 > len(b) || b[j] != ' ' || b[j+4] != ' ' || b[j+9] != ' ' {
		return -1
	}
	mo, ok := monthAt(b, j+1)
	if !ok {
		return -1
	}
	y, ok := num(b, j+5, 4)
	if !ok || !validDate(y, mo, d) {
		return -1
	}
	e, ok := clockAt(b, j+10, st)
	if !ok {
		return -1
	}
	st.year, st.month, st.day = y, mo, d
	e = optFraction(b, e, st)
	e = optZone(b, e, st)
	if e < len(b) && isDigit(b[e]) {
		return -1
	}
	return e
}

func scanKlog(b []byte, i int, st *stamp) int {
	if i+14 > len(b) || b[i+5] != ' ' {
		return -1
	}
	mo, ok1 := num(b, i+1, 2)
	d, ok2 := num(b, i+3, 2)
	if !ok1 || !ok2 || mo < 1 || mo > 12 || d < 1 || d > daysIn[mo] {
		return -1
	}
	e, ok := clockAt(b, i+6, st)
	if !ok {
		return -1
	}
	st.month, st.day, st.noYear = mo, d, true
	e = optFraction(b, e, st)
	if e < len(b) && isDigit(b[e]) {
		return -1
	}
	return e
}

func scanCompact(b []byte, i int, st *stamp) int {
	if i+14 > len(b) || b[i+8] != '-' {
		return -1
	}
	y, ok1 := num(b, i, 4)
	mo, ok2 := num(b, i+4, 2)
	d, ok3 := num(b, i+6, 2)
	if !ok1 || !ok2 || !ok3 || !validDate(y, mo, d) {
		return -1
	}
	// HealthApp pads none of its clock fields: "20171223-23:7:6:75" is
	// 23:07:06 and 75 ms.
	var f [4]int
	j, n := i+9, 0
	for n < 4 {
		v, k := 0, j
		for k < len(b) && isDigit(b[k]) && k-j < 3 {
			v = v*10 + int(b[k]-'0')
			k++
		}
		if k == j || (n < 3 && k-j > 2) {
			break
		}
		f[n], j = v, k
		n++
		if n == 4 || j >= len(b) || b[j] != ':' || j+1 >= len(b) || !isDigit(b[j+1]) {
			break
		}
		j++
	}
	if n < 3 || !validClock(f[0], f[1], f[2]) || (j < len(b) && isDigit(b[j])) {
		return -1
	}
	st.year, st.month, st.day = y, mo, d
	st.hour, st.min, st.sec, st.nsec = f[0], f[1], f[2], f[3]*1e6
	return j
}

func twoDigitYear(yy int) int {
	if yy < 70 {
		return 2000 + yy
	}
	return 1900 + yy
}

func scanYYMMDD(b []byte, i int, st *stamp) int {
	if i+13 > len(b) || b[i+6] != ' ' {
		return -1
	}
	yy, ok1 := num(b, i, 2)
	mo, ok2 := num(b, i+2, 2)
	d, ok3 := num(b, i+4, 2)
	h, ok4 := num(b, i+7, 2)
	mi, ok5 := num(b, i+9, 2)
	s, ok6 := num(b, i+11, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !validClock(h, mi, s) || !validDate(twoDigitYear(yy), mo, d) || (i+13 < len(b) && isAlnum(b[i+13])) {
		return -1
	}
	st.year, st.month, st.day, st.hour, st.min, st.sec = twoDigitYear(yy), mo, d, h, mi, s
	return i + 13
}

func scanYYSlash(b []byte, i int, st *stamp) int {
	if i+17 > len(b) || b[i+2] != '/' || b[i+5] != '/' || b[i+8] != ' ' {
		return -1
	}
	yy, ok1 := num(b, i, 2)
	mo, ok2 := num(b, i+3, 2)
	d, ok3 := num(b, i+6, 2)
	if !ok1 || !ok2 || !ok3 || !validDate(twoDigitYear(yy), mo, d) {
		return -1
	}
	e, ok := clockAt(b, i+9, st)
	if !ok {
		return -1
	}
	st.year, st.month, st.day = twoDigitYear(yy), mo, d
	e = optFraction(b, e, st)
	if e < len(b) && isDigit(b[e]) {
		return -1
	}
	return e
}

func scanMonthDay(b []byte, i int, st *stamp) int {
	if i+18 > len(b) || b[i+2] != '-' || b[i+5] != ' ' || b[i+14] != '.' {
		return -1
	}
	mo, ok1 := num(b, i, 2)
	d, ok2 := num(b, i+3, 2)
	if !ok1 || !ok2 || mo < 1 || mo > 12 || d < 1 || d > daysIn[mo] {
		return -1
	}
	e, ok := clockAt(b, i+6, st)
	if !ok {
		return -1
	}
	st.month, st.day, st.noYear = mo, d, true
	e = optFraction(b, e, st)
	if e < len(b) && isDigit(b[e]) {
		return -1
	}
	return e
}

func scanMonthDot(b []byte, i int, st *stamp) int {
	if i+14 > len(b) || b[i+2] != '.' || b[i+5] != ' ' {
		return -1
	}
	mo, ok1 := num(b, i, 2)
	d, ok2 := num(b, i+3, 2)
	if !ok1 || !ok2 || mo < 1 || mo > 12 || d < 1 || d > daysIn[mo] {
		return -1
	}
	e, ok := clockAt(b, i+6, st)
	if !ok {
		return -1
	}
	st.month, st.day, st.noYear = mo, d, true
	if e < len(b) && (isDigit(b[e]) || b[e] == '.') {
		return -1
	}
	return e
}

// Plausible Unix times: 2000-01-01 to 2100-01-01. Ten digits start in
// 2001, so seconds below that cannot be mistaken for dates anyway.
const (
	epochMin = 946684800
	epochMax = 4102444800
)

func scanEpoch(b []byte, i int, st *stamp) int {
	j := i
	var v int64
	for j < len(b) && isDigit(b[j]) && j-i < 20 {
		v = v*10 + int64(b[j]-'0')
		j++
	}
	n := j - i
	var ns int64
	switch n {
	case 10:
		if v < epochMin || v >= epochMax {
			return -1
		}
		ns = v * 1e9
		if j+1 < len(b) && b[j] == '.' && isDigit(b[j+1]) {
			frac, e, ok := fraction(b, j+1)
			if !ok {
				return -1
			}
			ns += int64(frac)
			j = e
		}
	case 13:
		if v < epochMin*1e3 || v >= epochMax*1e3 {
			return -1
		}
		ns = v * 1e6
	case 16:
		if v < epochMin*1e6 || v >= epochMax*1e6 {
			return -1
		}
		ns = v * 1e3
	case 19:
		if v < epochMin*1e9 || v >= epochMax*1e9 {
			return -1
		}
		ns = v
	default:
		return -1
	}
	if j < len(b) && (isAlnum(b[j]) || b[j] == '.' || b[j] == '_' || b[j] == '-') {
		return -1
	}
	st.epoch, st.unixNano, st.zoned = true, ns, true
	return j
}
