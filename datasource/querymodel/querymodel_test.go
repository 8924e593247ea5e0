package querymodel

import (
	"strings"
	"testing"
	"time"
)

var (
	t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(6 * time.Hour)
)

func build(t *testing.T, js string, mod func(*Input)) Request {
	t.Helper()
	in := Input{JSON: []byte(js), From: t0, To: t1, Interval: 30 * time.Second, MaxDataPoints: 720, DefaultMaxLines: 500}
	if mod != nil {
		mod(&in)
	}
	r, err := Build(in)
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return r
}

func TestInterpolate(t *testing.T) {
	v := Vars{Interval: 30 * time.Second, Range: 6 * time.Hour, Step: time.Minute, From: t0, To: t1, Type: TypeRange}
	got := Interpolate(`rate({a="b"}[$__interval]) $__interval_ms ${__interval} $__range $__range_s $__range_ms [$__auto] $__from ${__to} $other`, v)
	want := `rate({a="b"}[30s]) 30000 30s 21600s 21600 21600000 [1m] 1714564800000 1714586400000 $other`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	v.Type = TypeInstant
	if got := Interpolate(`count_over_time({a="b"}[$__auto])`, v); got != `count_over_time({a="b"}[21600s])` {
		t.Errorf("instant $__auto: %s", got)
	}
}

func TestStep(t *testing.T) {
	cases := []struct {
		interval, rng time.Duration
		res           int
		q             string
		want          time.Duration
	}{
		{30 * time.Second, time.Hour, 1, "", 30 * time.Second},
		{30 * time.Second, time.Hour, 2, "", time.Minute},
		{30 * time.Second, time.Hour, 1, "5m", 5 * time.Minute},
		{30 * time.Second, time.Hour, 1, "$__interval", 30 * time.Second},
		{30 * time.Second, time.Hour, 1, "90", 90 * time.Second},
		// 30 days at 1s would be 2.6 million points: the step grows to
		// keep a series under 11,000.
		{time.Second, 30 * 24 * time.Hour, 1, "", 235658 * time.Millisecond},
	}
	for _, c := range cases {
		got, err := step(c.interval, c.rng, c.res, c.q)
		if err != nil || got != c.want {
			t.Errorf("step(%v, %v, %d, %q) = %v, %v; want %v", c.interval, c.rng, c.res, c.q, got, err, c.want)
		}
		if n := int64(c.rng/got) + 1; n > maxPoints {
			t.Errorf("step %v gives %d points over %v", got, n, c.rng)
		}
	}
	for _, q := range []string{"x", "-5s", "0"} {
		if _, err := step(time.Second, time.Hour, 1, q); err == nil {
			t.Errorf("step %q: no error", q)
		}
	}
}

func TestBuildTypes(t *testing.T) {
	r := build(t, `{"refId":"A","expr":"{job=\"app\"} |= \"err\""}`, nil)
	if r.Metric || r.Type != TypeRange || r.Limit != 500 || r.Direction != Backward || r.Expr != `{job="app"} |= "err"` {
		t.Errorf("log query: %+v", r)
	}
	// A log query asked as instant runs as range: the server refuses
	// instant log queries.
	r = build(t, `{"expr":"{job=\"app\"}","queryType":"instant","maxLines":20,"direction":"forward"}`, nil)
	if r.Type != TypeRange || r.Limit != 20 || r.Direction != Forward {
		t.Errorf("instant log query: %+v", r)
	}
	r = build(t, `{"expr":"sum(rate({job=\"app\"}[$__auto]))"}`, nil)
	if !r.Metric || r.Type != TypeRange || r.Step != 30*time.Second || r.Expr != `sum(rate({job="app"}[30s]))` {
		t.Errorf("metric range: %+v", r)
	}
}

func TestBuildFormat(t *testing.T) {
	for js, table := range map[string]bool{
		`{"expr":"count_over_time({a=\"b\"}[1m])"}`:                        false,
		`{"expr":"count_over_time({a=\"b\"}[1m])","format":"time_series"}`: false,
		`{"expr":"count_over_time({a=\"b\"}[1m])","format":"table"}`:       true,
	} {
		if r := build(t, js, nil); r.Table != table {
			t.Errorf("%s: table %v, want %v", js, r.Table, table)
		}
	}
}

func TestBuildAlert(t *testing.T) {
	// An alert rule's query: no frontend touched it, Grafana passes its
	// own interval, and an empty query type means instant.
	r := build(t, `{"refId":"A","expr":"sum(count_over_time({job=\"app\"} |= \"error\" [$__auto])) > $__interval_ms"}`, func(in *Input) {
		in.FromAlert = true
		in.From, in.To = t1.Add(-5*time.Minute), t1
		in.Interval = time.Second
		in.MaxDataPoints = 43200
	})
	if r.Type != TypeInstant || !r.Metric {
		t.Fatalf("alert: %+v", r)
	}
	if want := `sum(count_over_time({job="app"} |= "error" [300s])) > 1000`; r.Expr != want {
		t.Errorf("alert expr %s, want %s", r.Expr, want)
	}
	// An explicit range query type stays range, and $__auto is the step.
	r = build(t, `{"expr":"count_over_time({job=\"app\"}[$__auto])","queryType":"range"}`, func(in *Input) { in.FromAlert = true })
	if r.Type != TypeRange || r.Expr != `count_over_time({job="app"}[30s])` {
		t.Errorf("alert range: %+v", r)
	}
	// Without Grafana's interval it is derived from the range.
	r = build(t, `{"expr":"count_over_time({job=\"app\"}[$__interval])"}`, func(in *Input) { in.FromAlert, in.Interval = true, 0 })
	if r.Interval != 30*time.Second || r.Expr != `count_over_time({job="app"}[30s])` {
		t.Errorf("derived interval: %v %s", r.Interval, r.Expr)
	}
}

func TestBuildWorkspace(t *testing.T) {
	r := build(t, `{"expr":"sum by (host) (rate({job=\"app\"} |= \"x\" [5m])) / sum(rate({job=~\"a.*\", workspace=\"w 1\"}[5m]))","workspace":"w 1"}`, nil)
	want := `sum by (host) (rate({job="app", workspace="w 1"} |= "x" [5m])) / sum(rate({job=~"a.*", workspace="w 1"}[5m]))`
	if r.Expr != want {
		t.Errorf("got  %s\nwant %s", r.Expr, want)
	}
	if _, err := Build(Input{JSON: []byte(`{"expr":"{job=","workspace":"w"}`), From: t0, To: t1}); err == nil || !strings.Contains(err.Error(), "workspace") {
		t.Errorf("unparsable query with workspace: %v", err)
	}
	if _, err := Build(Input{JSON: []byte(`{"expr":"{a=\"b\"}","workspace":"a\nb"}`), From: t0, To: t1}); err == nil {
		t.Error("workspace with a line break accepted")
	}
}

func TestBuildSupporting(t *testing.T) {
	r := build(t, `{"expr":"{job=\"app\"} |= \"x\"","supportingQueryType":"logsVolume"}`, nil)
	if !r.Metric || r.Type != TypeRange || r.Expr != `sum by (detected_level) (count_over_time({job="app"} |= "x" [30s]))` || r.LegendFormat != "{{detected_level}}" {
		t.Errorf("volume: %+v", r)
	}
	r = build(t, `{"expr":"sum by (detected_level) (count_over_time({job=\"app\"}[1m]))","supportingQueryType":"logsVolume"}`, nil)
	if r.Expr != `sum by (detected_level) (count_over_time({job="app"}[1m]))` {
		t.Errorf("volume of a volume query: %s", r.Expr)
	}
	r = build(t, `{"expr":"sum(rate({job=\"app\"} | logfmt | status >= 500 [5m]))","supportingQueryType":"logsSample","workspace":"w"}`, nil)
	if r.Metric || r.Type != TypeRange || r.Limit != 100 || r.Expr != `{job="app", workspace="w"} | logfmt | status >= 500` {
		t.Errorf("sample: %+v", r)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, js := range []string{
		`{`, `{"expr":"{a=\"b\"}","queryType":"table"}`, `{"expr":"{a=\"b\"}","direction":"up"}`,
		`{"expr":"{a=\"b\"}","maxLines":-1}`, `{"expr":"{a=\"b\"}","maxLines":100000000}`,
		`{"expr":"{a=\"b\"}","resolution":1000}`, `{"expr":"{a=\"b\"}","supportingQueryType":"x"}`,
		`{"expr":"rate({a=\"b\"}[1m])","queryType":"stream"}`, `{"expr":"{a=\"b\"}","step":"soon"}`,
		`{"expr":"count_over_time({a=\"b\"}[1m])","format":"heatmap"}`,
	} {
		if _, err := Build(Input{JSON: []byte(js), From: t0, To: t1}); err == nil {
			t.Errorf("%s: no error", js)
		}
	}
	if _, err := Build(Input{JSON: []byte(`{"expr":"  "}`), From: t0, To: t1}); err != ErrEmptyQuery {
		t.Errorf("empty query: %v", err)
	}
	if _, err := Build(Input{JSON: []byte(`{"expr":"{a=\"b\"}"}`), From: t1, To: t0}); err == nil {
		t.Error("reversed range accepted")
	}
}

func TestRoundInterval(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0: time.Millisecond, 7 * time.Second: 5 * time.Second, 8 * time.Second: 10 * time.Second,
		40 * time.Second: 30 * time.Second, 50 * time.Second: time.Minute, 1000 * time.Hour: 30 * 24 * time.Hour,
	} {
		if got := roundInterval(in); got != want {
			t.Errorf("roundInterval(%v) = %v, want %v", in, got, want)
		}
	}
}

func FuzzBuild(f *testing.F) {
	f.Add([]byte(`{"expr":"sum(rate({a=\"b\"}[$__auto]))","workspace":"w"}`), true)
	f.Add([]byte(`{"expr":"{a=\"b\"} |= \"x\"","supportingQueryType":"logsVolume","step":"$__interval","resolution":2}`), false)
	f.Add([]byte(`{"expr":"rate({a=\"b\"}[1m])","supportingQueryType":"logsSample"}`), false)
	f.Fuzz(func(t *testing.T, js []byte, alert bool) {
		r, err := Build(Input{JSON: js, From: t0, To: t1, FromAlert: alert})
		if err != nil {
			return
		}
		if r.Step <= 0 || r.Limit <= 0 || r.Expr == "" {
			t.Fatalf("bad request %+v", r)
		}
		if r.Type != TypeRange && r.Type != TypeInstant && r.Type != TypeStream {
			t.Fatalf("type %q", r.Type)
		}
	})
}

func TestUnresolvedVariable(t *testing.T) {
	for expr, want := range map[string]string{
		`{job="$job"} |= "x"`:                        "", // inside a string: the server's business
		`{job=~"a|b"} |~ "cost \\$[0-9]+"`:           "",
		"{job=\"a\"} |~ `$end`":                      "",
		`sum(rate({job=$job}[5m]))`:                  "$job",
		`sum by (${group}) (rate({job="a"}[5m]))`:    "${group}",
		`rate({job="a"}[[[interval]]])`:              "[[interval]]",
		`rate({job="a"}[5m]) > $threshold`:           "$threshold",
		`{job="a", host="\"quoted\""} != "$x" |= $y`: "$y",
	} {
		if got := UnresolvedVariable(expr); got != want {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
	// An alert rule with a dashboard variable gets told so, not a parse
	// error from the server.
	_, err := Build(Input{JSON: []byte(`{"expr":"sum(count_over_time({job=$job}[$__auto]))"}`), From: t0, To: t1, FromAlert: true})
	if err == nil || !strings.Contains(err.Error(), "uses the variable $job, which only a dashboard can replace") {
		t.Errorf("unresolved variable: %v", err)
	}
	// Built-in variables are resolved, so nothing is left.
	if _, err := Build(Input{JSON: []byte(`{"expr":"sum(count_over_time({job=\"a\"}[${__range}])) > $__interval_ms"}`), From: t0, To: t1, FromAlert: true}); err != nil {
		t.Errorf("built-in variables: %v", err)
	}
}

func TestBuildImports(t *testing.T) {
	r := build(t, `{"refId":"P","queryType":"imports","workspace":" case-1 ","expr":"ignored {"}`, nil)
	if r.Type != TypeImports || r.Workspace != "case-1" || r.RefID != "P" || !r.Start.Equal(t0) || !r.End.Equal(t1) || r.Expr != "" {
		t.Errorf("imports request %+v", r)
	}
	if r := build(t, `{"queryType":"imports"}`, func(in *Input) { in.FromAlert = true }); r.Type != TypeImports || r.Workspace != "" {
		t.Errorf("imports without a workspace, from an alert rule: %+v", r)
	}
	for js, msg := range map[string]string{
		`{"queryType":"imports","workspace":"a\u0007b"}`: "not a valid workspace name",
	} {
		if _, err := Build(Input{JSON: []byte(js), From: t0, To: t1}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", js, err, msg)
		}
	}
	if _, err := Build(Input{JSON: []byte(`{"queryType":"imports"}`), From: t1, To: t0}); err == nil || !strings.Contains(err.Error(), "before it starts") {
		t.Errorf("reversed range: %v", err)
	}
}
