package detect

import (
	"time"
)

// Prefix is how far into a line a timestamp is searched for: far enough
// for an access log's client address and ident fields, near enough that a
// date quoted in a message body is not taken for the line's time.
const Prefix = 160

// Parser reads the timestamps of one file's lines as its Profile says.
// It keeps state (the column of the last match, the inferred year), so
// each file needs its own.
type Parser struct {
	p       *Profile
	st      stamp
	lastPos int

	yearSet   bool
	year      int
	lastMonth int
}

// NewParser returns a parser for the file p describes.
func NewParser(p *Profile) *Parser {
	return &Parser{p: p, lastPos: max(p.FixedPos, 0)}
}

// Parse returns the line's own timestamp in Unix nanoseconds.
func (pr *Parser) Parse(line []byte) (int64, bool) {
	p := pr.p
	if p.NoTimestamps {
		return 0, false
	}
	switch {
	case p.layout != nil:
		if ts, ok := pr.parseLayout(line); ok {
			return ts, true
		}
	case p.Format == JSONFormat:
		if p.JSONKey != "" {
			if _, ok := jsonTime(line, p.JSONKey, &pr.st); ok {
				if ts, ok := pr.resolve(); ok {
					return ts, true
				}
			}
		}
		if isJSONLine(line) {
			if k, _ := jsonFind(line, &pr.st); k != "" {
				if ts, ok := pr.resolve(); ok {
					return ts, true
				}
			}
		}
	case p.Format != nil:
		f := p.Format
		if f.at(line, pr.lastPos, &pr.st) >= 0 {
			if ts, ok := pr.resolve(); ok {
				return ts, true
			}
		} else if p.FixedPos < 0 {
			if pos, _ := f.find(line, Prefix, &pr.st); pos >= 0 {
				if ts, ok := pr.resolve(); ok {
					pr.lastPos = pos
					return ts, true
				}
			}
		}
	}
	return pr.fallback(line)
}

// fallback tries every built-in format at the start of the line (or just
// after an opening bracket), so that a line written in another format than
// the file's usual one still gets its time and starts a record.
func (pr *Parser) fallback(line []byte) (int64, bool) {
	if len(line) == 0 {
		return 0, false
	}
	i := 0
	if line[0] == '[' || line[0] == '(' || line[0] == '<' {
		i = 1
	}
	if i < len(line) && !isAlnum(line[i]) {
		return 0, false
	}
	for _, f := range builtinFormats {
		if f == pr.p.Format {
			continue
		}
		if f.at(line, i, &pr.st) >= 0 {
			if ts, ok := pr.resolve(); ok {
				return ts, true
			}
		}
	}
	return 0, false
}

func (pr *Parser) parseLayout(line []byte) (int64, bool) {
	lf := pr.p.layout
	t, _, ok := lf.parseAt(line, pr.lastPos, pr.p.Location)
	if !ok && pr.lastPos != 0 {
		t, _, ok = lf.parseAt(line, 0, pr.p.Location)
	}
	if !ok {
		return 0, false
	}
	if lf.noYear {
		y := pr.inferYear(int(t.Month()), t.Day())
		t = time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	}
	return t.UnixNano(), true
}

// resolve turns the scanned stamp into Unix nanoseconds, inferring the
// year where the text has none.
func (pr *Parser) resolve() (int64, bool) {
	st := &pr.st
	if st.noYear {
		st.year = pr.inferYear(st.month, st.day)
	}
	return st.unixNanoIn(pr.p.Location)
}

// inferYear gives a year-less date its year. The first date takes the year
// of the reference time (the file's modification time, or the Year
// override), one less if the date would lie after it; later dates move to
// the next year when the month falls back by more than half a year
// (December to January), and a date that jumps forward by more than half a
// year is read as a straggler from the year before.
func (pr *Parser) inferYear(month, day int) int {
	if !pr.yearSet {
		pr.yearSet = true
		pr.lastMonth = month
		if pr.p.Year != 0 {
			pr.year = pr.p.Year
			return pr.year
		}
		ref := pr.p.YearRef
		if ref.IsZero() {
			ref = time.Now()
		}
		if pr.p.Location != nil {
			ref = ref.In(pr.p.Location)
		} else {
			ref = ref.UTC()
		}
		pr.year = ref.Year()
		if month > int(ref.Month()) || (month == int(ref.Month()) && day > ref.Day()+1) {
			pr.year--
		}
		return pr.year
	}
	switch {
	case month < pr.lastMonth-6:
		pr.year++
		pr.lastMonth = month
	case month > pr.lastMonth+6:
		return pr.year - 1
	default:
		pr.lastMonth = month
	}
	return pr.year
}
