package detect

import (
	"bytes"
	"regexp"
	"sort"
	"time"

	"github.com/logsift/logsift/pkg/levels"
)

// SampleLines is how many first lines of a file detection looks at.
const SampleLines = 200

// SampleBytes bounds the sample when lines are long.
const SampleBytes = 1 << 20

// Mode says how a file's lines group into records.
type Mode int

const (
	// ModeTimestamp: a record starts at a line with a timestamp; every
	// other line continues it.
	ModeTimestamp Mode = iota
	// ModePattern: each line is a record, except indented lines, Java
	// stack frames and Go traces, which continue the record before them.
	ModePattern
	// ModeSingle: every line is a record (override "multiline: none").
	ModeSingle
	// ModeRegexp: a record starts at a line matching the user's regexp.
	ModeRegexp
	// ModeMySQLSlow: MySQL slow-log entries, "# Time:" or "# User@Host:"
	// header lines up to the end of the statement.
	ModeMySQLSlow
	// ModeDocker: Docker json-file lines, where a "log" value without a
	// trailing newline is continued by the next line.
	ModeDocker
)

func (m Mode) String() string {
	switch m {
	case ModeTimestamp:
		return "timestamp-start"
	case ModePattern:
		return "patterns"
	case ModeSingle:
		return "single-line"
	case ModeRegexp:
		return "regexp"
	case ModeMySQLSlow:
		return "mysql-slowlog"
	case ModeDocker:
		return "docker-partial"
	}
	return "unknown"
}

// FileInfo is what detection knows of a file besides its lines.
type FileInfo struct {
	Path    string    // path inside the bundle
	ModTime time.Time // the file's or archive member's modification time
}

// Candidate is one format's score on the sample.
type Candidate struct {
	Format  *Format
	JSONKey string
	Matches int
	Pos     int    // most common column of the match
	Example string // the first matching text
}

// Profile is what detection decided for one file, with its evidence.
type Profile struct {
	Path string

	// Timestamps.
	NoTimestamps bool    // override "timestamp: none"
	Format       *Format // nil: none found in the sample (or a layout)
	JSONKey      string  // for Format == JSONFormat
	FixedPos     int     // column every timestamp starts at, or -1
	Location     *time.Location
	Year         int       // override for year-less formats
	YearRef      time.Time // reference for inferring a missing year
	layout       *layoutFormat
	LayoutText   string

	// Records.
	Mode        Mode
	IndentCont  bool // indented lines continue a record
	JSONMessage bool // JSON lines whose message starts with whitespace continue a record
	startRE     *regexp.Regexp

	// Levels.
	Levels     bool         // detect each record's level (false with level_field: none)
	LevelField string       // user-named field
	LevelHints levels.Hints // what pkg/levels is told about the file

	Host string // host found in the sample (syslog hostname field)

	Skip     bool
	Settings Settings

	// Evidence, for Explain.
	Sample       int // lines sampled
	Candidates   []Candidate
	StartLines   int // sample lines that could start a record
	StartMatches int // ... and carry the chosen timestamp
	Indented     int // sample lines that start with whitespace
	LevelCounts  map[string]int
	HostLines    int
	ZoneSeen     bool // sample timestamps carried their own zone
}

// Detect decides how to read a file from its first lines (without line
// terminators; a trailing '\r' is ignored).
func Detect(sample [][]byte, info FileInfo, s Settings) *Profile {
	p := &Profile{Path: info.Path, FixedPos: -1, Location: s.Location, Year: s.Year, YearRef: info.ModTime, Settings: s, IndentCont: true}
	if p.Location == nil {
		p.Location = time.UTC
	}
	if s.Skip {
		p.Skip = true
		return p
	}
	lines := make([][]byte, 0, len(sample))
	for _, l := range sample {
		lines = append(lines, bytes.TrimSuffix(l, []byte{'\r'}))
	}
	p.Sample = len(lines)

	p.chooseFormat(lines, s)
	p.chooseMode(lines, s)
	p.chooseLevels(lines, s)
	p.findHost(lines)
	return p
}

func (p *Profile) chooseFormat(lines [][]byte, s Settings) {
	var st stamp
	switch {
	case s.Timestamp == "none":
		p.NoTimestamps = true
		return
	case s.layout != nil:
		p.layout, p.LayoutText = s.layout, s.Timestamp
		c := Candidate{Pos: -1}
		pos := map[int]int{}
		for _, l := range lines {
			if _, at, ok := s.layout.find(l, Prefix, p.Location); ok {
				c.Matches++
				pos[at]++
			}
		}
		c.Pos, _ = modal(pos)
		p.FixedPos = max(c.Pos, 0)
		p.Candidates = []Candidate{c}
		return
	}

	// Score every format on the sample.
	counts := make([]Candidate, len(builtinFormats))
	positions := make([]map[int]int, len(builtinFormats))
	jsonCounts := map[string]int{}
	jsonExample := map[string]string{}
	for i, f := range builtinFormats {
		counts[i].Format = f
		positions[i] = map[int]int{}
	}
	zoned := make([]int, len(builtinFormats))
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		if isJSONLine(l) {
			if k, at := jsonFind(l, &st); k != "" {
				jsonCounts[k]++
				if jsonExample[k] == "" {
					jsonExample[k] = example(l, at)
				}
			}
		}
		for i, f := range builtinFormats {
			if pos, end := f.find(l, Prefix, &st); pos >= 0 {
				counts[i].Matches++
				positions[i][pos]++
				if counts[i].Example == "" {
					counts[i].Example = string(l[pos:end])
				}
				if st.zoned {
					zoned[i]++
				}
			}
		}
	}
	for i := range counts {
		counts[i].Pos, _ = modal(positions[i])
	}
	var jsonBest Candidate
	for k, n := range jsonCounts {
		if n > jsonBest.Matches || (n == jsonBest.Matches && keyRank(k) < keyRank(jsonBest.JSONKey)) {
			jsonBest = Candidate{Format: JSONFormat, JSONKey: k, Matches: n, Pos: -1, Example: jsonExample[k]}
		}
	}
	// Best: most matches; then the earliest usual column; then list order.
	sort.SliceStable(counts, func(a, b int) bool {
		if counts[a].Matches != counts[b].Matches {
			return counts[a].Matches > counts[b].Matches
		}
		return counts[a].Pos < counts[b].Pos
	})
	p.Candidates = counts
	if jsonBest.Matches > 0 {
		p.Candidates = append([]Candidate{jsonBest}, counts...)
		if jsonBest.Matches < counts[0].Matches {
			sort.SliceStable(p.Candidates, func(a, b int) bool { return p.Candidates[a].Matches > p.Candidates[b].Matches })
		}
	}

	// A named format from the overrides wins over the scores.
	if s.Timestamp != "" {
		if f := FormatByName(s.Timestamp); f != nil {
			p.Format = f
			for _, c := range p.Candidates {
				if c.Format == f {
					p.JSONKey = c.JSONKey
					p.setFixedPos(c, positions, f)
				}
			}
			return
		}
		if len(s.Timestamp) > 5 && s.Timestamp[:5] == "json:" {
			p.Format, p.JSONKey = JSONFormat, s.Timestamp[5:]
			return
		}
	}
	best := p.Candidates[0]
	if best.Matches == 0 {
		return
	}
	p.Format, p.JSONKey = best.Format, best.JSONKey
	p.setFixedPos(best, positions, best.Format)
	p.ZoneSeen = best.Format.Zoned
	for i, f := range builtinFormats {
		if f == best.Format && zoned[i] > 0 {
			p.ZoneSeen = true
		}
	}
}

// setFixedPos fixes the column when at least 90% of the matches share it.
func (p *Profile) setFixedPos(c Candidate, positions []map[int]int, f *Format) {
	for i, bf := range builtinFormats {
		if bf == f {
			pos, n := modal(positions[i])
			if c.Matches > 0 && n*10 >= c.Matches*9 {
				p.FixedPos = pos
			}
		}
	}
}

func keyRank(k string) int {
	for i, kk := range jsonTimeKeys {
		if kk == k {
			return i
		}
	}
	return len(jsonTimeKeys)
}

// modal returns the most frequent key (the smallest on a tie) and its count.
func modal(m map[int]int) (int, int) {
	best, n := -1, 0
	for k, c := range m {
		if c > n || (c == n && k < best) {
			best, n = k, c
		}
	}
	return best, n
}

func example(l []byte, at int) string {
	end := min(len(l), at+40)
	return string(l[max(at-1, 0):end])
}

func isIndented(l []byte) bool { return len(l) > 0 && (l[0] == ' ' || l[0] == '\t') }

func isBlank(l []byte) bool {
	for _, c := range l {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func (p *Profile) chooseMode(lines [][]byte, s Settings) {
	switch {
	case s.startRE != nil:
		p.Mode, p.startRE = ModeRegexp, s.startRE
		return
	case s.Multiline == "none":
		p.Mode = ModeSingle
		return
	}
	var mysqlHdr, mysqlQuery, docker, jsonLines int
	for _, l := range lines {
		switch {
		case bytes.HasPrefix(l, []byte("# User@Host: ")):
			mysqlHdr++
		case bytes.HasPrefix(l, []byte("# Query_time: ")):
			mysqlQuery++
		case bytes.HasPrefix(l, []byte(`{"log":"`)):
			docker++
		}
		if isJSONLine(l) {
			jsonLines++
		}
	}
	if mysqlHdr > 0 && mysqlQuery > 0 {
		p.Mode = ModeMySQLSlow
		return
	}
	if len(lines) > 0 && docker*10 >= len(lines)*8 {
		p.Mode = ModeDocker
		return
	}
	p.JSONMessage = len(lines) > 0 && jsonLines*10 >= len(lines)*8

	// Do the records start with timestamps? Count the lines that could
	// start a record (not blank, not indented, not a stack frame) and how
	// many of them carry the chosen timestamp.
	pr := NewParser(p)
	tsIndented, tsLines := 0, 0
	for _, l := range lines {
		if isBlank(l) {
			continue
		}
		_, ok := pr.Parse(l)
		if isIndented(l) {
			p.Indented++
			if ok {
				tsIndented++
			}
		}
		if ok {
			tsLines++
		}
		if isIndented(l) || javaFrame(l) {
			continue
		}
		p.StartLines++
		if ok {
			p.StartMatches++
		}
	}
	// Lines whose timestamps are themselves indented: indentation says
	// nothing there.
	if tsLines > 0 && tsIndented*2 >= tsLines {
		p.IndentCont = false
	}
	if p.Format != nil || p.layout != nil {
		if p.StartLines > 0 && p.StartMatches*2 >= p.StartLines {
			p.Mode = ModeTimestamp
			return
		}
	}
	p.Mode = ModePattern
}

// findHost reads the hostname field of syslog lines ("MMM d HH:mm:ss
// HOST prog[pid]:") and keeps it when one host wrote at least 80% of the
// sample.
func (p *Profile) findHost(lines [][]byte) {
	if p.Format != syslogFormat && p.Format != isoFormat {
		return
	}
	hosts := map[string]int{}
	total := 0
	var st stamp
	for _, l := range lines {
		end := p.Format.at(l, 0, &st)
		if end < 0 || end+1 >= len(l) || l[end] != ' ' {
			continue
		}
		total++
		h := l[end+1:]
		k := 0
		for k < len(h) && k < 64 && (isAlnum(h[k]) || h[k] == '-' || h[k] == '.' || h[k] == '_') {
			k++
		}
		// The field after a syslog stamp is followed by a program name;
		// "host prog:" or "host prog[pid]:".
		if k == 0 || k >= len(h) || h[k] != ' ' || !looksLikeProgram(h[k+1:]) {
			continue
		}
		hosts[string(h[:k])]++
	}
	for h, n := range hosts {
		if n*10 >= total*8 && total > 0 && !isNumeric(h) {
			p.Host, p.HostLines = h, n
		}
	}
}

// looksLikeProgram reports whether b starts with "name:" or "name[pid]:".
func looksLikeProgram(b []byte) bool {
	for i := 0; i < len(b) && i < 64; i++ {
		switch c := b[i]; {
		case c == ':' || c == '[':
			return i > 0
		case c == ' ':
			return false
		}
	}
	return false
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

var (
	syslogFormat = FormatByName("syslog")
	isoFormat    = FormatByName("iso8601")
)
