package logql

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/labels"
)

// canonical maps a query to its canonical printed form.
var canonical = []struct{ in, want string }{
	// Stream selectors.
	{`{a="b"}`, `{a="b"}`},
	{`{ a = "b" , c != "d", e =~ "f.*", g !~ "h" }`, `{a="b", c!="d", e=~"f.*", g!~"h"}`},
	{`{a="b",}`, `{a="b"}`},
	{"{a=`raw\\d+`}", `{a="raw\\d+"}`},
	{`{a="tab\there \u00e9 \x41"}`, `{a="tab\there é A"}`},
	{`{a=~".+", b=""}`, `{a=~".+", b=""}`},
	{`({a="b"})`, `{a="b"}`},
	{"{a=\"b\"} # a comment\n |= \"x\" # another", `{a="b"} |= "x"`},
	// Line filters.
	{`{a="b"} |= "x" != "y" |~ "re" !~ "re2"`, `{a="b"} |= "x" != "y" |~ "re" !~ "re2"`},
	{`{a="b"} |> "<_> foo <_>" !> "bar <_>"`, `{a="b"} |> "<_> foo <_>" !> "bar <_>"`},
	{`{a="b"} |= "a" or "b" or "c"`, `{a="b"} |= "a" or "b" or "c"`},
	{`{a="b"} != "a" or "b"`, `{a="b"} != "a" or "b"`},
	{`{a="b"} |~ "a" or "b"`, `{a="b"} |~ "a" or "b"`},
	{`{a="b"} |= ip("10.0.0.0/8")`, `{a="b"} |= ip("10.0.0.0/8")`},
	{`{a="b"} != ip("192.168.4.5-192.168.4.20") or "x"`, `{a="b"} != ip("192.168.4.5-192.168.4.20") or "x"`},
	{"{a=\"b\"} |~ `\\d+`", `{a="b"} |~ "\\d+"`},
	// Parsers.
	{`{a="b"} | json`, `{a="b"} | json`},
	{`{a="b"} | json a="x.y", b="z[0]", c, d="d"`, `{a="b"} | json a="x.y", b="z[0]", c, d`},
	{`{a="b"} | json ua="request.headers[\"User-Agent\"]"`, `{a="b"} | json ua="request.headers[\"User-Agent\"]"`},
	{`{a="b"} | logfmt`, `{a="b"} | logfmt`},
	{`{a="b"} | logfmt --strict --keep-empty`, `{a="b"} | logfmt --strict --keep-empty`},
	{`{a="b"} | logfmt --keep-empty --strict host, fwd_ip="fwd"`, `{a="b"} | logfmt --strict --keep-empty host, fwd_ip="fwd"`},
	{`{a="b"} | logfmt a, b="c"`, `{a="b"} | logfmt a, b="c"`},
	{`{a="b"} | regexp "(?P<method>\\w+) (?P<path>\\S+)"`, `{a="b"} | regexp "(?P<method>\\w+) (?P<path>\\S+)"`},
	{`{a="b"} | pattern "<ip> - <_>"`, `{a="b"} | pattern "<ip> - <_>"`},
	{`{a="b"} | unpack`, `{a="b"} | unpack`},
	// Label filters.
	{`{a="b"} | x = "s"`, `{a="b"} | x="s"`},
	{`{a="b"} | x != "s" | y =~ "r.*" | z !~ "q"`, `{a="b"} | x!="s" | y=~"r.*" | z!~"q"`},
	{`{a="b"} | x > 1 | x >= 1.5 | x < -2 | x <= 3e3 | x == 4 | x != 5 | x = 6`,
		`{a="b"} | x > 1 | x >= 1.5 | x < -2 | x <= 3000 | x == 4 | x != 5 | x == 6`},
	{`{a="b"} | d > 5s | d < 1m30s | d >= 250ms | d == 1.5h | d > -5s`,
		`{a="b"} | d > 5s | d < 1m30s | d >= 250ms | d == 1h30m | d > -5s`},
	{`{a="b"} | s > 20MB | s < 1KiB | s >= 1.5KB | s <= 512B | s == 1kb`,
		`{a="b"} | s > 20MB | s < 1KiB | s >= 1500B | s <= 512B | s == 1KB`},
	{`{a="b"} | addr = ip("192.168.0.0/16") | addr != ip("::1")`, `{a="b"} | addr = ip("192.168.0.0/16") | addr != ip("::1")`},
	{`{a="b"} | x="1" and y="2" or z="3"`, `{a="b"} | x="1" and y="2" or z="3"`},
	{`{a="b"} | x="1", y="2"`, `{a="b"} | x="1" and y="2"`},
	{`{a="b"} | x="1" y="2"`, `{a="b"} | x="1" and y="2"`},
	{`{a="b"} | x="1" or (y="2" and z="3")`, `{a="b"} | x="1" or (y="2" and z="3")`},
	{`{a="b"} | ((x="1" or y="2") and z="3")`, `{a="b"} | x="1" or y="2" and z="3"`},
	{`{a="b"} | json = "x" | logfmt > 1`, `{a="b"} | json="x" | logfmt > 1`},
	// Formatting and label stages.
	{`{a="b"} | line_format "{{.a}} {{.b}}"`, `{a="b"} | line_format "{{.a}} {{.b}}"`},
	{"{a=\"b\"} | line_format `{{.a}}\n`", `{a="b"} | line_format "{{.a}}\n"`},
	{`{a="b"} | label_format a=b, c="{{.x}}"`, `{a="b"} | label_format a=b, c="{{.x}}"`},
	{`{a="b"} | drop a, b="v", c=~"x.*"`, `{a="b"} | drop a, b="v", c=~"x.*"`},
	{`{a="b"} | keep a, b`, `{a="b"} | keep a, b`},
	{`{a="b"} | decolorize`, `{a="b"} | decolorize`},
	{`{a="b"} |= "x" | json | level="error" |= "y" | line_format "{{.msg}}" != "z"`,
		`{a="b"} |= "x" | json | level="error" |= "y" | line_format "{{.msg}}" != "z"`},
	// Range aggregations.
	{`rate({a="b"}[5m])`, `rate({a="b"}[5m])`},
	{`count_over_time({a="b"} |= "x" [1h30m])`, `count_over_time({a="b"} |= "x" [1h30m])`},
	{`rate({a="b"}[5m] |= "x")`, `rate({a="b"} |= "x" [5m])`},
	{`rate({a="b"}[5m] offset 1h |= "x")`, `rate({a="b"} |= "x" [5m] offset 1h)`},
	{`rate(({a="b"} |= "x")[5m])`, `rate({a="b"} |= "x" [5m])`},
	{`rate(({a="b"} |= "x" [5m]))`, `rate({a="b"} |= "x" [5m])`},
	{`bytes_rate({a="b"}[1d]) `, `bytes_rate({a="b"}[1d])`},
	{`bytes_over_time({a="b"}[1w])`, `bytes_over_time({a="b"}[1w])`},
	{`absent_over_time({a="b"}[90s])`, `absent_over_time({a="b"}[1m30s])`},
	{`rate({a="b"} | unwrap x [5m])`, `rate({a="b"} | unwrap x [5m])`},
	{`rate_counter({a="b"} | unwrap x [5m])`, `rate_counter({a="b"} | unwrap x [5m])`},
	{`sum_over_time({a="b"} | json | unwrap bytes(size) [5m])`, `sum_over_time({a="b"} | json | unwrap bytes(size) [5m])`},
	{`avg_over_time({a="b"} | unwrap duration(d) [5m]) by (x)`, `avg_over_time({a="b"} | unwrap duration(d) [5m]) by (x)`},
	{`max_over_time({a="b"} | unwrap duration_seconds(d) | __error__="" [5m]) without (y)`,
		`max_over_time({a="b"} | unwrap duration_seconds(d) | __error__="" [5m]) without (y)`},
	{`min_over_time({a="b"} | unwrap duration [5m])`, `min_over_time({a="b"} | unwrap duration [5m])`},
	{`stdvar_over_time({a="b"} | unwrap x [5m])`, `stdvar_over_time({a="b"} | unwrap x [5m])`},
	{`stddev_over_time({a="b"} | unwrap x [5m])`, `stddev_over_time({a="b"} | unwrap x [5m])`},
	{`first_over_time({a="b"} | unwrap x [5m])`, `first_over_time({a="b"} | unwrap x [5m])`},
	{`last_over_time({a="b"} | unwrap x [5m]) by ()`, `last_over_time({a="b"} | unwrap x [5m]) by ()`},
	{`quantile_over_time(0.99, {a="b"} | json | unwrap latency [5m]) by (path)`,
		`quantile_over_time(0.99, {a="b"} | json | unwrap latency [5m]) by (path)`},
	// Vector aggregations.
	{`sum(rate({a="b"}[5m]))`, `sum(rate({a="b"}[5m]))`},
	{`sum by (a, b) (rate({a="b"}[5m]))`, `sum by (a, b) (rate({a="b"}[5m]))`},
	{`sum(rate({a="b"}[5m])) by (a)`, `sum by (a) (rate({a="b"}[5m]))`},
	{`sum without (a) (rate({a="b"}[5m]))`, `sum without (a) (rate({a="b"}[5m]))`},
	{`sum(rate({a="b"}[5m])) without ()`, `sum without () (rate({a="b"}[5m]))`},
	{`avg(rate({a="b"}[5m]))`, `avg(rate({a="b"}[5m]))`},
	{`min(rate({a="b"}[5m]))`, `min(rate({a="b"}[5m]))`},
	{`max(rate({a="b"}[5m]))`, `max(rate({a="b"}[5m]))`},
	{`count(rate({a="b"}[5m]))`, `count(rate({a="b"}[5m]))`},
	{`stddev(rate({a="b"}[5m]))`, `stddev(rate({a="b"}[5m]))`},
	{`stdvar(rate({a="b"}[5m]))`, `stdvar(rate({a="b"}[5m]))`},
	{`topk(5, rate({a="b"}[5m]))`, `topk(5, rate({a="b"}[5m]))`},
	{`topk by (a) (5, rate({a="b"}[5m]))`, `topk by (a) (5, rate({a="b"}[5m]))`},
	{`bottomk(3, rate({a="b"}[5m])) by (a)`, `bottomk by (a) (3, rate({a="b"}[5m]))`},
	{`sort(rate({a="b"}[5m]))`, `sort(rate({a="b"}[5m]))`},
	{`sort_desc(rate({a="b"}[5m]))`, `sort_desc(rate({a="b"}[5m]))`},
	{`approx_topk(10, sum by (a) (rate({a="b"}[5m])))`, `approx_topk(10, sum by (a) (rate({a="b"}[5m])))`},
	// Binary operators and literals.
	{`1`, `1`},
	{`-1.5`, `-1.5`},
	{`+2`, `2`},
	{`1e3`, `1000`},
	{`1 + 2 * 3`, `1 + 2 * 3`},
	{`(1 + 2) * 3`, `(1 + 2) * 3`},
	{`1 - (2 - 3)`, `1 - (2 - 3)`},
	{`(1 - 2) - 3`, `1 - 2 - 3`},
	{`2 ^ 3 ^ 2`, `2 ^ 3 ^ 2`},
	{`(2 ^ 3) ^ 2`, `(2 ^ 3) ^ 2`},
	{`-1 - -2`, `-1 - -2`},
	{`1 % 2 / 3`, `1 % 2 / 3`},
	{`1 > bool 2`, `1 > bool 2`},
	{`vector(1)`, `vector(1)`},
	{`vector(-1) + 1`, `vector(-1) + 1`},
	{`sum(rate({a="b"}[1m])) / sum(rate({a="c"}[1m])) * 100`, `sum(rate({a="b"}[1m])) / sum(rate({a="c"}[1m])) * 100`},
	{`sum(rate({a="b"}[1m])) > 10`, `sum(rate({a="b"}[1m])) > 10`},
	{`sum(rate({a="b"}[1m])) == bool 10`, `sum(rate({a="b"}[1m])) == bool 10`},
	{`sum(count_over_time({a="b"}[5m])) or vector(0)`, `sum(count_over_time({a="b"}[5m])) or vector(0)`},
	{`rate({a="b"}[1m]) and rate({a="c"}[1m]) unless rate({a="d"}[1m])`,
		`rate({a="b"}[1m]) and rate({a="c"}[1m]) unless rate({a="d"}[1m])`},
	{`rate({a="b"}[1m]) or rate({a="c"}[1m]) and rate({a="d"}[1m])`,
		`rate({a="b"}[1m]) or rate({a="c"}[1m]) and rate({a="d"}[1m])`},
	{`rate({a="b"}[1m]) / on(x, y) rate({a="c"}[1m])`, `rate({a="b"}[1m]) / on (x, y) rate({a="c"}[1m])`},
	{`rate({a="b"}[1m]) / ignoring(x) group_left rate({a="c"}[1m])`, `rate({a="b"}[1m]) / ignoring (x) group_left () rate({a="c"}[1m])`},
	{`rate({a="b"}[1m]) / on() group_right(z) rate({a="c"}[1m])`, `rate({a="b"}[1m]) / on () group_right (z) rate({a="c"}[1m])`},
	{`rate({a="b"}[1m]) > bool on(x) rate({a="c"}[1m])`, `rate({a="b"}[1m]) > bool on (x) rate({a="c"}[1m])`},
	{`label_replace(rate({a="b"}[1m]), "dst", "$1", "src", "(.*)")`, `label_replace(rate({a="b"}[1m]), "dst", "$1", "src", "(.*)")`},
	{`(sum(rate({a="b"}[1m])))`, `sum(rate({a="b"}[1m]))`},
	// Keywords are ordinary names where a name is expected.
	{`{offset="1", by="2"} | json | bytes > 1KB | unwrap="x"`, `{offset="1", by="2"} | json | bytes > 1KB | unwrap="x"`},
	{`sum by (offset, on, bool) (rate({a="b"}[1m]))`, `sum by (offset, on, bool) (rate({a="b"}[1m]))`},
}

func TestParseCanonical(t *testing.T) {
	for _, c := range canonical {
		e, err := ParseExpr(c.in)
		if err != nil {
			t.Errorf("ParseExpr(%q): %v", c.in, err)
			continue
		}
		got := e.String()
		if got != c.want {
			t.Errorf("ParseExpr(%q).String()\n got %s\nwant %s", c.in, got, c.want)
			continue
		}
		again, err := ParseExpr(got)
		if err != nil {
			t.Errorf("reparse %q: %v", got, err)
			continue
		}
		if again.String() != got {
			t.Errorf("not stable: %q -> %q", got, again.String())
		}
	}
}

func TestParseStructure(t *testing.T) {
	// Precedence: * binds tighter than +, ^ groups to the right.
	e := mustParse(t, `1 + 2 * 3 ^ 4 ^ 5`).(*BinaryExpr)
	if e.Op != OpAdd {
		t.Fatalf("top op %s", e.Op)
	}
	mul := e.RHS.(*BinaryExpr)
	pow := mul.RHS.(*BinaryExpr)
	if mul.Op != OpMul || pow.Op != OpPow || pow.RHS.(*BinaryExpr).Op != OpPow {
		t.Fatalf("wrong tree for %s", e)
	}
	// Left associativity.
	e = mustParse(t, `1 - 2 - 3`).(*BinaryExpr)
	if l, ok := e.LHS.(*BinaryExpr); !ok || l.Op != OpSub || e.RHS.(*LiteralExpr).Value != 3 {
		t.Fatalf("1 - 2 - 3 parsed as %#v", e)
	}
	// or binds loosest, comparison tighter than and.
	e = mustParse(t, `rate({a="b"}[1m]) or rate({a="c"}[1m]) > 1 and rate({a="d"}[1m])`).(*BinaryExpr)
	if e.Op != OpOr || e.RHS.(*BinaryExpr).Op != OpAnd || e.RHS.(*BinaryExpr).LHS.(*BinaryExpr).Op != OpGt {
		t.Fatalf("set operator precedence wrong: %s", e)
	}

	// Label filters: left to right, equal precedence.
	sel := mustParse(t, `{a="b"} | x="1" or y="2" and z="3"`).(*LogSelectorExpr)
	top := sel.Stages[0].(*LabelFilterStage).Filter.(*LabelFilterBinary)
	if top.Or || !top.Left.(*LabelFilterBinary).Or {
		t.Fatalf("label filter grouping wrong: %s", top)
	}

	// A full metric query.
	q := mustParse(t, `sum by (app) (quantile_over_time(0.9, {app=~"web.+"} |= "GET" | logfmt | unwrap duration(took) | __error__="" [5m] offset 1m) by (app))`)
	va := q.(*VectorAggregationExpr)
	if va.Op != VectorSum || va.Grouping == nil || va.Grouping.Without || va.Grouping.Labels[0] != "app" {
		t.Fatalf("vector aggregation: %#v", va)
	}
	ra := va.Expr.(*RangeAggregationExpr)
	if ra.Op != RangeQuantile || *ra.Param != 0.9 || ra.Range.Interval != 5*time.Minute || ra.Range.Offset != time.Minute {
		t.Fatalf("range aggregation: %#v", ra)
	}
	u := ra.Range.Unwrap
	if u.Label != "took" || u.Conversion != "duration" || len(u.PostFilters) != 1 {
		t.Fatalf("unwrap: %#v", u)
	}
	m := ra.Range.Selector.Matchers[0]
	if m.Type != labels.MatchRegexp || !m.Matches("web-1") || m.Matches("api") {
		t.Fatalf("matcher %s", m)
	}
	lf := ra.Range.Selector.Stages[0].(*LineFilter)
	if lf.Op != LineContains || lf.Values[0].Value != "GET" {
		t.Fatalf("line filter %#v", lf)
	}

	// Values of typed label filters.
	sel = mustParse(t, `{a="b"} | d > 1m30s | s <= 1.5KiB | n == -2.5 | ip = ip("10.0.0.0/8")`).(*LogSelectorExpr)
	if f := sel.Stages[0].(*LabelFilterStage).Filter.(*DurationLabelFilter); f.Value != 90*time.Second || f.Op != CmpGt {
		t.Fatalf("duration filter %#v", f)
	}
	if f := sel.Stages[1].(*LabelFilterStage).Filter.(*BytesLabelFilter); f.Value != 1536 || f.Op != CmpLte {
		t.Fatalf("bytes filter %#v", f)
	}
	if f := sel.Stages[2].(*LabelFilterStage).Filter.(*NumberLabelFilter); f.Value != -2.5 || f.Op != CmpEq {
		t.Fatalf("number filter %#v", f)
	}
	if f := sel.Stages[3].(*LabelFilterStage).Filter.(*IPLabelFilter); f.Name != "ip" || f.Pattern != "10.0.0.0/8" || f.Negated {
		t.Fatalf("ip filter %#v", f)
	}

	// label_format rename vs template, drop with a matcher.
	sel = mustParse(t, `{a="b"} | label_format dst=src, t="{{.x}}" | drop a, b=~"x.+"`).(*LogSelectorExpr)
	lfm := sel.Stages[0].(*LabelFormat)
	if lfm.Ops[0] != (LabelFormatOp{Dst: "dst", Src: "src"}) || lfm.Ops[1] != (LabelFormatOp{Dst: "t", Src: "{{.x}}", Template: true}) {
		t.Fatalf("label_format %#v", lfm.Ops)
	}
	drop := sel.Stages[1].(*DropLabels)
	if drop.Labels[0].Matcher != nil || drop.Labels[1].Matcher == nil || !drop.Labels[1].Matcher.Matches("xy") {
		t.Fatalf("drop %#v", drop.Labels)
	}

	// Vector matching.
	be := mustParse(t, `rate({a="b"}[1m]) * on (x) group_left (y, z) rate({a="c"}[1m])`).(*BinaryExpr)
	if be.Matching == nil || !be.Matching.On || be.Matching.Card != ManyToOne || len(be.Matching.Include) != 2 {
		t.Fatalf("matching %#v", be.Matching)
	}
}

func TestPositions(t *testing.T) {
	q := `sum(rate({a="b"} |= "x" | json [5m])) + 1`
	e := mustParse(t, q)
	var got []string
	Walk(e, func(n Node) bool {
		got = append(got, q[n.Pos():min(int(n.Pos())+5, len(q))])
		return true
	})
	want := []string{"sum(r", "sum(r", "rate(", "{a=\"b", "{a=\"b", "|= \"x", "| jso", "1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("positions\n got %q\nwant %q", got, want)
	}
}

func TestParseEntryPoints(t *testing.T) {
	if _, err := ParseLogSelector(`{a="b"} |= "x"`); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseLogSelector(`rate({a="b"}[1m])`); err == nil {
		t.Fatal("ParseLogSelector accepted a metric query")
	}
	if _, err := ParseSampleExpr(`rate({a="b"}[1m])`); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSampleExpr(`{a="b"}`); err == nil {
		t.Fatal("ParseSampleExpr accepted a log query")
	}
	ms, err := ParseMatchers(`{job="api", env=~"prod|dev"}`)
	if err != nil || len(ms) != 2 || ms[1].Type != labels.MatchRegexp || !ms[1].Matches("dev") {
		t.Fatalf("ParseMatchers: %v %v", ms, err)
	}
	if _, err := ParseMatchers(`{job=~".*"}`); err == nil {
		t.Fatal("ParseMatchers accepted an empty-compatible selector")
	}
	if _, err := ParseMatchers(`{job="a"} |= "x"`); err == nil {
		t.Fatal("ParseMatchers accepted a pipeline")
	}
	sels := LogSelectors(mustParse(t, `rate({a="1"}[1m]) / rate({a="2"} |= "x" [1m])`))
	if len(sels) != 2 || sels[1].Matchers[0].Value != "2" {
		t.Fatalf("LogSelectors: %v", sels)
	}
}

func mustParse(t *testing.T, q string) Expr {
	t.Helper()
	e, err := ParseExpr(q)
	if err != nil {
		t.Fatalf("ParseExpr(%q): %v", q, err)
	}
	return e
}

// zeroPositions clears every Pos field reachable from v, so that trees
// parsed from differently formatted text compare equal.
func zeroPositions(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			zeroPositions(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			zeroPositions(v.Index(i))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if f.Type() == reflect.TypeFor[Pos]() {
				f.SetInt(0)
				continue
			}
			if v.Type().Field(i).IsExported() {
				zeroPositions(f)
			}
		}
	}
}

func TestReparseEqualTree(t *testing.T) {
	for _, c := range canonical {
		a, err := ParseExpr(c.in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseExpr(a.String())
		if err != nil {
			t.Fatal(err)
		}
		zeroPositions(reflect.ValueOf(a))
		zeroPositions(reflect.ValueOf(b))
		if !reflect.DeepEqual(a, b) {
			t.Errorf("parse(print(x)) != x for %q", c.in)
		}
	}
}
