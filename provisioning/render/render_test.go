package render_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/provisioning/render"
)

func TestInterpolate(t *testing.T) {
	vars := []render.Variable{
		{Name: "service", Multi: true, IncludeAll: true, AllValue: ".+"},
		{Name: "workspace", IncludeAll: true},
		{Name: "search", Type: "textbox"},
	}
	for _, c := range []struct {
		expr   string
		values map[string]render.Value
		want   string
	}{
		{`{service_name=~"$service"}`, map[string]render.Value{"service": {All: true}}, `{service_name=~".+"}`},
		{`{service_name=~"${service}"}`, map[string]render.Value{"service": {Values: []string{"api", "web.1"}}}, `{service_name=~"api|web\\.1"}`},
		{`{service_name=~"[[service]]"}`, map[string]render.Value{"service": {Values: []string{"a(b)"}}}, `{service_name=~"a\\(b\\)"}`},
		{`{workspace=~"$workspace"}`, map[string]render.Value{"workspace": {Values: []string{"case-1"}}}, `{workspace=~"case-1"}`},
		{`{a="b"} |= "$search"`, map[string]render.Value{"search": {Values: []string{`say "hi"\`}}}, `{a="b"} |= "say \"hi\"\\"`},
		{`{a="b"} |= "$search"`, map[string]render.Value{"search": {Values: []string{""}}}, `{a="b"} |= ""`},
		{`count_over_time({a="b"}[$__auto]) / $__range`, nil, `count_over_time({a="b"}[$__auto]) / $__range`},
	} {
		got, err := render.Interpolate(c.expr, vars, c.values)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
		}
		if got != c.want {
			t.Errorf("Interpolate(%s) = %s, want %s", c.expr, got, c.want)
		}
	}
	if _, err := render.Interpolate(`{a="$nope"}`, vars, nil); err == nil {
		t.Error("a variable without a value was written in silently")
	}
}

func TestIntervalsAndLayout(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r, err := render.Resolve("now-1h", "now", now)
	if err != nil {
		t.Fatal(err)
	}
	if !r.To.Equal(now) || r.To.Sub(r.From) != time.Hour {
		t.Fatalf("now-1h to now at %s resolved to %s - %s", now, r.From, r.To)
	}
	if _, err := render.Resolve("now", "now-1h", now); err == nil {
		t.Error("an empty range was accepted")
	}
	// A full-width panel on a 1600-pixel page: 1568 pixels, so one hour
	// over 1568 points is 2.3 s, which Grafana rounds to 2 s.
	l := render.DefaultLayout
	if w := l.PanelWidth(24); w != 1568 {
		t.Errorf("24 columns = %d px, want 1568", w)
	}
	if w12, w24 := l.PanelWidth(12), l.PanelWidth(24); 2*w12+l.Margin != w24 {
		t.Errorf("two 12-column panels and a margin (%d) are not a 24-column one (%d)", 2*w12+l.Margin, w24)
	}
	if iv := render.Interval(r, 1568, 0); iv != 2*time.Second {
		t.Errorf("interval = %s, want 2s", iv)
	}
	if iv := render.Interval(r, 1568, 5*time.Second); iv != 5*time.Second {
		t.Errorf("interval with a 5s minimum = %s, want 5s", iv)
	}
	p := render.Panel{ID: 1, TimeFrom: "30d"}
	pr, err := render.PanelRange(p, r)
	if err != nil || pr.To.Sub(pr.From) != 30*24*time.Hour || !pr.To.Equal(now) {
		t.Errorf("timeFrom 30d: %s - %s, %v", pr.From, pr.To, err)
	}
}

func TestPromQuery(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
	r, _ := render.Resolve("now-5m", "now", now)
	rangeTrue := true
	tg := render.Target{RefID: "A", Expr: `sum(rate(x[$__rate_interval])) + sum(increase(y[$__range])) + $__interval_ms`, Legend: "{{route}} {{code}}", Range: &rangeTrue}
	q := render.NewPromQuery(tg, r, 5*time.Second, 780, 5*time.Second)
	// rate interval: max(5s + 5s, 4 * 5s) = 20s; the step: 300s/780
	// rounds to 500ms, raised to the 5s interval.
	if want := `sum(rate(x[20s])) + sum(increase(y[300s])) + 5000`; q.Expr != want {
		t.Errorf("expr = %s, want %s", q.Expr, want)
	}
	if q.Step != 5*time.Second || q.Start.UnixNano()%int64(5*time.Second) != 0 || q.End.After(now) || now.Sub(q.End) >= 5*time.Second {
		t.Errorf("step %s, range %s - %s not aligned to it", q.Step, q.Start, q.End)
	}

	body := `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"route":"/q","code":"500"},"values":[[1767322800,"1"],[1767322805,"NaN"]]},
		{"metric":{"__name__":"up","job":"x"},"values":[[1767322800,"2"]]}]}}`
	res, err := q.Frames(200, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Frames) != 2 {
		t.Fatalf("%d frames, want 2", len(res.Frames))
	}
	v := res.Frames[0].Fields[1]
	if v.Name != "Value" || v.Config.DisplayNameFromDS != "/q 500" || v.Len() != 2 || v.Labels["code"] != "500" {
		t.Errorf("first series: name %s, display %q, %d values, labels %v", v.Name, v.Config.DisplayNameFromDS, v.Len(), v.Labels)
	}
	if n := res.Frames[1].Fields[1].Name; n != "up" {
		t.Errorf("a series with a metric name has its value field named %s, want up", n)
	}
	if res.Frames[0].Meta.Type != data.FrameTypeTimeSeriesMulti || !strings.Contains(res.Frames[0].Meta.ExecutedQueryString, "Step: 5s") {
		t.Errorf("meta %+v", res.Frames[0].Meta)
	}

	empty, err := q.Frames(200, []byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	if err != nil || len(empty.Frames) != 1 || empty.Frames[0].Rows() != 0 {
		t.Errorf("no series: %d frames, %v; want one empty frame", len(empty.Frames), err)
	}
	refused, err := q.Frames(400, []byte(`{"status":"error","errorType":"bad_data","error":"parse error"}`))
	if err != nil || refused.Error == nil || !strings.Contains(refused.Error.Error(), "parse error") {
		t.Errorf("a refused query: %v, %v", refused.Error, err)
	}
	if _, err := q.Frames(502, []byte(`<html>bad gateway`)); err == nil {
		t.Error("an answer that is not JSON was accepted")
	}
}

func TestTrimLogs(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ts []time.Time
	var body []string
	for i := 0; i < 10; i++ {
		ts = append(ts, base.Add(time.Duration(9-i)*time.Second)) // newest first, as the backend answers
		body = append(body, string(rune('a'+9-i)))
	}
	f := data.NewFrame("", data.NewField("timestamp", nil, ts), data.NewField("body", nil, body))
	f.RefID = "A"
	f.Meta = &data.FrameMeta{Type: data.FrameTypeLogLines}
	metric := data.NewFrame("", data.NewField("Time", nil, ts), data.NewField("Value", nil, make([]float64, 10)))

	for order, want := range map[string]string{"Ascending": "abc", "Descending": "jih"} {
		out, notes, err := render.TrimLogs(data.Frames{f, metric}, 3, order)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for i := 0; i < out[0].Rows(); i++ {
			got += out[0].Fields[1].At(i).(string)
		}
		if got != want || len(notes) != 1 || out[1].Rows() != 10 {
			t.Errorf("%s: kept %q (want %q), notes %v, metric frame %d rows", order, got, want, notes, out[1].Rows())
		}
	}
}

func TestDriftAndEncode(t *testing.T) {
	dash := []byte(`{"uid":"u","title":"T","time":{"from":"now-1h","to":"now"},"panels":[
		{"id":1,"type":"row","title":"Row","gridPos":{"h":1,"w":24,"x":0,"y":0}},
		{"id":2,"type":"stat","title":"Lines","description":"old words","gridPos":{"h":4,"w":4,"x":0,"y":1},
		 "targets":[{"refId":"A","expr":"sum(x)","datasource":{"type":"logsift-datasource","uid":"logsift"}}]}]}`)
	d, err := render.ParseDashboard(dash)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) != 2 || len(d.Panels[1].Targets) != 1 || d.Panels[1].Targets[0].Datasource.UID != "logsift" {
		t.Fatalf("parsed %+v", d)
	}
	f := render.Fixture{UID: "u", Panels: []render.FixturePanel{{Panel: d.Panels[0].Raw}, {Panel: d.Panels[1].Raw}}}
	if drift, err := render.Drift(f, d); err != nil || len(drift) != 0 {
		t.Errorf("identical panels drift: %v %v", drift, err)
	}
	reworded, _ := render.ParseDashboard([]byte(strings.Replace(string(dash), "old words", "new words", 1)))
	if drift, _ := render.Drift(f, reworded); len(drift) != 0 {
		t.Errorf("a new description counts as drift: %v", drift)
	}
	retitled, _ := render.ParseDashboard([]byte(strings.Replace(string(dash), `"Lines"`, `"Entries"`, 1)))
	if drift, _ := render.Drift(f, retitled); len(drift) != 1 {
		t.Errorf("a new title is not drift: %v", drift)
	}

	q, err := render.QueryModel(d.Panels[1].Targets[0], "sum(y)", 2000, 254)
	if err != nil {
		t.Fatal(err)
	}
	resp := backend.NewQueryDataResponse()
	resp.Responses["A"] = backend.DataResponse{Frames: data.Frames{data.NewFrame("", data.NewField("Value", nil, []float64{1}))}}
	f.Panels[1].Request = &render.Request{IntervalMs: 2000, MaxDataPoints: 254, Queries: []json.RawMessage{q}}
	f.Panels[1].Response = resp
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var back render.Fixture
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("the encoded fixture does not decode: %v\n%s", err, b)
	}
	if len(back.Panels) != 2 || back.Variables == nil || back.Panels[1].Response.Responses["A"].Frames[0].Rows() != 1 {
		t.Errorf("round trip lost something: %s", b)
	}
	var model map[string]any
	_ = json.Unmarshal(back.Panels[1].Request.Queries[0], &model)
	if model["expr"] != "sum(y)" || model["intervalMs"] != float64(2000) || model["maxDataPoints"] != float64(254) {
		t.Errorf("query model %v", model)
	}
	if lines := strings.Count(string(b), "\n"); lines > 40 {
		t.Errorf("the fixture takes %d lines; panels should take one each", lines)
	}
}
