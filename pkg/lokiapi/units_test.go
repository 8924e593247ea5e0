package lokiapi

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/query"
)

func TestPointsArePrometheusFormatted(t *testing.T) {
	cases := []struct {
		ms   int64
		v    float64
		want string
	}{
		{1700000000123, 1, `[1700000000.123,"1"]`},
		{1700000000000, 0.5, `[1700000000,"0.5"]`},
		{1700000000010, 1e21, `[1700000000.010,"1000000000000000000000"]`},
		{-1500, -2.25, `[-1.500,"-2.25"]`},
		{5, math.NaN(), `[0.005,"NaN"]`},
		{0, math.Inf(1), `[0,"+Inf"]`},
		{0, math.Inf(-1), `[0,"-Inf"]`},
	}
	for _, c := range cases {
		got := string(appendPoint(nil, c.ms, c.v))
		if got != c.want {
			t.Errorf("appendPoint(%d, %v) = %s, want %s", c.ms, c.v, got, c.want)
		}
		var back [2]any
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%s is not JSON: %v", got, err)
		}
	}
	if got := string(appendSeconds(nil, math.MinInt64)); got != "-9223372036854775.808" {
		t.Errorf("min int64 ms: %s", got)
	}
}

func TestMetricResultsRender(t *testing.T) {
	ls := labels.New("app", "a\"b")
	res := &query.Result{Type: query.ResultMatrix, Matrix: []query.Series{{Labels: ls, Points: []query.Point{{T: 1000, V: 1}, {T: 2000, V: math.NaN()}}}, {Labels: labels.Labels{}}}}
	b := appendMatrix(nil, res.Matrix)
	if string(b) != `[{"metric":{"app":"a\"b"},"values":[[1,"1"],[2,"NaN"]]},{"metric":{},"values":[]}]` {
		t.Fatalf("matrix: %s", b)
	}
	b = appendVector(nil, []query.Sample{{Labels: ls, T: 1500, V: 3}})
	if string(b) != `[{"metric":{"app":"a\"b"},"value":[1.500,"3"]}]` {
		t.Fatalf("vector: %s", b)
	}
	if b := appendVector(nil, nil); string(b) != "[]" {
		t.Fatalf("empty vector: %s", b)
	}
}

func TestLimitsMergePerTenant(t *testing.T) {
	l := DefaultLimits()
	l.Overrides = map[string]Limits{
		"big":  {MaxQueryLength: 1000 * time.Hour, MaxQuerySeries: -1},
		"tiny": {MaxEntriesPerQuery: 10, QueryTimeout: time.Second, MaxQueryBytesRead: 1 << 20},
	}
	big := l.ForTenant("big")
	if big.MaxQueryLength != 1000*time.Hour || big.MaxQuerySeries != 0 || big.MaxEntriesPerQuery != 5000 || big.Overrides != nil {
		t.Fatalf("big: %+v", big)
	}
	tiny := l.ForTenant("tiny")
	if tiny.MaxEntriesPerQuery != 10 || tiny.QueryTimeout != time.Second || tiny.MaxQueryBytesRead != 1<<20 || tiny.MaxQueryLength != 721*time.Hour {
		t.Fatalf("tiny: %+v", tiny)
	}
	if other := l.ForTenant("x"); other.MaxQuerySeries != 500 || other.VolumeMaxSeries != 1000 {
		t.Fatalf("default: %+v", other)
	}
}

func TestLimitsReadFromYAML(t *testing.T) {
	doc := `
max_query_length: 48h
max_query_series: 100
max_query_bytes_read: 10GB
overrides:
  team-a:
    max_query_bytes_read: 512MiB
    query_timeout: 2m
  team-b:
    max_query_bytes_read: -1
`
	l := DefaultLimits()
	if err := yaml.Unmarshal([]byte(doc), &l); err != nil {
		t.Fatal(err)
	}
	if l.MaxQueryLength != 48*time.Hour || l.MaxQuerySeries != 100 || l.MaxQueryBytesRead != 10e9 || l.MaxEntriesPerQuery != 5000 {
		t.Fatalf("defaults: %+v", l)
	}
	if a := l.ForTenant("team-a"); a.MaxQueryBytesRead != 512<<20 || a.QueryTimeout != 2*time.Minute || a.MaxQuerySeries != 100 {
		t.Fatalf("team-a: %+v", a)
	}
	if b := l.ForTenant("team-b"); b.MaxQueryBytesRead != 0 {
		t.Fatalf("team-b disables the bytes limit: %+v", b)
	}
	for _, bad := range []string{"max_query_bytes_read: lots", "max_query_bytes_read: 5XB"} {
		if err := yaml.Unmarshal([]byte(bad), &l); err == nil || !strings.Contains(err.Error(), "byte size") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	var n Bytes
	if err := n.UnmarshalText([]byte("123456")); err != nil || n != 123456 {
		t.Fatalf("plain number: %v %d", err, n)
	}
	if out, _ := Bytes(2 << 30).MarshalText(); string(out) != "2GiB" {
		t.Fatalf("marshal: %s", out)
	}
	if got := humanBytes(3 << 29); got != "1.5GiB" {
		t.Fatalf("humanBytes: %s", got)
	}
}

func TestOverlapAndSpread(t *testing.T) {
	if f := overlapFraction(0, 99, 50, 1000); f != 0.5 {
		t.Fatalf("half: %v", f)
	}
	if f := overlapFraction(10, 10, 0, 100); f != 1 {
		t.Fatalf("point chunk: %v", f)
	}
	if f := overlapFraction(0, 99, 100, 200); f != 0 {
		t.Fatalf("disjoint: %v", f)
	}
	steps := make([]float64, 4)
	spread(steps, 5, 24, 200, 0, 40, 10) // 20ns span: 5 in step 0, 10 in 1, 5 in 2
	if steps[0] != 50 || steps[1] != 100 || steps[2] != 50 || steps[3] != 0 {
		t.Fatalf("spread: %v", steps)
	}
}

func TestFieldTypes(t *testing.T) {
	for v, want := range map[string]string{
		"42": "int", "-7": "int", "4.5": "float", "1e3": "float", "true": "boolean", "F": "boolean",
		"15ms": "duration", "1h30m": "duration", "10KB": "bytes", "1.5MiB": "bytes", "hello": "string", "": "string",
	} {
		if got := valueType(v); got != want {
			t.Errorf("valueType(%q) = %s, want %s", v, got, want)
		}
	}
	for _, c := range [][3]string{{"", "int", "int"}, {"int", "float", "float"}, {"float", "int", "float"}, {"int", "string", "string"}, {"duration", "int", "string"}} {
		if got := widenType(c[0], c[1]); got != c[2] {
			t.Errorf("widenType(%s, %s) = %s, want %s", c[0], c[1], got, c[2])
		}
	}
	if n := flatName([]string{"user", "first-name"}); n != "user_first_name" {
		t.Fatalf("flatName: %s", n)
	}
	if n := flatName([]string{"1x", "é"}); n != "_1x__" {
		t.Fatalf("flatName: %s", n)
	}
}

func TestIdentifierLabels(t *testing.T) {
	set := func(vs ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, v := range vs {
			m[v] = struct{}{}
		}
		return m
	}
	for _, c := range []struct {
		vs   map[string]struct{}
		want bool
	}{
		{set("1", "2", "3"), true},
		{set("0", "1"), false}, // a flag
		{set("123e4567-e89b-12d3-a456-426614174000", "7"), true},
		{set("{123e4567-e89b-12d3-a456-426614174000}"), true},
		{set("urn:uuid:123e4567-e89b-12d3-a456-426614174000"), true},
		{set("123e4567e89b12d3a456426614174000"), true},
		{set("123e4567-e89b-12d3-a456-42661417400g"), false},
		{set("prod", "1"), false},
	} {
		if got := allIdentifiers(c.vs); got != c.want {
			t.Errorf("allIdentifiers(%v) = %v", c.vs, got)
		}
	}
}

// FuzzParams feeds the request parameter parsers arbitrary text: they
// must answer with a value or an error, never panic.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"1700000000", "1700000000.5", "2024-06-01T12:00:00.000Z", "15000ms", "-5s", "1e400", "", "10GB", "-1", "5m30s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tm, err := ParseTime("start", s, time.Time{}); err == nil && s == "" && !tm.IsZero() {
			t.Fatalf("empty time gave %v", tm)
		}
		if d, err := parseStep(s); err == nil && d <= 0 {
			t.Fatalf("step %q accepted as %v", s, d)
		}
		if d, err := ParseDuration("since", s); err == nil && d < 0 {
			t.Fatalf("duration %q accepted as %v", s, d)
		}
		var b Bytes
		_ = b.UnmarshalText([]byte(s))
		if _, err := strconv.Atoi(s); err == nil {
			_, _ = selectors(s)
		}
	})
}

// FuzzFieldSampler runs field detection over arbitrary lines and
// metadata: it must not panic, and every field it reports must have a
// valid label name and a known type.
func FuzzFieldSampler(f *testing.F) {
	f.Add(`{"a":{"b":1},"c":"x","d":[1,2],"e":null,"f":true}`, "k", "v")
	f.Add(`level=info msg="hi there" n=5 d=10ms`, "trace_id", "abc")
	f.Add(`{"1":{"é":2}}`, "", "")
	f.Add(`a="unterminated b=`, "x", "")
	f.Fuzz(func(t *testing.T, line, mdName, mdValue string) {
		fs := newFieldSampler("")
		var md labels.Labels
		if labels.ValidName(mdName) {
			md = labels.New(mdName, mdValue)
		}
		fs.entry(labels.New("app", "x"), query.Entry{Line: []byte(line), Metadata: md})
		for name, fl := range fs.fields {
			if !labels.ValidName(name) {
				t.Fatalf("invalid field name %q from %q", name, line)
			}
			switch fl.Type {
			case "int", "float", "boolean", "duration", "bytes", "string":
			default:
				t.Fatalf("field %s has type %q", name, fl.Type)
			}
		}
	})
}
