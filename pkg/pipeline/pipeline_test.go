package pipeline

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/logql"
)

func compile(t testing.TB, query string) *Pipeline {
	t.Helper()
	sel, err := logql.ParseLogSelector(query)
	if err != nil {
		t.Fatalf("parse %s: %v", query, err)
	}
	p, err := New(sel.Stages)
	if err != nil {
		t.Fatalf("compile %s: %v", query, err)
	}
	return p
}

func TestLineFilters(t *testing.T) {
	lines := []string{
		"level=error msg=\"connection refused\" host=web-1",
		"level=info msg=\"request done\" status=200 took=12ms",
		"WARN disk almost full on /dev/sda1",
		"Error: Timeout while contacting 10.2.3.4:8080",
		"",
		"multi\nline with ERROR inside",
	}
	cases := []struct {
		query string
		keep  []int // indexes of kept lines
	}{
		{`{a="b"}`, []int{0, 1, 2, 3, 4, 5}},
		{`{a="b"} |= "error"`, []int{0}},
		{`{a="b"} |= ""`, []int{0, 1, 2, 3, 4, 5}},
		{`{a="b"} != ""`, nil},
		{`{a="b"} != "error"`, []int{1, 2, 3, 4, 5}},
		{`{a="b"} |= "error" or "WARN"`, []int{0, 2}},
		{`{a="b"} != "error" or "WARN"`, []int{1, 3, 4, 5}},
		{`{a="b"} |= "level" != "info"`, []int{0}},
		{`{a="b"} |~ "(?i)error"`, []int{0, 3, 5}},
		{`{a="b"} !~ "(?i)error"`, []int{1, 2, 4}},
		{`{a="b"} |~ "error|WARN"`, []int{0, 2}},
		{`{a="b"} |~ ".*refused.*"`, []int{0}},
		{`{a="b"} |~ "status=[0-9]+"`, []int{1}},
		{`{a="b"} |~ "^WARN"`, []int{2}},
		{`{a="b"} |~ "multi.line"`, []int{5}}, // . matches newline
		{`{a="b"} |~ ""`, []int{0, 1, 2, 3, 4, 5}},
		{`{a="b"} |~ "took=\\d+ms" or "disk"`, []int{1, 2}},
		{`{a="b"} !~ "took=\\d+ms" or "disk"`, []int{0, 3, 4, 5}},
		{`{a="b"} |> "level=<_> msg=<_>"`, []int{0, 1}},
		{`{a="b"} |> "<_> disk <_>"`, []int{2}},
		{`{a="b"} |> ""`, []int{4}},
		{`{a="b"} |> "<_>"`, []int{0, 1, 2, 3, 5}},
		{`{a="b"} !> "level=<_>"`, []int{2, 3, 4, 5}},
		{`{a="b"} |> "<_> disk <_>" or "Error: <_>"`, []int{2, 3}},
		{`{a="b"} |= ip("10.0.0.0/8")`, []int{3}},
		{`{a="b"} != ip("10.0.0.0/8")`, []int{0, 1, 2, 4, 5}},
		{`{a="b"} |= ip("10.2.3.4") or "WARN"`, []int{2, 3}},
	}
	for _, c := range cases {
		p := compile(t, c.query)
		if !p.LineFilterOnly() {
			t.Fatalf("%s: not a pure filter pipeline", c.query)
		}
		var got []int
		for i, l := range lines {
			keep := p.MatchLine([]byte(l))
			e := Entry{Line: []byte(l)}
			if p.Process(&e) != keep {
				t.Errorf("%s: Process and MatchLine disagree on %q", c.query, l)
			}
			if keep {
				got = append(got, i)
			}
		}
		if !equalInts(got, c.keep) {
			t.Errorf("%s kept %v, want %v", c.query, got, c.keep)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFullPipelineStagesCompile(t *testing.T) {
	// These used to be rejected; they now compile and are not pure line
	// filters, so MatchLine must not be used for them.
	for _, q := range []string{
		`{a="b"} |= "x" | json`,
		`{a="b"} | logfmt`,
		`{a="b"} | x="y"`,
		`{a="b"} | line_format "{{.x}}"`,
		`{a="b"} | decolorize`,
	} {
		p := compile(t, q)
		if p.LineFilterOnly() {
			t.Errorf("%s: reported as line-filter only", q)
		}
	}
}

func TestSimplification(t *testing.T) {
	// Each regexp must compile to the named filter type and keep Go
	// regexp's semantics (checked broadly by the fuzz test).
	cases := map[string]string{
		`error`:                 "pipeline.containsFilter",
		`.*error.*`:             "pipeline.containsFilter",
		`(error)`:               "pipeline.containsFilter",
		`error|fail|panic`:      "pipeline.containsAnyFilter",
		`err(or|no)`:            "pipeline.containsAnyFilter",
		`(?i)error`:             "pipeline.foldFilter",
		`(?i)(error|fail)`:      "pipeline.foldAnyFilter",
		`.*`:                    "pipeline.trueFilter",
		`x?`:                    "pipeline.trueFilter",
		`^error`:                "*pipeline.regexpFilter",
		`error\d+`:              "*pipeline.regexpFilter",
		`(?i)err[o]r`:           "pipeline.foldFilter",
		`(?i)err(?-i)or`:        "pipeline.containsAnyFilter",
		`(?i)abcdefg(?-i)x`:     "*pipeline.regexpFilter",
		"a\\x{FFFD}b":           "*pipeline.regexpFilter",
		`(?i)straße`:            "pipeline.foldFilter",
		`[Ee]rror`:              "pipeline.containsAnyFilter",
		`status=(200|404) took`: "pipeline.containsAnyFilter",
	}
	for re, want := range cases {
		f, err := newRegexpFilter(re)
		if err != nil {
			t.Fatal(err)
		}
		if got := typeName(f); got != want {
			t.Errorf("%q compiled to %s, want %s", re, got, want)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case containsFilter:
		return "pipeline.containsFilter"
	case containsAnyFilter:
		return "pipeline.containsAnyFilter"
	case foldFilter:
		return "pipeline.foldFilter"
	case foldAnyFilter:
		return "pipeline.foldAnyFilter"
	case trueFilter:
		return "pipeline.trueFilter"
	case *regexpFilter:
		return "*pipeline.regexpFilter"
	}
	return "other"
}

func TestFoldSearch(t *testing.T) {
	cases := []struct {
		needle, line string
		want         bool
	}{
		{"error", "an ERROR here", true},
		{"error", "an ErRoR", true},
		{"error", "an erro", false},
		{"error", "", false},
		{"", "x", true},
		{"kelvin", "\u212aELVIN", true}, // KELVIN SIGN folds to k
		{"kelvin", "\u212aELVI", false},
		{"pass", "PA\u017f\u017f", true}, // LONG S folds to s
		{"pass", "PA\u017fX", false},
		{"straße", "STRASSE", false}, // ß has no simple fold to ss
		{"straße", "STRAßE", true},
		{"é", "É", true},
		{"a-b", "A-B", true},
		{"a-b", "A_B", false},
		{"xx", "xXx", true},
		{"abc", "ab\xffabc", true},
		{"zzz", strings.Repeat("z", 2) + "Z", true},
	}
	for _, c := range cases {
		n := newFoldNeedle(c.needle)
		if got := n.match([]byte(c.line)); got != c.want {
			t.Errorf("fold %q in %q = %v, want %v", c.needle, c.line, got, c.want)
		}
	}
}

func TestPatternFilter(t *testing.T) {
	cases := []struct {
		pattern, line string
		want          bool
	}{
		{"", "", true},
		{"", "x", false},
		{"<_>", "", false},
		{"<_>", "x", true},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"abc <_>", "abc d", true},
		{"abc <_>", "abc ", false}, // capture must be non-empty
		{"<_> abc", "x abc", true},
		{"<_> abc", " abc", false},
		{"<_> abc", "x abc y", false},
		{"<a> - <b>", "1 - 2", true},
		{"<a> - <b>", "1 -  - 2", true},
		{"<_>ab<_>", "abab", false},
		{"<_>ab<_>", "xabab", true},
		{"<_>ab<_>ab", "xabab", false},
		{"<_>ab<_>ab", "xab_ab", true},
		{"x<_>x", "xx", false},
		{"x<_>x", "xyx", true},
		{"<ip> - - [<_>] \"<method> <_>\" <status>", `1.2.3.4 - - [17/May] "GET /x HTTP/1.1" 200`, true},
	}
	for _, c := range cases {
		f, err := newPatternFilter(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match([]byte(c.line)); got != c.want {
			t.Errorf("pattern %q on %q = %v, want %v", c.pattern, c.line, got, c.want)
		}
	}
}

func TestIPFilter(t *testing.T) {
	cases := []struct {
		ip, line string
		want     bool
	}{
		{"3.180.71.3", "3.180.71.3 - - [17/May/2015]", true},
		{"3.180.71.3", "93.180.71.3 - - [17/May/2015]", false},
		{"10.0.0.0/8", "client=10.2.3.4:8080 done", true},
		{"10.0.0.0/8", "client 10.2.3.4.", true},
		{"10.0.0.0/8", "client 11.2.3.4", false},
		{"10.0.0.0/8", "version 10.2.3", false},
		{"10.0.0.0/8", "ver 10.2.3.4.5", false},
		{"10.0.0.0/8", "x=ab10.0.0.1", true},
		{"10.0.0.0/8", "mapped ::ffff:10.1.1.1 here", true},
		{"192.168.4.5-192.168.4.20", "from 192.168.4.19", true},
		{"192.168.4.5-192.168.4.20", "from 192.168.4.21", false},
		{"2001:db8::/32", "[2001:db8::1]:443", true},
		{"2001:db8::/32", "2001:db9::1", false},
		{"::1", "listening on ::1", true},
		{"::1", "listening on ::1:", true},
		{"::1", "time 12:34:56", false},
		{"::1", "", false},
	}
	for _, c := range cases {
		f, err := newIPFilter(c.ip)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match([]byte(c.line)); got != c.want {
			t.Errorf("ip(%q) on %q = %v, want %v", c.ip, c.line, got, c.want)
		}
	}
}

func TestParseIPv4(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.1", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.", "1..2.3", "1.2.3.4x", "1234.1.1.1", "", "1.2.3.04"} {
		want, err := netip.ParseAddr(s)
		got, ok := parseIPv4([]byte(s))
		if ok != (err == nil) || ok && got != want {
			t.Errorf("parseIPv4(%q) = %v %v, netip says %v %v", s, got, ok, want, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := compile(t, `{a="b"} |~ "(?i)fail(ed|ure) \\w+" |= ip("10.0.0.0/8") or "x" !> "<_> ok"`)
	lines := [][]byte{[]byte("FAILED login 10.1.1.1"), []byte("failure ok"), []byte("nothing")}
	done := make(chan bool)
	for range 4 {
		go func() {
			for range 1000 {
				for _, l := range lines {
					p.MatchLine(l)
				}
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
	if !p.MatchLine(lines[0]) || p.MatchLine(lines[1]) || p.MatchLine(lines[2]) {
		t.Fatal("wrong results")
	}
}

func TestMatchLineOnFullPipeline(t *testing.T) {
	p := compile(t, `{a="b"} | logfmt | level="error"`)
	if !p.MatchLine([]byte("level=error")) || p.MatchLine([]byte("level=info")) {
		t.Error("MatchLine must run the full pipeline")
	}
	e := Entry{Line: []byte(`{"m":"x"}`)}
	if !compile(t, `{a="b"} | json | line_format "{{.m}}!"`).Process(&e) || string(e.Line) != "x!" {
		t.Errorf("Process: %q", e.Line)
	}
}
