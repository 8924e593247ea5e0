package pipeline

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/logql"
)

// FuzzRegexpFilter checks that the compiled |~ filter (simplified or
// prefiltered) agrees with Go's regexp on every line.
func FuzzRegexpFilter(f *testing.F) {
	for _, s := range [][2]string{
		{"error", "an error"},
		{"(?i)kelvin", "\u212aELVIN"},
		{"(?i)(pass|word)", "PA\u017f\u017f"},
		{"[Ee]rror|fatal", "Error"},
		{".*refused.*", "conn refused"},
		{"took=\\d+ms", "took=12ms"},
		{"a\\x{FFFD}b", "a\xffb"},
		{"^$", ""},
		{"(?i)straße", "STRAßE"},
		{"x?", "y"},
		{"(?i)é(?-i)x", "Éx"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, re, line string) {
		if len(re) > 200 {
			return
		}
		want, err := regexp.Compile("(?s)" + re)
		if err != nil {
			return
		}
		lf, err := newRegexpFilter(re)
		if err != nil {
			t.Fatalf("newRegexpFilter(%q): %v", re, err)
		}
		if got, exp := lf.Match([]byte(line)), want.MatchString(line); got != exp {
			t.Fatalf("|~ %q on %q: got %v, regexp says %v (filter %T)", re, line, got, exp, lf)
		}
	})
}

// FuzzPatternFilter checks the pattern filter against the equivalent
// regexp: literals quoted, each capture one or more of any character,
// anchored at both ends.
func FuzzPatternFilter(f *testing.F) {
	for _, s := range [][2]string{
		{"<_> error <_>", "an error here"},
		{"", ""},
		{"<_>", "x"},
		{"<_>ab<_>", "abab"},
		{"<a> - <b>", "1 -  - 2"},
		{"x<_>x", "xx"},
		{"<<from>> -> <<to>>", "<a@b> -> <c@d>"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, line string) {
		if !utf8.ValidString(pattern) || len(pattern) > 200 {
			return
		}
		p, err := logql.ParsePattern(pattern)
		if err != nil {
			return
		}
		var b strings.Builder
		b.WriteString(`(?s)\A`)
		for _, part := range p.Parts {
			if part.Capture {
				b.WriteString(".+")
			} else {
				b.WriteString(regexp.QuoteMeta(part.Text))
			}
		}
		b.WriteString(`\z`)
		want := regexp.MustCompile(b.String())
		pf, err := newPatternFilter(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got, exp := pf.Match([]byte(line)), want.MatchString(line); got != exp {
			t.Fatalf("|> %q on %q: got %v, regexp %s says %v", pattern, line, got, b.String(), exp)
		}
	})
}

// FuzzIPFilter checks that ip() never panics and finds an address of the
// range written alone or between spaces.
func FuzzIPFilter(f *testing.F) {
	f.Add("10.0.0.0/8", "client=10.1.2.3:80")
	f.Add("::1", "[::1]:443")
	f.Add("192.168.0.1-192.168.0.9", "192.168.0.5.")
	f.Fuzz(func(t *testing.T, spec, line string) {
		r, err := logql.ParseIPRange(spec)
		if err != nil {
			return
		}
		ipf := &ipFilter{r: r}
		ipf.Match([]byte(line))
		if !ipf.Match([]byte(line + " " + r.From.String() + " x")) {
			t.Fatalf("ip(%q) misses %s", spec, r.From)
		}
	})
}
