package detect

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/levels"
)

// Explain writes what detection decided for the file and why, in words a
// user can check against the file, and how to override each decision.
// sample is the sample Detect saw; it is run through the assembler to show
// real records.
func (p *Profile) Explain(w io.Writer, sample [][]byte) {
	ew := &errWriter{w: w}
	if p.Skip {
		ew.printf("  skipped by override rule %s\n", strings.Join(p.Settings.Matched, ", "))
		return
	}
	if len(p.Settings.Matched) > 0 {
		ew.printf("  overrides:  rules matching %s apply\n", strings.Join(p.Settings.Matched, ", "))
	}
	ew.printf("  sample:     first %d lines\n", p.Sample)
	p.explainTime(ew)
	p.explainRecords(ew, sample)
	p.explainLevels(ew)
	if p.Host != "" {
		ew.printf("  host:       %s (syslog host field in %d sample lines)\n", p.Host, p.HostLines)
	}
}

func (p *Profile) explainTime(ew *errWriter) {
	switch {
	case p.NoTimestamps:
		ew.printf("  timestamp:  none (override \"timestamp: none\"); records take the file's modification time\n")
		return
	case p.layout != nil:
		c := p.Candidates[0]
		ew.printf("  timestamp:  Go layout %q (override), matched %d of %d sample lines at column %d\n", p.LayoutText, c.Matches, p.Sample, c.Pos)
	case p.Format == nil:
		ew.printf("  timestamp:  none found in the sample; each line is checked for any known format at its start,\n")
		ew.printf("              lines without one take the previous record's time (the file's modification time before the first)\n")
		ew.printf("              override with timestamp: <format name or Go layout>\n")
		return
	default:
		var chosen Candidate
		for _, c := range p.Candidates {
			if c.Format == p.Format {
				chosen = c
				break
			}
		}
		name := p.Format.Name
		if p.Format == JSONFormat {
			name = fmt.Sprintf("json field %q", p.JSONKey)
		}
		how := "chosen by match count"
		if p.Settings.Timestamp != "" {
			how = "set by override"
		}
		ew.printf("  timestamp:  %s  %s (%s)\n", name, p.Format.Pattern, how)
		ew.printf("              matched %d of %d sample lines", chosen.Matches, p.Sample)
		switch {
		case p.Format == JSONFormat:
			ew.printf(", e.g. %s\n", chosen.Example)
		case p.FixedPos >= 0:
			ew.printf(" at column %d, e.g. %q\n", p.FixedPos, chosen.Example)
		default:
			ew.printf(" at varying columns (searched in the first %d bytes), e.g. %q\n", Prefix, chosen.Example)
		}
	}
	var others []string
	tie := ""
	for _, c := range p.Candidates {
		if c.Format != p.Format && c.Matches > 0 {
			others = append(others, fmt.Sprintf("%s %d", c.Format.Name, c.Matches))
			if tie == "" && p.Format != nil && p.Settings.Timestamp == "" && c.Matches == p.Candidates[0].Matches {
				tie = c.Format.Name
			}
		}
	}
	if len(others) > 0 {
		ew.printf("              other candidates (sample lines matched): %s\n", strings.Join(others, ", "))
	}
	if tie != "" {
		ew.printf("              tie with %s, decided by the earlier column (JSON fields first)\n", tie)
	}
	if p.Format != nil && !p.Format.Zoned && !p.ZoneSeen || p.layout != nil && !p.layout.zoned {
		ew.printf("  zone:       the text carries none; read as %s (override with timezone:)\n", zoneName(p.Location))
	} else if p.Format != nil {
		ew.printf("  zone:       from the text (offsets, zone abbreviations or Unix time)\n")
	}
	if p.Format != nil && p.Format.NoYear || p.layout != nil && p.layout.noYear {
		switch {
		case p.Year != 0:
			ew.printf("  year:       %d (override), moving to the next year where the month falls back (December to January)\n", p.Year)
		case !p.YearRef.IsZero():
			ew.printf("  year:       not in the text; inferred from the modification time %s: the latest year that does not put\n", p.YearRef.UTC().Format(time.RFC3339))
			ew.printf("              the first line after it, then +1 where the month falls back (override with year:)\n")
		default:
			ew.printf("  year:       not in the text and no modification time known: the current year is assumed (override with year:)\n")
		}
	}
}

func zoneName(loc *time.Location) string {
	if loc == nil || loc == time.UTC {
		return "UTC"
	}
	return loc.String()
}

func (p *Profile) explainRecords(ew *errWriter, sample [][]byte) {
	switch p.Mode {
	case ModeTimestamp:
		ew.printf("  records:    start at a line with a timestamp (%d of %d candidate first lines have one);\n", p.StartMatches, p.StartLines)
		ew.printf("              lines without one continue the record before them")
		if p.IndentCont {
			ew.printf(", as do indented and blank lines")
		}
		ew.printf("\n")
	case ModePattern:
		if p.Format != nil {
			ew.printf("  records:    one per line (only %d of %d candidate first lines have a timestamp, too few to\n", p.StartMatches, p.StartLines)
			ew.printf("              start records by); ")
		} else {
			ew.printf("  records:    one per line; ")
		}
		ew.printf("indented and blank lines, Java stack frames (at …, Caused by:, … N more)\n")
		ew.printf("              and Go panic traces continue the record before them\n")
	case ModeSingle:
		ew.printf("  records:    one per line (override multiline: none)\n")
	case ModeRegexp:
		ew.printf("  records:    start at a line matching %q (override)\n", p.startRE.String())
	case ModeMySQLSlow:
		ew.printf("  records:    MySQL slow log: a record starts at \"# Time:\" (or \"# User@Host:\" without one) and runs to\n")
		ew.printf("              the end of the statement; its time is \"# Time:\", else \"SET timestamp=\"\n")
	case ModeDocker:
		ew.printf("  records:    Docker json-file lines; a \"log\" value without a trailing newline is continued by the next line\n")
	}
	if p.JSONMessage && (p.Mode == ModeTimestamp || p.Mode == ModePattern) {
		ew.printf("              JSON lines whose message is a stack frame (\" at …\", \"Caused by: …\") continue the record before them\n")
	}
	ew.printf("              override with multiline: <regexp of a first line> or multiline: none\n")

	// Run the sample through the assembler to show real records.
	var recs, multi int
	var example []byte
	var exampleLine int
	a := NewAssembler(p, func(r *Record) error {
		recs++
		if r.Lines > 1 {
			multi++
			if example == nil {
				example = append([]byte(nil), r.Text...)
				exampleLine = r.Line
			}
		}
		return nil
	})
	for _, l := range sample {
		_ = a.Line(l)
	}
	_ = a.Close()
	ew.printf("              in the sample: %d lines make %d records, %d of them multi-line\n", len(sample), recs, multi)
	if example != nil {
		ew.printf("              first multi-line record (line %d):\n", exampleLine)
		lines := bytes.Split(example, []byte{'\n'})
		for i, l := range lines {
			if i == 6 && len(lines) > 7 {
				ew.printf("              | … %d more lines\n", len(lines)-6)
				break
			}
			if len(l) > 100 {
				l = append(l[:100:100], "…"...)
			}
			ew.printf("              | %s\n", l)
		}
	}
}

func (p *Profile) explainLevels(ew *errWriter) {
	if !p.Levels {
		ew.printf("  level:      not detected (override level_field: none)\n")
		return
	}
	var parts []string
	for lv, n := range p.LevelCounts {
		parts = append(parts, fmt.Sprintf("%s %d", lv, n))
	}
	sort.Strings(parts)
	var how string
	switch {
	case p.LevelField != "":
		how = fmt.Sprintf("field %q (override)", p.LevelField)
	case p.LevelHints.Format == levels.Klog:
		how = "klog's level letter (I, W, E, F); else as the server detects it"
	case p.LevelHints.Format == levels.Logcat:
		how = "logcat's level letter (V, D, I, W, E, F); else as the server detects it"
	default:
		how = "as the server detects it (Loki's discover_log_levels): a level field (level=, \"level\":), else the first level word (ERROR, warn, …)"
	}
	ew.printf("  level:      %s, in the first line of each record;\n", how)
	if p.LevelField == "" {
		ew.printf("              where none is found: MongoDB's \"s\", SEVERE/FINE, NOTICE/ALERT, [notice], PostgreSQL's LOG:\n")
	}
	if len(parts) > 0 {
		ew.printf("              in the sample: %s\n", strings.Join(parts, ", "))
	}
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
