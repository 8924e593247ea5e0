package pipeline

import (
	"maps"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// emptyLine marks a case whose expected output line is "".
const emptyLine = "\x00empty"

type goldenCase struct {
	name   string
	query  string // a log query; the selector is ignored
	stream map[string]string
	md     map[string]string // structured metadata
	line   string
	drop   bool              // the entry is filtered out
	out    string            // expected line; "" means unchanged
	want   map[string]string // expected merged labels
}

func runGolden(t *testing.T, cases []goldenCase) {
	t.Helper()
	for _, c := range cases {
		name := c.name
		if name == "" {
			name = c.query
		}
		t.Run(name, func(t *testing.T) {
			p := compile(t, c.query)
			sp := p.ForStream(labels.FromMap(c.stream))
			var md labels.Labels
			if c.md != nil {
				md = labels.FromMap(c.md)
			}
			out, res, keep := sp.Process(1_600_000_000_000_000_000, []byte(c.line), md)
			if keep == c.drop {
				t.Fatalf("%s on %q: keep=%v, want %v (labels %v)", c.query, c.line, keep, !c.drop, res)
			}
			if !keep {
				return
			}
			wantOut := c.out
			switch wantOut {
			case "":
				wantOut = c.line
			case emptyLine:
				wantOut = ""
			}
			if string(out) != wantOut {
				t.Errorf("%s on %q: line %q, want %q", c.query, c.line, out, wantOut)
			}
			want := labels.FromMap(c.want)
			if !res.Labels.Equal(want) {
				t.Errorf("%s on %q:\n got labels %s\nwant labels %s", c.query, c.line, res.Labels, want)
			}
			checkResult(t, res)
		})
	}
}

// checkResult checks the invariants of a result: valid, sorted labels, the
// categories partitioning them, the hash matching.
func checkResult(t testing.TB, r *LabelsResult) {
	t.Helper()
	if err := r.Labels.Validate(); err != nil {
		t.Fatalf("invalid result labels %s: %v", r.Labels, err)
	}
	var all labels.Labels
	all = append(all, r.Stream...)
	all = append(all, r.StructuredMetadata...)
	all = append(all, r.Parsed...)
	all = all.Copy().Sort()
	if !all.Equal(r.Labels) {
		t.Fatalf("categories %s + %s + %s do not make %s", r.Stream, r.StructuredMetadata, r.Parsed, r.Labels)
	}
	if r.Hash != r.Labels.Hash() {
		t.Fatalf("hash %x, want %x", r.Hash, r.Labels.Hash())
	}
	if r.Err != r.Labels.Get(ErrorLabel) {
		t.Fatalf("Err %q, labels say %q", r.Err, r.Labels.Get(ErrorLabel))
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

var job = map[string]string{"job": "varlogs"}

// docJSON is the document of Loki's json parser example, on one line.
const docJSON = `{"protocol": "HTTP/2.0", "servers": ["129.0.1.1","10.2.1.3"], "request": {"time": "6.032", "method": "GET", "host": "foo.grafana.net", "size": "55", "headers": {"Accept": "*/*", "User-Agent": "curl/7.68.0"}}, "response": {"status": 401, "size": "228", "latency_seconds": "6.031"}}`

func TestJSONParser(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "doc example", query: `{a="b"} | json`, stream: job, line: docJSON, want: with(job,
			"protocol", "HTTP/2.0",
			"request_time", "6.032",
			"request_method", "GET",
			"request_host", "foo.grafana.net",
			"request_size", "55",
			"request_headers_Accept", "*/*",
			"request_headers_User_Agent", "curl/7.68.0",
			"response_status", "401",
			"response_size", "228",
			"response_latency_seconds", "6.031")},
		{name: "doc params", query: `{a="b"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]"`, stream: job, line: docJSON,
			want: with(job, "first_server", "129.0.1.1", "ua", "curl/7.68.0")},
		{name: "doc params raw", query: `{a="b"} | json server_list="servers", headers="request.headers"`, stream: job, line: docJSON,
			want: with(job, "server_list", `["129.0.1.1","10.2.1.3"]`, "headers", `{"Accept": "*/*", "User-Agent": "curl/7.68.0"}`)},
		{name: "doc short param", query: `{a="b"} | json servers`, stream: job, line: docJSON,
			want: with(job, "servers", `["129.0.1.1","10.2.1.3"]`)},
		{name: "sanitized keys", query: `{a="b"} | json`, line: `{ "a.b": {"c": "d"}, "e": "f", "1x": 1, "cou-nter": 2, " sp ": 3, "ü": 4}`,
			want: map[string]string{"a_b_c": "d", "e": "f", "_1x": "1", "cou_nter": "2", "sp": "3", "_": "4"}},
		{name: "types", query: `{a="b"} | json`, line: `{"s":"x\"y\\u00e9\u00e9","n":-1.5e3,"t":true,"f":false,"z":null,"arr":[1,{"a":2}],"o":{},"e":""}`,
			want: map[string]string{"s": `x"y\u00e9é`, "n": "-1.5e3", "t": "true", "f": "false", "e": ""}},
		{name: "collision gets _extracted", query: `{a="b"} | json`, stream: map[string]string{"app": "bar"},
			line: `{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}},"next":{"err":false}}`,
			want: map[string]string{"app": "bar", "app_extracted": "foo", "namespace": "prod", "pod_uuid": "foo", "pod_deployment_ref": "foobar", "next_err": "false"}},
		{name: "first duplicate wins", query: `{a="b"} | json`, line: `{"a":"1","a":"2","b":{"c":"3"},"b_c":"4"}`,
			want: map[string]string{"a": "1", "b_c": "3"}},
		{name: "invalid utf8 value is empty", query: `{a="b"} | json`, line: "{\"a\":\"\xff\",\"b\":\"\uFFFD\",\"c\":\"ok\"}",
			want: map[string]string{"a": "", "b": "", "c": "ok"}},
		{name: "not json", query: `{a="b"} | json`, stream: job, line: `INFO GET / loki.net 200`,
			want: with(job, ErrorLabel, ErrJSON, ErrorDetailsLabel, `unexpected character 'I', expected a json object at offset 0`)},
		{name: "broken keeps what came before", query: `{a="b"} | json`, line: `{"a":"1","b":}`,
			want: map[string]string{"a": "1", ErrorLabel: ErrJSON, ErrorDetailsLabel: `unexpected character '}', expected a value at offset 13`}},
		{name: "empty line", query: `{a="b"} | json`, line: ``,
			want: map[string]string{ErrorLabel: ErrJSON, ErrorDetailsLabel: `empty line, expected a json object at offset 0`}},
		{name: "trailing data ignored", query: `{a="b"} | json`, line: `{"a":1} trailing`, want: map[string]string{"a": "1"}},
		{name: "error filtered", query: `{a="b"} | json | __error__=""`, line: `nope`, drop: true},
		{name: "error kept by name", query: `{a="b"} | json | __error__="JSONParserErr"`, line: `nope`,
			want: map[string]string{ErrorLabel: ErrJSON, ErrorDetailsLabel: `unexpected character 'n', expected a json object at offset 0`}},
		{name: "drop error", query: `{a="b"} | json | drop __error__, __error_details__`, stream: job, line: `INFO GET / loki.net 200`, want: job},
		{name: "params missing path is empty", query: `{a="b"} | json x="pod.nope", y="a[3]", z="a"`, line: `{"a":[1,2],"pod":{}}`,
			want: map[string]string{"x": "", "y": "", "z": "[1,2]"}},
		{name: "params null and bool", query: `{a="b"} | json n="n", b="b"`, line: `{"n":null,"b":false}`,
			want: map[string]string{"n": "", "b": "false"}},
		{name: "params escaped key", query: `{a="b"} | json v="[\"a b\"]"`, line: `{"a\u0020b":"x"}`, want: map[string]string{"v": "x"}},
		{name: "params collision", query: `{a="b"} | json uuid="pod.uuid"`, stream: map[string]string{"uuid": "bar"}, line: `{"pod":{"uuid":"foo"}}`,
			want: map[string]string{"uuid": "bar", "uuid_extracted": "foo"}},
		{name: "params invalid start", query: `{a="b"} | json x="a"`, line: `x{"a":1}`,
			want: map[string]string{ErrorLabel: ErrJSON}},
		{name: "params empty line", query: `{a="b"} | json x="a"`, line: ``, want: map[string]string{}},
		{name: "params top-level array", query: `{a="b"} | json x="[1]"`, line: `[10, 20]`, want: map[string]string{"x": "20"}},
	})
}

func TestUnpack(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "doc example", query: `{a="b"} | unpack`, stream: job,
			line: `{"container": "myapp", "pod": "pod-3223f", "_entry": "original log message"}`,
			out:  "original log message", want: with(job, "container", "myapp", "pod", "pod-3223f")},
		{name: "only strings, collision", query: `{a="b"} | unpack`, stream: map[string]string{"app": "bar", "cluster": "c"},
			line: `{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}`,
			out:  "some message", want: map[string]string{"app": "bar", "app_extracted": "foo", "namespace": "prod", "cluster": "c"}},
		{name: "no entry changes nothing", query: `{a="b"} | unpack`, stream: job, line: `{"app":"foo"}`, want: job},
		{name: "escaped entry", query: `{a="b"} | unpack`, line: `{"_entry":"say \"hi\"\n"}`, out: "say \"hi\"\n", want: map[string]string{}},
		{name: "not an object", query: `{a="b"} | unpack`, line: `["foo","bar"]`,
			want: map[string]string{ErrorLabel: ErrJSON, ErrorDetailsLabel: "expecting a json object, but it is not"}},
		{name: "empty line", query: `{a="b"} | unpack`, line: ``, want: map[string]string{}},
		{name: "then json", query: `{a="b"} | unpack | json`, line: `{"app":"x","_entry":"{\"level\":\"info\"}"}`, out: `{"level":"info"}`,
			want: map[string]string{"app": "x", "level": "info"}},
	})
}

const docLogfmt = `at=info method=GET path=/ host=grafana.net fwd="124.133.124.161" service=8ms status=200`

func TestLogfmtParser(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "doc example", query: `{a="b"} | logfmt`, line: docLogfmt, want: map[string]string{
			"at": "info", "method": "GET", "path": "/", "host": "grafana.net", "fwd": "124.133.124.161", "service": "8ms", "status": "200"}},
		{name: "doc params", query: `{a="b"} | logfmt host, fwd_ip="fwd"`, line: docLogfmt, want: map[string]string{
			"host": "grafana.net", "fwd_ip": "124.133.124.161"}},
		{name: "non-strict skips bad pairs", query: `{a="b"} | logfmt`, line: `a=1 =value foo=bar=buzz fo"o=bar b=2`,
			want: map[string]string{"a": "1", "b": "2"}},
		{name: "strict stops", query: `{a="b"} | logfmt --strict`, line: `a=1 foo=bar=buzz b=2`,
			want: map[string]string{"a": "1", ErrorLabel: ErrLogfmt, ErrorDetailsLabel: "logfmt syntax error at pos 12 : unexpected '='"}},
		{name: "strict no key", query: `{a="b"} | logfmt --strict`, line: `=value`,
			want: map[string]string{ErrorLabel: ErrLogfmt, ErrorDetailsLabel: "logfmt syntax error at pos 1 : unexpected '='"}},
		{name: "strict quote in key", query: `{a="b"} | logfmt --strict`, line: `fo"o=bar`,
			want: map[string]string{ErrorLabel: ErrLogfmt, ErrorDetailsLabel: "logfmt syntax error at pos 3 : unexpected '\"'"}},
		{name: "strict unterminated", query: `{a="b"} | logfmt --strict`, line: `a=1 msg="oops`,
			want: map[string]string{"a": "1", ErrorLabel: ErrLogfmt, ErrorDetailsLabel: "logfmt syntax error at pos 14 : unterminated quoted value"}},
		{name: "strict error filtered", query: `{a="b"} | logfmt --strict | __error__=""`, line: `a=b=c`, drop: true},
		{name: "non-strict unterminated", query: `{a="b"} | logfmt`, line: `a=1 msg="oops`, want: map[string]string{"a": "1"}},
		{name: "empty values dropped", query: `{a="b"} | logfmt`, line: `standalone k= q="" v=1`, want: map[string]string{"v": "1"}},
		{name: "keep empty", query: `{a="b"} | logfmt --keep-empty`, line: `standalone k= q="" v=1`,
			want: map[string]string{"standalone": "", "k": "", "q": "", "v": "1"}},
		{name: "requested standalone key", query: `{a="b"} | logfmt standalone, missing, v`, line: `standalone v=1`,
			want: map[string]string{"standalone": "", "missing": "", "v": "1"}},
		{name: "quoted and escapes", query: `{a="b"} | logfmt`, line: "a=\"foo bar\" b=\"x\\ny\\t\\\"z\\\"\" c=\"lit\nnl\"",
			want: map[string]string{"a": "foo bar", "b": "x\ny\t\"z\"", "c": "lit\nnl"}},
		{name: "first duplicate wins", query: `{a="b"} | logfmt`, line: `foobar="foo bar" foobar=10ms`, want: map[string]string{"foobar": "foo bar"}},
		{name: "collision and names", query: `{a="b"} | logfmt`, stream: map[string]string{"foo": "bar"}, line: `foo="foo bar" foo.bar=10ms test-dash=foo 9lives=yes`,
			want: map[string]string{"foo": "bar", "foo_extracted": "foo bar", "foo_bar": "10ms", "test_dash": "foo", "_9lives": "yes"}},
		{name: "invalid utf8 value", query: `{a="b"} | logfmt`, line: "buzz=foo bar=\xfff", want: map[string]string{"buzz": "foo", "bar": ""}},
		{name: "doc query", query: `{a="b"} |= "metrics.go" | logfmt | duration > 10s and throughput_mb < 500`,
			line: `level=info caller=metrics.go duration=12.5s throughput_mb=300`,
			want: map[string]string{"level": "info", "caller": "metrics.go", "duration": "12.5s", "throughput_mb": "300"}},
		{name: "doc query filtered", query: `{a="b"} |= "metrics.go" | logfmt | duration > 10s and throughput_mb < 500`,
			line: `level=info caller=metrics.go duration=2s throughput_mb=300`, drop: true},
	})
}

const docNginx = `0.191.12.2 - - [10/Jun/2021:09:14:29 +0000] "GET /api/plugins/versioncheck HTTP/1.1" 200 2 "-" "Go-http-client/2.0" "13.76.247.102, 34.120.177.193" "TLSv1.2" "US" ""`

func TestPatternParser(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "doc nginx", query: "{a=\"b\"} | pattern `<ip> - - <_> \"<method> <uri> <_>\" <status> <size> <_> \"<agent>\" <_>`", line: docNginx,
			want: map[string]string{"ip": "0.191.12.2", "method": "GET", "uri": "/api/plugins/versioncheck", "status": "200", "size": "2", "agent": "Go-http-client/2.0"}},
		{name: "doc msg", query: "{a=\"b\"} | pattern `<_> msg=\"<method> <path> (<status>) <latency>\"`",
			line: `level=debug ts=2021-06-10T09:24:13.472094048Z caller=logging.go:66 traceID=0568b66ad2d9294c msg="POST /loki/api/v1/push (204) 16.652862ms"`,
			want: map[string]string{"method": "POST", "path": "/loki/api/v1/push", "status": "204", "latency": "16.652862ms"}},
		{name: "apache with collision", query: "{a=\"b\"} | pattern `<ip> <userid> <user> [<_>] \"<method> <path> <_>\" <status> <size>`",
			stream: map[string]string{"method": "x"},
			line:   `127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
			want: map[string]string{"method": "x", "ip": "127.0.0.1", "userid": "user-identifier", "user": "frank", "method_extracted": "GET",
				"path": "/apache_pb.gif", "status": "200", "size": "2326"}},
		{name: "anchored prefix", query: "{a=\"b\"} | pattern `foo <f>\"`", line: `bar`, want: map[string]string{}},
		{name: "missing literal takes rest", query: "{a=\"b\"} | pattern `<a> <b>|<c>`", line: `x y z`, want: map[string]string{"a": "x", "b": "y z"}},
		{name: "empty captures and trailing literal", query: "{a=\"b\"} | pattern `<a>,<b>;`", line: `,x;tail`, want: map[string]string{"a": "", "b": "x"}},
		{name: "empty line", query: "{a=\"b\"} | pattern `<a> <b>`", line: ``, want: map[string]string{}},
	})
}

func TestRegexpParser(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "doc example", query: "{a=\"b\"} | regexp \"(?P<method>\\\\w+) (?P<path>[\\\\w|/]+) \\\\((?P<status>\\\\d+?)\\\\) (?P<duration>.*)\"",
			line: `POST /api/prom/api/v1/query_range (200) 1.5s`,
			want: map[string]string{"method": "POST", "path": "/api/prom/api/v1/query_range", "status": "200", "duration": "1.5s"}},
		{name: "no match", query: "{a=\"b\"} | regexp `(?P<foo>foo|bar)buzz`", stream: job, line: `blah`, want: job},
		{name: "greedy", query: "{a=\"b\"} | regexp `(?P<foo>.*)buzz`", line: `matchebuzz barbuzz`, want: map[string]string{"foo": "matchebuzz bar"}},
		{name: "collision", query: "{a=\"b\"} | regexp `(?P<bar>bar)buzz`", stream: map[string]string{"bar": "foo"}, line: `barbuzz`,
			want: map[string]string{"bar": "foo", "bar_extracted": "bar"}},
		{name: "optional group", query: "{a=\"b\"} | regexp `a(?P<x>b)?c(?P<y>d)`", line: `acd`, want: map[string]string{"x": "", "y": "d"}},
		{name: "invalid utf8 made valid", query: "{a=\"b\"} | regexp `v=(?P<v>\\S+)`", line: "v=a\xffb", want: map[string]string{"v": "a\uFFFDb"}},
	})
}

func TestParserErrorsAtCompile(t *testing.T) {
	for _, q := range []string{
		"{a=\"b\"} | regexp `(?P<x>a)(?P<x>b)`",
		`{a="b"} | line_format "{{.x"`,
		`{a="b"} | label_format x="{{.y"`,
		`{a="b"} | label_format __error__="x"`,
		`{a="b"} | line_format "{{ nosuchfunc .x }}"`,
	} {
		sel, err := logql.ParseLogSelector(q)
		if err != nil {
			t.Fatalf("parse %s: %v", q, err)
		}
		if _, err := New(sel.Stages); err == nil {
			t.Errorf("New(%s) succeeded, want an error", q)
		}
	}
}

func TestMultipleParsersFirstWins(t *testing.T) {
	runGolden(t, []goldenCase{
		// logfmt then json on the same key: the first parser's value stays.
		{query: `{a="b"} | json | line_format "level=debug other=1" | logfmt`, line: `{"level":"error"}`, out: "level=debug other=1",
			want: map[string]string{"level": "error", "other": "1"}},
		// A parser overwrites neither stream labels nor metadata: it gets
		// _extracted or replaces metadata.
		{query: `{a="b"} | logfmt`, md: map[string]string{"trace": "m"}, line: `trace=p`, want: map[string]string{"trace": "p"}},
	})
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"a":          "a",
		"a.b":        "a_b",
		" x ":        "x",
		"":           "",
		"  ":         "",
		"1a":         "_1a",
		"é":          "_",
		"a-b:c":      "a_b_c",
		"_ok_9":      "_ok_9",
		"User-Agent": "User_Agent",
	} {
		if got := sanitizeLabelName(in); got != want {
			t.Errorf("sanitizeLabelName(%q) = %q, want %q", in, got, want)
		}
	}
}
