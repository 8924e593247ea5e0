package pipeline

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/labels"
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

// FuzzPatternCaptures checks the | pattern stage's captures against the
// rules written out plainly (patternStage's comment), with bytes.Index for
// every literal: the walk's inline search of short literals must find the
// same leftmost occurrence, near the end of a line too.
func FuzzPatternCaptures(f *testing.F) {
	for _, s := range [][2]string{
		{`<ip> - - [<_>] "<method> <path> <_>" <status> <size> <_>`, `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "-" "x"`},
		{`<ip> - - [<_>] "<method> <path> <_>" <status> <size> <_>`, `1.2.3.4 - - [x] "GET /a" 2`},
		{`<a>ab<b>`, `xaab`},
		{`<a>] "<b>`, `x]] "y`},
		{`<a>--<b>--<c>`, `---- -- x`},
		{`k=<v> `, `k=1 k=2 `},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, line string) {
		if len(pattern) > 200 {
			return
		}
		p, err := logql.ParsePattern(pattern)
		if err != nil || len(p.Names()) == 0 {
			return
		}
		want := map[string]string{}
		parts := p.Parts
		prefix := ""
		if len(parts) > 0 && !parts[0].Capture {
			prefix, parts = parts[0].Text, parts[1:]
		}
		if rest, ok := strings.CutPrefix(line, prefix); line != "" && ok {
			for i := 0; i < len(parts); i += 2 {
				name := parts[i].Text
				end := -1
				if i+1 < len(parts) {
					end = strings.Index(rest, parts[i+1].Text)
				}
				if end < 0 {
					if name != "_" {
						want[name] = rest
					}
					break
				}
				if name != "_" {
					want[name] = rest[:end]
				}
				rest = rest[end+len(parts[i+1].Text):]
			}
		}
		stg, err := newPatternStage(&logql.PatternParser{Pattern: pattern}, nil)
		if err != nil {
			return // a capture name Loki rejects
		}
		in := stg.(*patternStage).instance().(*patternInst)
		got := map[string]string{}
		for _, c := range in.match([]byte(line)) {
			got[c.name.name] = string(c.value)
		}
		if len(got) != len(want) {
			t.Fatalf("%q on %q: got %q, want %q", pattern, line, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%q on %q: %s = %q, want %q", pattern, line, k, got[k], v)
			}
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

// fuzzPipelines are run on every fuzzed line; none may panic, and every
// result must be a valid label set.
var fuzzPipelines = []string{
	`{a="b"} | json`,
	`{a="b"} | json a="a", b="b.c[0]", c="[\"x y\"]", d="d[2].e"`,
	`{a="b"} | logfmt`,
	`{a="b"} | logfmt --strict --keep-empty`,
	`{a="b"} | logfmt a, b="c"`,
	"{a=\"b\"} | pattern `<a> <_> \"<b>\" <c>`",
	"{a=\"b\"} | regexp `(?P<a>\\w+)=(?P<b>\\S*)`",
	`{a="b"} | unpack | json`,
	`{a="b"} | decolorize | logfmt | json | __error__="" | line_format "{{.a}}|{{__line__ | trunc 10}}" | label_format x="{{.b}}", y=a`,
	`{a="b"} | logfmt | a > 1 or b = 1s or c < 1KB or d = ip("10.0.0.0/8") | drop c | keep a, b, d, x="1"`,
}

func FuzzParsers(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"c":["x"]},"d":[{"e":1},{"e":2},{"e":"three"}]}`,
		`a=1 b="x y" c= d`,
		`1.2.3.4 - "GET /" 200`,
		`{"_entry":"{\"a\":\"b\"}","app":"x"}`,
		"\x1b[31ma=2\x1b[0m",
		`{"a":"\ud83d\ude00","b\u0041":"x"}`,
		`{"x y":1,"a":{"b":{"c":{}}}}`,
		`a="unterminated b=2`,
		`{"a":`,
		"a=\xff b=\"\xfe\"",
	} {
		f.Add(s, "m", "v")
	}
	stream := labels.New("a", "s", "job", "j")
	var sps []*StreamPipeline
	for _, q := range fuzzPipelines {
		sps = append(sps, compile(f, q).ForStream(stream))
	}
	f.Fuzz(func(t *testing.T, line, mdName, mdValue string) {
		var md labels.Labels
		if labels.ValidName(mdName) && utf8.ValidString(mdValue) && !strings.HasPrefix(mdName, "__") {
			md = labels.Labels{{Name: mdName, Value: mdValue}}
		}
		for i, sp := range sps {
			out, res, keep := sp.Process(0, []byte(line), md)
			if !keep {
				continue
			}
			checkResult(t, res)
			// Same input, same answer (and the cache must agree).
			out2, res2, keep2 := sp.Process(0, []byte(line), md)
			if !keep2 || string(out2) != string(out) || !res2.Labels.Equal(res.Labels) {
				t.Fatalf("%s: second run differs: %q %s vs %q %s", fuzzPipelines[i], out, res, out2, res2)
			}
		}
	})
}

// FuzzJSONValid checks the json parser against encoding/json: a valid
// object never gets JSONParserErr, and its top-level scalars are found.
func FuzzJSONValid(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"x\n","b":[1,{"c":null}],"d":{"e":true}}`, ` {"a" : -1.5e3 } `, `{"a":"\u00e9"}`} {
		f.Add(s)
	}
	sp := compile(f, `{a="b"} | json`).ForStream(nil)
	f.Fuzz(func(t *testing.T, line string) {
		var obj map[string]any
		if !json.Valid([]byte(line)) || json.Unmarshal([]byte(line), &obj) != nil || obj == nil {
			return
		}
		_, res, _ := sp.Process(0, []byte(line), nil)
		checkResult(t, res)
		if res.Err != "" && !strings.Contains(res.Labels.Get(ErrorDetailsLabel), "too deep") {
			t.Fatalf("valid JSON %q got %s", line, res.Labels)
		}
		for k, v := range obj {
			s, ok := v.(string)
			name := sanitizeLabelName(k)
			if !ok || k == "" || strings.Contains(k, "_") || name != k || isReserved(k) || !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
				continue
			}
			// Duplicate keys: encoding/json keeps the last, Loki the first
			// (names with _ may also come from flattened nested keys).
			if topLevelKeys(line)[k] > 1 {
				continue
			}
			if got := res.Labels.Get(k); got != s {
				t.Fatalf("%q: label %s=%q, want %q", line, k, got, s)
			}
		}
	})
}

// topLevelKeys counts the keys of a JSON object, duplicates included.
func topLevelKeys(doc string) map[string]int {
	counts := map[string]int{}
	dec := json.NewDecoder(strings.NewReader(doc))
	if _, err := dec.Token(); err != nil {
		return counts
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return counts
		}
		k, _ := tok.(string)
		counts[k]++
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return counts
		}
	}
	return counts
}
