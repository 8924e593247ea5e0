package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

func sampleExtractor(t testing.TB, query string, opts SampleOptions) *SampleExtractor {
	t.Helper()
	expr, err := logql.ParseExpr(query)
	if err != nil {
		t.Fatalf("parse %s: %v", query, err)
	}
	var r *logql.RangeAggregationExpr
	switch e := expr.(type) {
	case *logql.RangeAggregationExpr:
		r = e
	case *logql.VectorAggregationExpr:
		r = e.Expr.(*logql.RangeAggregationExpr)
	default:
		t.Fatalf("%s is not a range aggregation", query)
	}
	x, err := NewSampleExtractorWith(r, opts)
	if err != nil {
		t.Fatalf("compile %s: %v", query, err)
	}
	return x
}

func TestSampleExtraction(t *testing.T) {
	stream := map[string]string{"app": "api", "env": "prod"}
	cases := []struct {
		name  string
		query string
		opts  SampleOptions
		md    map[string]string
		line  string
		drop  bool
		value float64
		want  map[string]string
	}{
		{query: `count_over_time({a="b"}[1m])`, line: "x", value: 1, want: stream},
		{query: `rate({a="b"} |= "x" [1m])`, line: "x", value: 1, want: stream},
		{query: `rate({a="b"} |= "x" [1m])`, line: "y", drop: true},
		{query: `bytes_over_time({a="b"}[1m])`, line: "hello", value: 5, want: stream},
		{name: "bytes after the pipeline", query: `bytes_rate({a="b"} | line_format "xx" [1m])`, line: "hello", value: 2, want: stream},
		{query: `sum_over_time({a="b"} | logfmt | unwrap latency [1m])`, line: "latency=1.5 level=info", value: 1.5,
			want: with(stream, "level", "info")},
		{query: `avg_over_time({a="b"} | logfmt | unwrap duration(latency) [1m])`, line: "latency=250ms", value: 0.25, want: stream},
		{query: `avg_over_time({a="b"} | logfmt | unwrap duration_seconds(latency) [1m])`, line: "latency=1m30s", value: 90, want: stream},
		{query: `max_over_time({a="b"} | logfmt | unwrap bytes(size) [1m])`, line: `size="5 MiB"`, value: 5 << 20, want: stream},
		{query: `max_over_time({a="b"} | logfmt | unwrap bytes(size) [1m])`, line: `size=1KB`, value: 1000, want: stream},
		{name: "unwrap from metadata", query: `sum_over_time({a="b"} | unwrap took [1m])`, md: map[string]string{"took": "7"}, line: "x", value: 7, want: stream},
		{name: "unwrap failure", query: `sum_over_time({a="b"} | logfmt | unwrap latency [1m])`, line: "latency=abc", value: 0,
			want: with(stream, "latency", "abc", ErrorLabel, ErrSampleExtraction, ErrorDetailsLabel, `strconv.ParseFloat: parsing "abc": invalid syntax`)},
		{name: "unwrap missing label", query: `sum_over_time({a="b"} | unwrap latency [1m])`, line: "x", value: 0,
			want: with(stream, ErrorLabel, ErrSampleExtraction, ErrorDetailsLabel, `strconv.ParseFloat: parsing "": invalid syntax`)},
		{name: "unwrap failure filtered", query: `sum_over_time({a="b"} | logfmt | unwrap latency | __error__="" [1m])`, line: "latency=abc", drop: true},
		{name: "post filter on value", query: `sum_over_time({a="b"} | logfmt | unwrap latency | latency > 5 [1m])`, line: "latency=3", drop: true},
		{name: "parser error kept unless filtered", query: `sum by (app) (count_over_time({a="b"} | json [1m]))`, opts: SampleOptions{Grouping: &logql.Grouping{Labels: []string{"app"}}},
			line: "oops", value: 1, want: with(stream, ErrorLabel, ErrJSON, ErrorDetailsLabel, "unexpected character 'o', expected a json object at offset 0")},
		{name: "parser error filtered", query: `count_over_time({a="b"} | json | __error__="" [1m])`, line: "oops", drop: true},
		{name: "by", query: `max_over_time({a="b"} | logfmt | unwrap latency [1m]) by (level, nope)`, line: "latency=2 level=warn host=h", value: 2,
			want: map[string]string{"level": "warn"}},
		{name: "by keeps unwrapped label", query: `max_over_time({a="b"} | logfmt | unwrap latency [1m]) by (latency)`, line: "latency=2 level=warn", value: 2,
			want: map[string]string{"latency": "2"}},
		{name: "by ()", query: `max_over_time({a="b"} | logfmt | unwrap latency [1m]) by ()`, line: "latency=2", value: 2, want: map[string]string{}},
		{name: "without", query: `max_over_time({a="b"} | logfmt | unwrap latency [1m]) without (env, level)`, line: "latency=2 level=warn host=h", value: 2,
			want: map[string]string{"app": "api", "host": "h"}},
		{name: "error skips grouping", query: `max_over_time({a="b"} | logfmt | unwrap latency [1m]) by (level)`, line: "latency=x level=warn", value: 0,
			want: with(stream, "latency", "x", "level", "warn", ErrorLabel, ErrSampleExtraction, ErrorDetailsLabel, `strconv.ParseFloat: parsing "x": invalid syntax`)},
		{name: "no labels skips unused parsers", query: `count_over_time({a="b"} | json [1m])`, opts: SampleOptions{NoLabels: true}, line: "oops", value: 1,
			want: map[string]string{}},
		{name: "no labels still parses what filters read", query: `count_over_time({a="b"} | json | level="error" [1m])`, opts: SampleOptions{NoLabels: true},
			line: `{"level":"info"}`, drop: true},
		{name: "hints stop at the needed labels", query: `count_over_time({a="b"} | json [1m])`, opts: SampleOptions{Grouping: &logql.Grouping{Labels: []string{"level"}}},
			line: `{"level":"info","rest": broken`, value: 1, want: map[string]string{"level": "info"}},
		{name: "hints parse fully when errors matter", query: `count_over_time({a="b"} | json | __error__="" [1m])`, opts: SampleOptions{Grouping: &logql.Grouping{Labels: []string{"level"}}},
			line: `{"level":"info","rest": broken`, drop: true},
		{name: "hints nested", query: `count_over_time({a="b"} | json [1m])`, opts: SampleOptions{Grouping: &logql.Grouping{Labels: []string{"req_method"}}},
			line: `{"a":{"b":1},"req":{"method":"GET","x":2}}`, value: 1, want: map[string]string{"req_method": "GET"}},
		{name: "hints logfmt", query: `count_over_time({a="b"} | logfmt [1m])`, opts: SampleOptions{Grouping: &logql.Grouping{Labels: []string{"level"}}},
			line: `level=info msg="unterminated`, value: 1, want: map[string]string{"level": "info"}},
		{name: "hints with templates", query: `count_over_time({a="b"} | logfmt | line_format "{{.msg}}" | logfmt [1m])`, opts: SampleOptions{Grouping: &logql.Grouping{Labels: []string{"inner"}}},
			line: `msg="inner=1" other=2`, value: 1, want: map[string]string{"inner": "1"}},
	}
	for _, c := range cases {
		name := c.name
		if name == "" {
			name = c.query
		}
		t.Run(name, func(t *testing.T) {
			x := sampleExtractor(t, c.query, c.opts)
			sx := x.ForStream(labels.FromMap(stream))
			var md labels.Labels
			if c.md != nil {
				md = labels.FromMap(c.md)
			}
			v, res, ok := sx.Process(0, []byte(c.line), md)
			if ok == c.drop {
				t.Fatalf("ok=%v, want %v (labels %v)", ok, !c.drop, res)
			}
			if !ok {
				return
			}
			if v != c.value {
				t.Errorf("value %v, want %v", v, c.value)
			}
			if want := labels.FromMap(c.want); !res.Labels.Equal(want) {
				t.Errorf("labels %s, want %s", res.Labels, want)
			}
			checkResult(t, res)
		})
	}
}

func TestCountOnly(t *testing.T) {
	for q, want := range map[string]bool{
		`count_over_time({a="b"}[1m])`:                           true,
		`rate({a="b"}[1m])`:                                      true,
		`absent_over_time({a="b"}[1m])`:                          true,
		`bytes_over_time({a="b"}[1m])`:                           false,
		`count_over_time({a="b"} |= "x" [1m])`:                   false,
		`rate({a="b"} | unwrap x [1m])`:                          false,
		`max_over_time({a="b"} | logfmt | unwrap x [1m]) by (a)`: false,
	} {
		x := sampleExtractor(t, q, SampleOptions{})
		if x.CountOnly() != want {
			t.Errorf("%s: CountOnly %v, want %v", q, x.CountOnly(), want)
		}
	}
	x := sampleExtractor(t, `count_over_time({a="b"}[1m])`, SampleOptions{Grouping: &logql.Grouping{Labels: []string{"app"}}})
	sx := x.ForStream(labels.New("app", "a", "env", "e"))
	if got := sx.StreamLabels().Labels; !got.Equal(labels.New("app", "a")) {
		t.Errorf("stream labels %s", got)
	}
}

func TestSampleExtractorErrors(t *testing.T) {
	for _, q := range []string{
		`sum_over_time({a="b"}[1m])`,
		`quantile_over_time(0.5, {a="b"}[1m])`,
	} {
		expr, err := logql.ParseExpr(q)
		if err != nil {
			continue // the parser may already reject it
		}
		if _, err := NewSampleExtractor(expr.(*logql.RangeAggregationExpr)); err == nil {
			t.Errorf("%s: want an error for a missing unwrap", q)
		}
	}
	res := &LabelsResult{Err: ErrJSON, Labels: labels.New("app", "x", ErrorLabel, ErrJSON)}
	msg := NewPipelineError(res).Error()
	for _, part := range []string{`pipeline error: 'JSONParserErr'`, `{__error__="JSONParserErr", app="x"}`, `__error__!="JSONParserErr"`, `__error__=""`} {
		if !strings.Contains(msg, part) {
			t.Errorf("pipeline error %q lacks %q", msg, part)
		}
	}
}

func TestSampleCachedWithoutAllocs(t *testing.T) {
	x := sampleExtractor(t, `sum by (level) (count_over_time({a="b"} | json [1m]))`, SampleOptions{Grouping: &logql.Grouping{Labels: []string{"level"}}})
	sx := x.ForStream(labels.New("app", "x"))
	line := []byte(`{"ts":"2024-01-01T00:00:00Z","level":"error","msg":"disk \"full\"","n":3}`)
	_, r1, _ := sx.Process(0, line, nil)
	allocs := testing.AllocsPerRun(100, func() {
		_, r, ok := sx.Process(0, line, nil)
		if !ok || r != r1 {
			t.Fatal("sample lost or not cached")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per sample, want 0", allocs)
	}
}

// TestMetadataNames checks which structured metadata an extractor says
// can change its samples: only the grouping's names (with the base of a
// wanted name_extracted) when the stages are line filters and at most a
// pattern or regexp parser; every label otherwise.
func TestMetadataNames(t *testing.T) {
	by := func(names ...string) SampleOptions { return SampleOptions{Grouping: &logql.Grouping{Labels: names}} }
	for _, c := range []struct {
		query string
		opts  SampleOptions
		names []string // nil: all
	}{
		{`count_over_time({a="b"} | pattern "<_> <status> <_>" [1m])`, by("status"), []string{"status"}},
		{`count_over_time({a="b"} |= "x" | regexp "(?P<s>\\d+)" [1m])`, by("s_extracted", "host"), []string{"host", "s", "s_extracted"}},
		{`count_over_time({a="b"} |= "x" [1m])`, by("host"), []string{"host"}},
		{`bytes_over_time({a="b"} [1m])`, by("host"), []string{"host"}},
		{`count_over_time({a="b"} | pattern "<_> <status> <_>" [1m])`, SampleOptions{NoLabels: true}, []string{}},
		{`count_over_time({a="b"} |= "x" [1m])`, SampleOptions{}, nil},                                         // every label is kept
		{`count_over_time({a="b"} |= "x" [1m])`, SampleOptions{Grouping: &logql.Grouping{Without: true}}, nil}, // without keeps the rest
		{`count_over_time({a="b"} | logfmt [1m])`, by("status"), nil},                                          // a parser that can fail
		{`count_over_time({a="b"} | pattern "<s> <_>" | s="x" [1m])`, by("host"), nil},                         // a label filter
		{`count_over_time({a="b"} | line_format "{{.s}}" [1m])`, by("host"), nil},                              // a template
		{`sum_over_time({a="b"} | pattern "<_> <v>" | unwrap v [1m])`, by("host"), nil},                        // a conversion that can fail
	} {
		x := sampleExtractor(t, c.query, c.opts)
		names, all := x.MetadataNames()
		if c.names == nil {
			if !all {
				t.Errorf("%s %+v: only %v, want every label", c.query, c.opts, names)
			}
			continue
		}
		got := slices.Sorted(slices.Values(names))
		if all || !slices.Equal(got, c.names) {
			t.Errorf("%s %+v: %v (all %v), want only %v", c.query, c.opts, got, all, c.names)
		}
	}
}
