package detect

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Overrides correct detection per file. Each rule's Match is a glob tested
// against the file's path inside the bundle (archive members by their
// member path); every matching rule applies, a later rule winning field by
// field. It is written to be embedded in the agent's YAML config:
//
//	detection:
//	  rules:
//	    - match: "**/app/*.log"
//	      timestamp: "2006-01-02 15:04:05.000"
//	      timezone: Europe/Berlin
//	    - match: "*.bin"
//	      skip: true
type Overrides struct {
	Rules []Rule `yaml:"rules" json:"rules"`
}

// Rule is one override. Empty fields leave the automatic guess alone.
type Rule struct {
	// Match is a glob: '*', '?' and '[...]' within one path element, '**'
	// for any number of elements. A pattern without '/' matches the base
	// name at any depth. Empty matches every file.
	Match string `yaml:"match" json:"match"`
	// Timestamp is a format name (see Formats: "iso8601", "syslog", ...),
	// a Go time layout ("2006-01-02 15:04:05"), "json:FIELD" for a JSON
	// field, or "none": the file's lines carry no timestamps.
	Timestamp string `yaml:"timestamp" json:"timestamp"`
	// Timezone is an IANA zone name, "Local", or a fixed offset such as
	// "+02:00"; it applies to timestamps written without a zone.
	Timezone string `yaml:"timezone" json:"timezone"`
	// Year is the year of timestamps written without one (syslog, klog).
	Year int `yaml:"year" json:"year"`
	// Multiline is a regular expression that a record's first line
	// matches (every other line continues the record), "none" for one
	// record per line, or "auto" (the default).
	Multiline string `yaml:"multiline" json:"multiline"`
	// LevelField is the JSON or logfmt key that holds the level, or
	// "none" to leave records without a detected level.
	LevelField string `yaml:"level_field" json:"level_field"`
	// Skip leaves the matching files out of the import.
	Skip bool `yaml:"skip" json:"skip"`
}

// Settings are the overrides that apply to one file.
type Settings struct {
	Timestamp  string
	Location   *time.Location // nil: UTC
	Year       int
	Multiline  string
	LevelField string
	Skip       bool
	Matched    []string // the globs of the rules that applied, for explain

	startRE *regexp.Regexp
	layout  *layoutFormat
}

// Validate checks every rule: globs, formats, zones and regexps.
func (o *Overrides) Validate() error {
	if o == nil {
		return nil
	}
	for i, r := range o.Rules {
		if _, err := r.settings(); err != nil {
			return fmt.Errorf("detection rule %d (match %q): %w", i+1, r.Match, err)
		}
		if r.Match != "" {
			if _, err := path.Match(strings.ReplaceAll(r.Match, "**", "*"), "x"); err != nil {
				return fmt.Errorf("detection rule %d: bad glob %q: %w", i+1, r.Match, err)
			}
		}
	}
	return nil
}

// For merges the rules that match path.
func (o *Overrides) For(p string) (Settings, error) {
	var s Settings
	if o == nil {
		return s, nil
	}
	for i, r := range o.Rules {
		if !globMatch(r.Match, p) {
			continue
		}
		rs, err := r.settings()
		if err != nil {
			return s, fmt.Errorf("detection rule %d (match %q): %w", i+1, r.Match, err)
		}
		if rs.Timestamp != "" {
			s.Timestamp, s.layout = rs.Timestamp, rs.layout
		}
		if rs.Location != nil {
			s.Location = rs.Location
		}
		if rs.Year != 0 {
			s.Year = rs.Year
		}
		if rs.Multiline != "" {
			s.Multiline, s.startRE = rs.Multiline, rs.startRE
		}
		if rs.LevelField != "" {
			s.LevelField = rs.LevelField
		}
		s.Skip = s.Skip || rs.Skip
		m := r.Match
		if m == "" {
			m = "(all files)"
		}
		s.Matched = append(s.Matched, m)
	}
	return s, nil
}

// ruleCache keeps each distinct rule's compiled settings: For runs once per
// file, and compiling a regexp or loading a zone each time would cost more
// than detecting the file.
var ruleCache sync.Map // Rule -> ruleSettings

type ruleSettings struct {
	s   Settings
	err error
}

func (r Rule) settings() (Settings, error) {
	if v, ok := ruleCache.Load(r); ok {
		rs := v.(ruleSettings)
		return rs.s, rs.err
	}
	s, err := r.compile()
	ruleCache.Store(r, ruleSettings{s, err})
	return s, err
}

func (r Rule) compile() (Settings, error) {
	s := Settings{Timestamp: r.Timestamp, Year: r.Year, Multiline: r.Multiline, LevelField: r.LevelField, Skip: r.Skip}
	if r.Year != 0 && (r.Year < minYear || r.Year > maxYear) {
		return s, fmt.Errorf("year %d outside %d..%d", r.Year, minYear, maxYear)
	}
	switch ts := r.Timestamp; {
	case ts == "" || ts == "none" || FormatByName(ts) != nil:
	case strings.HasPrefix(ts, "json:"):
		if len(ts) == len("json:") {
			return s, fmt.Errorf(`timestamp "json:" needs a field name`)
		}
	default:
		lf, err := newLayoutFormat(ts)
		if err != nil {
			return s, err
		}
		s.layout = lf
	}
	if r.Timezone != "" {
		loc, err := parseZone(r.Timezone)
		if err != nil {
			return s, err
		}
		s.Location = loc
	}
	switch r.Multiline {
	case "", "auto", "none":
	default:
		re, err := regexp.Compile(r.Multiline)
		if err != nil {
			return s, fmt.Errorf("multiline: %w", err)
		}
		s.startRE = re
	}
	return s, nil
}

// parseZone reads an IANA name, "Local", "UTC" or a fixed offset ±hh:mm.
func parseZone(z string) (*time.Location, error) {
	if z != "" && (z[0] == '+' || z[0] == '-') {
		if off, end, ok := numericOffset([]byte(z), 0); ok && end == len(z) {
			return time.FixedZone(z, off), nil
		}
		return nil, fmt.Errorf("timezone %q: want an offset like +02:00", z)
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %w", z, err)
	}
	return loc, nil
}

// globMatch matches a slash-separated path against a glob with '**'.
func globMatch(pattern, p string) bool {
	if pattern == "" {
		return true
	}
	p = strings.TrimPrefix(p, "/")
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, path.Base(p))
		return ok
	}
	return matchParts(strings.Split(strings.TrimPrefix(pattern, "/"), "/"), strings.Split(p, "/"))
}

func matchParts(pat, parts []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for k := 0; k <= len(parts); k++ {
				if matchParts(pat[1:], parts[k:]) {
					return true
				}
			}
			return false
		}
		if len(parts) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], parts[0]); !ok {
			return false
		}
		pat, parts = pat[1:], parts[1:]
	}
	return len(parts) == 0
}

// layoutFormat parses timestamps with a user's Go time layout. It is slower
// than the built-in scanners (time.Parse per candidate), which is the
// price of an arbitrary layout.
type layoutFormat struct {
	layout string
	zoned  bool
	noYear bool
}

func newLayoutFormat(layout string) (*layoutFormat, error) {
	ref := time.Date(2006, 1, 2, 15, 4, 5, 123456789, time.FixedZone("MST", -7*3600))
	text := ref.Format(layout)
	if _, err := time.Parse(layout, text); err != nil || !strings.ContainsAny(layout, "0123456789") {
		return nil, fmt.Errorf("timestamp %q is neither a known format name (%s) nor a Go time layout", layout, formatNames())
	}
	lf := &layoutFormat{layout: layout}
	lf.zoned = strings.Contains(layout, "Z07") || strings.Contains(layout, "-07") || strings.Contains(layout, "MST")
	lf.noYear = !strings.Contains(layout, "2006") && !strings.Contains(layout, "06")
	return lf, nil
}

func formatNames() string {
	var names []string
	for _, f := range Formats() {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// parseAt tries the layout on text starting at b[i], over the lengths a
// layout's rendering can take (day and fraction widths vary).
func (lf *layoutFormat) parseAt(b []byte, i int, loc *time.Location) (time.Time, int, bool) {
	if loc == nil {
		loc = time.UTC
	}
	n := len(lf.layout)
	for _, l := range [...]int{n, n - 1, n + 1, n + 2, n + 3, n - 2, n + 6, n + 9} {
		if l <= 0 || i+l > len(b) {
			continue
		}
		t, err := time.ParseInLocation(lf.layout, string(b[i:i+l]), loc)
		if err == nil {
			return t, i + l, true
		}
	}
	return time.Time{}, -1, false
}

// find returns the first column in b[:limit] where the layout parses.
func (lf *layoutFormat) find(b []byte, limit int, loc *time.Location) (time.Time, int, bool) {
	if limit > len(b) {
		limit = len(b)
	}
	for i := 0; i < limit; i++ {
		if i > 0 && isAlnum(b[i-1]) {
			continue
		}
		if t, _, ok := lf.parseAt(b, i, loc); ok {
			return t, i, true
		}
	}
	return time.Time{}, -1, false
}
