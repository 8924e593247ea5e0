package pipeline

import (
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
)

func TestLineFormat(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "doc", query: `{a="b"} | logfmt | line_format "{{.query}} {{.duration}}"`, line: `query="up" duration=1s x=y`,
			out: "up 1s", want: map[string]string{"query": "up", "duration": "1s", "x": "y"}},
		{name: "doc math", query: `{a="b"} | logfmt | line_format "{{.ip}} {{.status}} {{div .duration 1000}}"`, line: `ip=1.1.1.1 status=200 duration=3000`,
			out: "1.1.1.1 200 3", want: map[string]string{"ip": "1.1.1.1", "status": "200", "duration": "3000"}},
		{name: "missing label is empty", query: `{a="b"} | line_format "[{{.nope}}]"`, line: `x`, out: "[]", want: map[string]string{}},
		{name: "line and timestamp", query: "{a=\"b\"} | line_format `{{ __line__ | upper }} {{ __timestamp__ | unixEpoch }} {{ __timestamp__ | date \"2006-01-02T15:04:05Z07:00\" }}`",
			line: `hello`, out: "HELLO 1600000000 2020-09-13T12:26:40Z", want: map[string]string{}},
		{name: "error label visible", query: `{a="b"} | json | line_format "{{.__error__}}"`, line: `x`, out: "JSONParserErr",
			want: map[string]string{ErrorLabel: ErrJSON, ErrorDetailsLabel: `unexpected character 'x', expected a json object at offset 0`}},
		{name: "exec error keeps line", query: `{a="b"} | line_format "{{div 1 0}}"`, line: `orig`,
			want: map[string]string{ErrorLabel: ErrTemplateFormat, ErrorDetailsLabel: `template: line:1:2: executing "line" at <div 1 0>: error calling div: integer divide by zero`}},
		{name: "chained", query: `{a="b"} | line_format "a={{__line__}}" | logfmt | line_format "<{{.a}}>"`, line: `1`, out: "<1>",
			want: map[string]string{"a": "1"}},
		{name: "template error filtered", query: `{a="b"} | line_format "{{div 1 0}}" | __error__=""`, line: `x`, drop: true},
		{name: "output cap", query: `{a="b"} | line_format "{{repeat 100000000 \"xx\"}}"`, line: `x`,
			want: map[string]string{ErrorLabel: ErrTemplateFormat, ErrorDetailsLabel: `template: line:1:2: executing "line" at <repeat 100000000 "xx">: error calling repeat: template output exceeds 4194304 bytes`}},
	})
}

func TestLabelFormat(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "rename drops source", query: `{a="b"} | logfmt | label_format dst=src`, line: `src=1`, want: map[string]string{"dst": "1"}},
		{name: "rename missing source", query: `{a="b"} | logfmt | label_format dst=nope`, line: `src=1`, want: map[string]string{"src": "1"}},
		{name: "template keeps source", query: `{a="b"} | logfmt | label_format dst="{{.src}}"`, line: `src=1`, want: map[string]string{"src": "1", "dst": "1"}},
		{name: "overrides stream label", query: `{a="b"} | label_format job="{{.job}}!"`, stream: job, line: `x`, want: map[string]string{"job": "varlogs!"}},
		{name: "templates see labels before the stage", query: `{a="b"} | logfmt | label_format a="{{.b}}", b="{{.a}}"`, line: `a=1 b=2`,
			want: map[string]string{"a": "2", "b": "1"}},
		{name: "doc epoch filter", query: "{a=\"b\"} | logfmt | label_format nowEpoch=`{{(unixEpoch now)}}`,createDateEpoch=`{{unixEpoch (toDate \"2006-01-02\" .createDate)}}` | label_format dateTimeDiff=`{{sub .nowEpoch .createDateEpoch}}` | dateTimeDiff > 86400 | drop nowEpoch, dateTimeDiff",
			line: `createDate=2021-11-02`, want: map[string]string{"createDate": "2021-11-02", "createDateEpoch": "1635811200"}},
		{name: "error", query: `{a="b"} | label_format x="{{div 1 0}}", y="ok"`, line: `l`,
			want: map[string]string{"y": "ok", ErrorLabel: ErrTemplateFormat, ErrorDetailsLabel: `template: label:1:2: executing "label" at <div 1 0>: error calling div: integer divide by zero`}},
		{name: "line function", query: "{a=\"b\"} | label_format n=`{{ __line__ | count \"XYZ\" }}`", line: `XYZ aXYZ`, want: map[string]string{"n": "2"}},
	})
}

// TestTemplateFunctions runs the examples of Loki's template function
// reference, plus the Go-named string functions.
func TestTemplateFunctions(t *testing.T) {
	stream := labels.New("path", "a b c d e f", "remote_addr", "129.168.1.1", "err", "ErrTimeout",
		"queries", `[{"query":"a"},{"query":"b"}]`, "from", "1679577215", "some_label", "aabc", "timestamp", "ts=1")
	cases := []struct{ tmpl, want string }{
		{`{{ .path | replace " " "_" | trunc 5 | upper }}`, "A_B_C"},
		{`{{ if and (contains "he" "hello") (contains "llo" "hello") }} yes {{end}}`, " yes "},
		{`{{ if or (contains "he" "hello") (contains "llo" "hello") }} yes {{end}}`, " yes "},
		{`{{ if contains "ErrTimeout" .err }} timeout {{else if contains "he" "hello"}} yes {{else}} no {{end}}`, " timeout "},
		{`{{ if contains "nope" .err }} timeout {{else if contains "he" "hello"}} yes {{else}} no {{end}}`, " yes "},
		{`{{ .path }}`, "a b c d e f"},
		{`{{ date "2006-01-02" (unixToTime .from) }}`, "2023-03-23"},
		{`{{ unixToTime "1679577215123" | unixEpochMillis }}`, "1679577215123"},
		{`{{ unixToTime "1679577215123456" | unixEpochNanos }}`, "1679577215123456000"},
		{`{{ unixToTime "19440" | unixEpoch }}`, "1679616000"},
		{`{{ duration_seconds "250ms" }} {{ duration "1m30s" }} {{ .x | default "2h" | duration }}`, "0.25 90 7200"},
		{`{{ toDate "2006-01-02" "2021-11-02" | unixEpochMillis }}`, "1635811200000"},
		{`{{ toDateInZone "2006-01-02" "UTC" "2021-11-02" | unixEpochNanos }}`, "1635811200000000000"},
		{`{{ toDateInZone "2006-01-02" "Europe/Paris" "2021-11-02" | unixEpoch }}`, "1635807600"},
		{`{{ if gt (unixEpoch now | int) 1600000000 }}later{{end}}`, "later"},
		{`{{ date "2006" 0 }}`, "1970"},
		{`{{ alignLeft 5 "hello world"}}|{{ alignLeft 5 "hi"}}|`, "hello|hi   |"},
		{`{{ alignRight 5 "hello world"}}|{{ alignRight 5 "hi"}}|`, "world|   hi|"},
		{`{{ "foo" | b64enc }} {{ b64dec "Zm9v" }}`, "Zm9v foo"},
		{`{{ bytes "1KiB" }} {{ bytes "5 MiB" }} {{ bytes "3k" }}`, "1024 5.24288e+06 3000"},
		{`{{ default "-" "" }} {{ default "-" "foo" }} {{ .nope | default "-" }}`, "- foo -"},
		{`{{ range $q := fromJson .queries }} {{ $q.query }} {{ end }}`, " a  b "},
		{`[{{ fromJson "not json" }}]`, "[]"},
		{`{{ .path | lower }} {{ lower "HELLO" }}`, "a b c d e f hello"},
		{`{{ indent 4 "a\nb" }}`, "    a\n    b"},
		{`{{ nindent 2 "a" }}`, "\n  a"},
		{`{{ repeat 3 "hello" }}`, "hellohellohello"},
		{`{{ printf "The IP address was %s" .remote_addr }}`, "The IP address was 129.168.1.1"},
		{`{{ printf "%-8.5s|" "GETXYZ" }}`, "GETXY   |"},
		{`{{ replace "hello" "world" "hello world" }}`, "world world"},
		{`{{ substr 0 5 "hello world"}} {{ substr 6 11 "hello world"}} {{ substr -1 2 "héllo" }} {{ substr 3 -1 "héllo" }} {{ substr 9 2 "abc" }}`, "hello world hé lo "},
		{`{{ title "hello world" }}`, "Hello World"},
		{`{{ trim "   hello    " }}`, "hello"},
		{`{{ trimAll "$" "$5.00" }}`, "5.00"},
		{`{{ trimPrefix "-" "-hello" }} {{ trimSuffix "-" "hello-" }}`, "hello hello"},
		{`{{ trunc 5 "hello world"}} {{ trunc -5 "hello world"}} {{ trunc 2 "héllo" }}`, "hello world hé"},
		{`{{ upper "hello" }}`, "HELLO"},
		{`{{ urlencode "a b&c/é" }} {{ urldecode "a+b%26c" }}`, "a+b%26c%2F%C3%A9 a b&c"},
		{`{{ if eq "hello" "hello" }}yes{{end}}{{ if eq .err "x" }}no{{end}}`, "yes"},
		{`{{ if hasPrefix "he" "hello" }}p{{end}}{{ if hasSuffix "lo" "hello" }}s{{end}}{{ if hasSuffix "Timeout" .err }}t{{end}}`, "pst"},
		{`{{ add 3 2 5 }} {{ add "3" 1.9 }}`, "10 4"},
		{`{{ addf 3.5 2 5 }} {{ addf 0.1 0.2 }}`, "10.5 0.3"},
		{`{{ ceil 123.001 }} {{ floor 123.9999 }}`, "124 123"},
		{`{{ div 10 2 }} {{ divf 10 2 4 }}`, "5 1.25"},
		{`{{ "3.5" | float64 }} {{ "3" | int }} {{ "3.0" | int }} {{ "x" | int }}`, "3.5 3 3 0"},
		{`{{ max 1 2 3 }} {{ maxf 1 2.5 3 }} {{ min 1 2 3 }} {{ minf 1 2.5 3 }}`, "3 3 1 1"},
		{`{{ mul 5 2 3 }} {{ mulf 5.5 2 2.5 }} {{ mod 10 3 }}`, "30 27.5 1"},
		{`{{ round 123.555555 3 }} {{ round 123.88571428571 5 .2 }} {{ round 123.88571428571 5 }}`, "123.556 123.88572 123.88571"},
		{`{{ sub 5 2 }} {{ subf 5.5 2 1.5 }}`, "3 2"},
		{`{{ count "a|b" "abab" }} {{ count "o" "foo" }}`, "4 2"},
		{`{{ regexReplaceAll "(a*)bc" .some_label "${1}a" }}`, "aaa"},
		{`{{ regexReplaceAllLiteral "(ts=)" .timestamp "timestamp=" }}`, "timestamp=1"},
		{`{{ ToLower "ABC" }} {{ ToUpper "abc" }} {{ Replace "aaa" "a" "b" 2 }} {{ Trim "xxaxx" "x" }}`, "abc ABC bba a"},
		{`{{ TrimLeft "xxa" "x" }} {{ TrimRight "axx" "x" }} {{ TrimPrefix "preX" "pre" }} {{ TrimSuffix "Xsuf" "suf" }} [{{ TrimSpace "  a " }}]`, "a a X X [a]"},
		{`{{ sha256 "abc" }}`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{`{{ toJson (fromJson "{\"a\":[1,2]}") }}`, `{"a":[1,2]}`},
		{`{{ __line__ | count "o" }}`, "2"},
	}
	for _, c := range cases {
		q := "{a=\"b\"} | line_format `" + c.tmpl + "`"
		p := compile(t, q)
		out, res, keep := p.ForStream(stream).Process(0, []byte("foo"), nil)
		if !keep {
			t.Fatalf("%s dropped the entry", c.tmpl)
		}
		if res.Err != "" {
			t.Errorf("%s: error %s", c.tmpl, res.Labels)
			continue
		}
		if string(out) != c.want {
			t.Errorf("%s = %q, want %q", c.tmpl, out, c.want)
		}
	}
	// Every documented function exists.
	funcs := templateFuncs(&tmplContext{})
	for _, name := range strings.Fields(`__line__ __timestamp__ ToLower ToUpper Replace Trim TrimLeft TrimRight TrimPrefix TrimSuffix TrimSpace
		regexReplaceAll regexReplaceAllLiteral count urldecode urlencode bytes duration duration_seconds unixEpochMillis unixEpochNanos
		toDateInZone b64enc b64dec lower upper title trunc substr contains hasPrefix hasSuffix indent nindent replace repeat trim trimAll
		trimSuffix trimPrefix int float64 add sub mul div mod addf subf mulf divf max min maxf minf ceil floor round fromJson date toDate
		now unixEpoch default unixToTime alignLeft alignRight printf sha256`) {
		if funcs[name] == nil {
			t.Errorf("template function %s missing", name)
		}
	}
}
