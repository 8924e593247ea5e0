package provisioning

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/provisioning/internal/harness"
)

// threshold is a Grafana server-side threshold expression.
type threshold struct {
	kind   string
	params []float64
}

func parseThreshold(model map[string]any) (threshold, error) {
	if model["type"] != "threshold" {
		return threshold{}, fmt.Errorf("expression type %v: only threshold is used (and evaluated here)", model["type"])
	}
	conds, _ := model["conditions"].([]any)
	if len(conds) != 1 {
		return threshold{}, fmt.Errorf("want one threshold condition, have %d", len(conds))
	}
	c, _ := conds[0].(map[string]any)
	ev, _ := c["evaluator"].(map[string]any)
	th := threshold{}
	th.kind, _ = ev["type"].(string)
	ps, _ := ev["params"].([]any)
	for _, p := range ps {
		switch v := p.(type) {
		case int:
			th.params = append(th.params, float64(v))
		case float64:
			th.params = append(th.params, v)
		default:
			return threshold{}, fmt.Errorf("threshold parameter %v (%T) is not a number", p, p)
		}
	}
	want := map[string]int{"gt": 1, "lt": 1, "within_range": 2, "outside_range": 2}
	if n, ok := want[th.kind]; !ok || len(th.params) < n {
		return threshold{}, fmt.Errorf("threshold %q with %d parameters: use gt, lt, within_range or outside_range", th.kind, len(th.params))
	}
	return th, nil
}

// holds is Grafana's threshold evaluator.
func (th threshold) holds(v float64) bool {
	switch th.kind {
	case "gt":
		return v > th.params[0]
	case "lt":
		return v < th.params[0]
	case "within_range":
		return v > th.params[0] && v < th.params[1]
	case "outside_range":
		return v < th.params[0] || v > th.params[1]
	}
	return false
}

// series is one dimension of a rule's query answer.
type series struct {
	labels map[string]string
	value  float64
}

func key(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s,", n, ls[n])
	}
	return b.String()
}

// Alert states, as Grafana names them.
const (
	normal   = "Normal"
	pending  = "Pending"
	alerting = "Alerting"
)

// tracker applies Grafana's state rules for one alert rule over
// successive evaluations: a series whose condition holds goes Pending, and
// Alerting once it has held for the rule's `for`; one whose condition no
// longer holds, or which disappeared (no data, noDataState OK), is Normal
// again (resolved).
type tracker struct {
	forDur time.Duration
	th     threshold
	since  map[string]time.Time
	state  map[string]string
}

func newTracker(t *testing.T, r rule) *tracker {
	t.Helper()
	if r.NoDataState != "OK" {
		t.Fatalf("rule %s: noDataState %s; this test models OK only", r.UID, r.NoDataState)
	}
	model, _, err := r.query(r.Condition)
	if err != nil {
		t.Fatal(err)
	}
	th, err := parseThreshold(model)
	if err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(r.For)
	if err != nil {
		t.Fatal(err)
	}
	return &tracker{forDur: d, th: th, since: map[string]time.Time{}, state: map[string]string{}}
}

// step records one evaluation at `at` and returns every known series'
// state afterwards.
func (tr *tracker) step(at time.Time, answer []series) map[string]string {
	holding := map[string]bool{}
	for _, s := range answer {
		k := key(s.labels)
		if !tr.th.holds(s.value) {
			continue
		}
		holding[k] = true
		if _, ok := tr.since[k]; !ok {
			tr.since[k] = at
		}
		if at.Sub(tr.since[k]) >= tr.forDur {
			tr.state[k] = alerting
		} else {
			tr.state[k] = pending
		}
	}
	for k := range tr.state {
		if !holding[k] {
			tr.state[k] = normal
			delete(tr.since, k)
		}
	}
	out := make(map[string]string, len(tr.state))
	for k, v := range tr.state {
		out[k] = v
	}
	return out
}

// evalLogsift runs a rule's logsift query through the plugin backend as
// Grafana's alerting engine does at time `at`: the FromAlert header, the
// query model as stored, the rule's relative time range ending at `at`.
func evalLogsift(t *testing.T, env *harness.Env, r rule, refID string, at time.Time) []series {
	t.Helper()
	model, _, err := r.query(refID)
	if err != nil {
		t.Fatal(err)
	}
	var from int
	for _, d := range r.Data {
		if d.RefID == refID {
			from = d.RelativeTimeRange.From
		}
	}
	b, err := json.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	resp := env.Query(t, b, at.Add(-time.Duration(from)*time.Second), at, 0, true)
	if resp.Error != nil {
		t.Fatalf("rule %s at %s: %v", r.UID, at.Format(time.TimeOnly), resp.Error)
	}
	var out []series
	for _, f := range resp.Frames {
		if f.Meta != nil && f.Meta.Type != data.FrameTypeNumericMulti && f.Meta.Type != data.FrameTypeNumericWide && f.Meta.Type != data.FrameTypeNumericLong {
			t.Fatalf("rule %s: the plugin answered a %s frame to an alert query; a threshold needs numeric frames", r.UID, f.Meta.Type)
		}
		for _, fld := range f.Fields {
			if fld.Type() != data.FieldTypeFloat64 && fld.Type() != data.FieldTypeNullableFloat64 {
				continue
			}
			if fld.Len() == 0 {
				continue
			}
			v, ok := fld.ConcreteAt(fld.Len() - 1)
			if !ok {
				continue
			}
			out = append(out, series{labels: map[string]string(fld.Labels), value: v.(float64)})
		}
	}
	return out
}

// linesAt builds entries at start, start+every, ... below end.
func linesAt(start, end time.Time, every time.Duration, line func(i int) string) []chunk.Entry {
	var es []chunk.Entry
	for i, ts := 0, start; ts.Before(end); i, ts = i+1, ts.Add(every) {
		es = append(es, chunk.Entry{Timestamp: ts.UnixNano(), Line: []byte(line(i))})
	}
	return es
}

func TestRuleErrorLinesPerService(t *testing.T) {
	r := findRule(t, "logsift-error-lines-per-service")
	env := harness.Start(t, logsiftJSONData(t))
	tr := newTracker(t, r)
	// Grafana evaluates every minute; the history starts half an hour ago
	// so that every evaluation time is in the past of the server's clock.
	t0 := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	payments := labels.New("service_name", "payments", "host", "pay-1")
	api := labels.New("service_name", "api", "host", "api-1")
	want := map[int]string{3: normal, 4: pending, 5: pending, 6: alerting, 7: alerting, 8: normal, 9: normal}
	for minute := 1; minute <= 9; minute++ {
		from, to := t0.Add(time.Duration(minute-1)*time.Minute), t0.Add(time.Duration(minute)*time.Minute)
		// payments: info lines all along, and 100 error lines a minute
		// during minutes 4 to 7 (over the threshold of 50); api: 10 error
		// lines a minute all along (under it). Offsets keep lines off
		// the window boundaries.
		pay := linesAt(from.Add(300*time.Millisecond), to, 2*time.Second, func(i int) string {
			return fmt.Sprintf("level=info msg=\"charge ok\" id=%d", i)
		})
		if minute >= 4 && minute <= 7 {
			pay = append(pay, linesAt(from.Add(200*time.Millisecond), to, 600*time.Millisecond, func(i int) string {
				return fmt.Sprintf("level=error msg=\"card processor timeout\" attempt=%d", i)
			})...)
			sort.Slice(pay, func(i, j int) bool { return pay[i].Timestamp < pay[j].Timestamp })
		}
		apiLines := linesAt(from.Add(500*time.Millisecond), to, 6*time.Second, func(i int) string {
			return fmt.Sprintf("level=error msg=\"upstream 502\" n=%d", i)
		})
		env.Push(t, []lokiclient.Stream{{Labels: payments, Entries: pay}, {Labels: api, Entries: apiLines}})

		states := tr.step(to, evalLogsift(t, env, r, "A", to))
		got := states[key(map[string]string{"service_name": "payments"})]
		if got == "" {
			got = normal
		}
		if w, ok := want[minute]; ok && got != w {
			t.Errorf("minute %d: payments is %s, want %s (states %v)", minute, got, w, states)
		}
		if s := states[key(map[string]string{"service_name": "api"})]; s != "" && s != normal {
			t.Errorf("minute %d: api (10 errors a minute) is %s, want Normal", minute, s)
		}
	}
	// The value an alert notification would show.
	at := t0.Add(6 * time.Minute)
	for _, s := range evalLogsift(t, env, r, "A", at) {
		if s.labels["service_name"] == "payments" && s.value != 100 {
			t.Errorf("payments at minute 6: %v error lines in the last minute, want 100", s.value)
		}
	}
}

func TestRuleAgentStoppedShipping(t *testing.T) {
	r := findRule(t, "logsift-agent-stopped-shipping")
	env := harness.Start(t, logsiftJSONData(t))
	tr := newTracker(t, r)
	t0 := time.Now().Add(-40 * time.Minute).Truncate(time.Minute)
	web1 := labels.New("host", "web-1", "job", "varlog", "filename", "/var/log/app.log")
	web2 := labels.New("host", "web-2", "job", "varlog", "filename", "/var/log/app.log")
	// Before any agent shipped: no data, which the rule treats as OK.
	if got := tr.step(t0, evalLogsift(t, env, r, "A", t0)); len(got) != 0 {
		t.Fatalf("no data yet, but states %v", got)
	}
	// web-2 ships until minute 10, stops, and comes back at minute 17;
	// web-1 ships all along.
	want := map[int]string{10: normal, 14: normal, 15: pending, 16: alerting, 17: alerting, 18: normal, 20: normal}
	for minute := 1; minute <= 20; minute++ {
		from, to := t0.Add(time.Duration(minute-1)*time.Minute), t0.Add(time.Duration(minute)*time.Minute)
		line := func(i int) string { return fmt.Sprintf("GET /health 200 %d", i) }
		streams := []lokiclient.Stream{{Labels: web1, Entries: linesAt(from.Add(5*time.Second), to, 10*time.Second, line)}}
		if minute <= 10 || minute >= 18 {
			streams = append(streams, lokiclient.Stream{Labels: web2, Entries: linesAt(from.Add(5*time.Second), to, 10*time.Second, line)})
		}
		env.Push(t, streams)
		states := tr.step(to, evalLogsift(t, env, r, "A", to))
		got := states[key(map[string]string{"host": "web-2"})]
		if got == "" {
			got = normal
		}
		if w, ok := want[minute]; ok && got != w {
			t.Errorf("minute %d: web-2 is %s, want %s (states %v)", minute, got, w, states)
		}
		if s := states[key(map[string]string{"host": "web-1"})]; s != "" && s != normal {
			t.Errorf("minute %d: web-1 (shipping all along) is %s", minute, s)
		}
	}
}

// shortWindows rewrites the 5m windows of the ingest rule to 10s: Prometheus
// scrapes in real time, and a test cannot wait five minutes for a
// rejection to leave the window. Nothing else in the expression changes.
var fiveMinutes = regexp.MustCompile(`\b5m\b`)

func TestRuleIngestRejections(t *testing.T) {
	r := findRule(t, "logsift-ingest-rejections")
	model, dsUID, err := r.query("A")
	if err != nil {
		t.Fatal(err)
	}
	if dsUID != "logsift-prometheus" {
		t.Fatalf("rule %s queries %s; this test evaluates it on Prometheus", r.UID, dsUID)
	}
	expr, _ := model["expr"].(string)
	if !fiveMinutes.MatchString(expr) {
		t.Fatalf("the rule's windows changed (%s): update the test's rewrite", expr)
	}
	expr = fiveMinutes.ReplaceAllString(expr, "10s")

	env := harness.Start(t, logsiftJSONData(t))
	prom := harness.StartPrometheus(t, map[string]string{"logsift": strings.TrimPrefix(env.URL, "http://")})
	tr := newTracker(t, r)
	ctx := context.Background()
	eval := func(step string) map[string]string {
		t.Helper()
		now := time.Now()
		samples, err := prom.Query(ctx, expr, now)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var ss []series
		for _, s := range samples {
			ss = append(ss, series{labels: s.Labels, value: s.Value})
		}
		return tr.step(now, ss)
	}
	rejected := key(map[string]string{"tenant": "fake", "reason": "line_too_long"})

	// Good data only: nothing rejected.
	env.Push(t, []lokiclient.Stream{{Labels: labels.New("job", "ok"), Entries: []chunk.Entry{{Timestamp: time.Now().UnixNano(), Line: []byte("fine")}}}})
	prom.WaitScrapes(t, "logsift", 2)
	if st := eval("before any rejection"); st[rejected] != "" && st[rejected] != normal {
		t.Fatalf("before any rejection: %v", st)
	}

	// A line over max_line_size (256 KiB): the server drops it and
	// counts it under reason line_too_long; the first rejection the
	// server ever makes must fire.
	long := strings.Repeat("x", 300<<10)
	err = env.Client.Push(ctx, []lokiclient.Stream{{Labels: labels.New("job", "bad"), Entries: []chunk.Entry{{Timestamp: time.Now().UnixNano(), Line: []byte(long)}}}})
	t.Logf("push of a 300 KiB line: %v", err)
	prom.WaitScrapes(t, "logsift", 2)
	if st := eval("after the first rejection"); st[rejected] != alerting {
		t.Fatalf("after a line_too_long rejection the rule is %q, want Alerting (states %v)", st[rejected], st)
	}

	// Another one later keeps it firing (the increase() arm).
	time.Sleep(3 * time.Second)
	_ = env.Client.Push(ctx, []lokiclient.Stream{{Labels: labels.New("job", "bad"), Entries: []chunk.Entry{{Timestamp: time.Now().UnixNano(), Line: []byte(long)}}}})
	prom.WaitScrapes(t, "logsift", 2)
	if st := eval("after the second rejection"); st[rejected] != alerting {
		t.Fatalf("after a second rejection the rule is %q, want Alerting", st[rejected])
	}

	// Good data only, for longer than the window: resolved.
	deadline := time.Now().Add(11 * time.Second)
	for time.Now().Before(deadline) {
		env.Push(t, []lokiclient.Stream{{Labels: labels.New("job", "ok"), Entries: []chunk.Entry{{Timestamp: time.Now().UnixNano(), Line: []byte("fine again")}}}})
		time.Sleep(time.Second)
	}
	prom.WaitScrapes(t, "logsift", 2)
	if st := eval("after the window passed"); st[rejected] != normal {
		t.Fatalf("with no rejection in the window the rule is %q, want Normal (resolved)", st[rejected])
	}
}
