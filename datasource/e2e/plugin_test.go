package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/logsift/logsift/pkg/labels"
)

func TestCheckHealth(t *testing.T) {
	ctx := context.Background()
	res, err := h.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pluginContext(h.ds)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != pluginv2.CheckHealthResponse_OK {
		t.Fatalf("health %v: %s", res.Status, res.Message)
	}
	mustContain(t, "health", res.Message, "Connected to logsift")
	mustContain(t, "health", res.Message, `"e2e" has`)

	// Nothing listens on a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	res, err = h.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pluginContext(settings(2, dead, `{}`))})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != pluginv2.CheckHealthResponse_ERROR {
		t.Errorf("dead URL healthy: %s", res.Message)
	}
	mustContain(t, "dead URL", res.Message, "connection refused")

	// The server's base URL with the API path appended by mistake.
	res, _ = h.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pluginContext(settings(3, h.serverURL+"/loki/api/v1", `{}`))})
	if res.Status != pluginv2.CheckHealthResponse_ERROR {
		t.Errorf("wrong path healthy: %s", res.Message)
	}
	mustContain(t, "wrong path", res.Message, "404")

	// A tenant ID the server refuses.
	res, _ = h.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pluginContext(settings(4, h.serverURL, `{"tenant":"team a"}`))})
	if res.Status != pluginv2.CheckHealthResponse_ERROR {
		t.Errorf("bad tenant healthy: %s", res.Message)
	}
	mustContain(t, "bad tenant", res.Message, `rejected the tenant "team a"`)

	// A tenant without data: healthy, with a hint.
	res, _ = h.diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pluginContext(settings(5, h.serverURL, `{"tenant":"nobody"}`))})
	if res.Status != pluginv2.CheckHealthResponse_OK {
		t.Errorf("empty tenant: %v %s", res.Status, res.Message)
	}
	mustContain(t, "empty tenant", res.Message, "check the tenant")
}

// rows returns the body column of a logs frame.
func rows(t testing.TB, f *data.Frame) []string {
	t.Helper()
	if f.Meta == nil || f.Meta.Type != data.FrameTypeLogLines || f.Meta.PreferredVisualization != data.VisTypeLogs {
		t.Fatalf("not a logs frame: %+v", f.Meta)
	}
	n, _ := f.RowLen()
	out := make([]string, n)
	for i := range out {
		out[i] = f.Fields[1].At(i).(string)
	}
	return out
}

func TestQueryLogs(t *testing.T) {
	want := count(func(ls labels.Labels, line string) bool {
		return ls.Get("job") == "api" && strings.Contains(line, "level=error")
	})
	res := queryData(t, nil, query{refID: "A", from: dataStart.Add(-time.Minute), to: dataEnd.Add(time.Minute),
		json: `{"refId":"A","expr":"{job=\"api\"} |= \"level=error\"","maxLines":5000,"workspace":"demo"}`})["A"]
	if res.err != "" || len(res.frames) != 1 {
		t.Fatalf("%+v", res)
	}
	f := res.frames[0]
	got := rows(t, f)
	if len(got) != want || want == 0 {
		t.Fatalf("%d lines, brute force finds %d", len(got), want)
	}
	mustContain(t, "executed", f.Meta.ExecutedQueryString, `workspace="demo"`)
	if len(f.Meta.Stats) == 0 {
		t.Error("no statistics in the frame")
	}
	// Newest first; severity, ids, labels and their types filled.
	ids := map[string]bool{}
	for i := 0; i < len(got); i++ {
		if i > 0 && f.Fields[0].At(i).(time.Time).After(f.Fields[0].At(i-1).(time.Time)) {
			t.Fatalf("row %d out of order", i)
		}
		if f.Fields[2].At(i) != "error" {
			t.Fatalf("row %d severity %q", i, f.Fields[2].At(i))
		}
		id := f.Fields[3].At(i).(string)
		if ids[id] {
			t.Fatalf("duplicate id %s", id)
		}
		ids[id] = true
	}
	var lbls, types map[string]string
	_ = json.Unmarshal(f.Fields[4].At(0).(json.RawMessage), &lbls)
	_ = json.Unmarshal(f.Fields[5].At(0).(json.RawMessage), &types)
	if lbls["workspace"] != "demo" || lbls["line"] == "" || types["job"] != "I" || types["line"] != "S" || types["detected_level"] != "S" {
		t.Errorf("labels %v types %v", lbls, types)
	}

	// The limit: newest lines first.
	res = queryData(t, nil, query{refID: "B", from: dataStart, to: dataEnd.Add(time.Minute), json: `{"expr":"{workspace=\"demo\"}","maxLines":25}`})["B"]
	if n, _ := res.frames[0].RowLen(); n != 25 {
		t.Errorf("limit 25 gave %d lines", n)
	}

	// A server error reaches the panel.
	res = queryData(t, nil, query{refID: "C", from: dataStart, to: dataEnd, json: `{"expr":"{job=\"api\"} |~ \"(\""}`})["C"]
	if res.err == "" || res.status != 400 {
		t.Errorf("bad regexp: %+v", res)
	}
}

// sumValues adds every value of every frame.
func sumValues(fs data.Frames) float64 {
	s := 0.0
	for _, f := range fs {
		for i := 0; i < f.Fields[1].Len(); i++ {
			v, _ := f.Fields[1].ConcreteAt(i)
			if x, ok := v.(float64); ok && !math.IsNaN(x) {
				s += x
			}
		}
	}
	return s
}

func TestQueryMetricRange(t *testing.T) {
	res := queryData(t, nil, query{refID: "A", from: dataStart.Add(-time.Minute), to: dataEnd.Add(time.Minute), interval: 30 * time.Second,
		json: `{"expr":"sum by (job) (count_over_time({workspace=\"demo\"} [$__auto]))","legendFormat":"{{job}}"}`})["A"]
	if res.err != "" {
		t.Fatal(res.err)
	}
	if len(res.frames) != len(pushed) {
		t.Fatalf("%d series, want one per job (%d)", len(res.frames), len(pushed))
	}
	for _, f := range res.frames {
		job := f.Fields[1].Labels["job"]
		if f.Meta.Type != data.FrameTypeTimeSeriesMulti || f.Fields[1].Config == nil || f.Fields[1].Config.DisplayNameFromDS != job {
			t.Errorf("frame of %s: %+v %+v", job, f.Meta, f.Fields[1].Config)
		}
		// The steps tile the range, so every line counts once.
		if got := sumValues(data.Frames{f}); got != linesPerFile {
			t.Errorf("%s: %v lines over the steps, pushed %d", job, got, linesPerFile)
		}
	}
}

// An alert rule's query: no queryType, $__auto uninterpolated, the
// FromAlert header. It must run as an instant query over the whole range.
func TestAlertQuery(t *testing.T) {
	want := count(containing("level=error")) + count(containing(`"level":"error"`))
	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)
	q := query{refID: "A", from: from, to: to, interval: time.Second,
		json: `{"refId":"A","expr":"sum(count_over_time({workspace=\"demo\"} |~ \"level=error|\\\"level\\\":\\\"error\\\"\" [$__auto]))"}`}
	res := queryData(t, map[string]string{"FromAlert": "true"}, q)["A"]
	if res.err != "" {
		t.Fatal(res.err)
	}
	if len(res.frames) != 1 || res.frames[0].Meta.Type != data.FrameTypeNumericMulti {
		t.Fatalf("alert frames %v", res.frames)
	}
	if got := sumValues(res.frames); got != float64(want) || want == 0 {
		t.Errorf("alert counted %v error lines, brute force %d", got, want)
	}
	mustContain(t, "executed", res.frames[0].Meta.ExecutedQueryString, fmt.Sprintf("[%ds]", int(to.Sub(from).Seconds())))

	// Grafana's other built-in variables, in both spellings, resolve to
	// the same whole-range count.
	for _, expr := range []string{
		`sum(count_over_time({workspace=\"demo\"} |~ \"level=error|\\\"level\\\":\\\"error\\\"\" [$__range]))`,
		`sum(count_over_time({workspace=\"demo\"} |~ \"level=error|\\\"level\\\":\\\"error\\\"\" [${__range_s}s]))`,
	} {
		res := queryData(t, map[string]string{"FromAlert": "true"}, query{refID: "A", from: from, to: to, interval: time.Second, json: `{"expr":"` + expr + `"}`})["A"]
		if res.err != "" {
			t.Fatalf("%s: %s", expr, res.err)
		}
		if got := sumValues(res.frames); got != float64(want) {
			t.Errorf("%s: counted %v error lines, brute force %d", expr, got, want)
		}
	}
	// A threshold in the query: one series when above, none when below.
	for threshold, series := range map[int]int{want - 1: 1, want: 0} {
		expr := fmt.Sprintf(`sum(count_over_time({workspace=\"demo\"} |~ \"level=error|\\\"level\\\":\\\"error\\\"\" [$__auto])) > %d`, threshold)
		res := queryData(t, map[string]string{"FromAlert": "true"}, query{refID: "A", from: from, to: to, json: `{"expr":"` + expr + `"}`})["A"]
		n := 0
		for _, f := range res.frames {
			n += f.Fields[1].Len()
		}
		if res.err != "" || n != series {
			t.Errorf("threshold %d: %d values, want %d (%s)", threshold, n, series, res.err)
		}
	}
	// A dashboard variable cannot reach an alert rule: said plainly.
	res = queryData(t, map[string]string{"FromAlert": "true"}, query{refID: "A", from: from, to: to,
		json: `{"expr":"sum(count_over_time({workspace=\"$ws\", job=$job} [$__auto]))"}`})["A"]
	if res.status != 400 || !strings.Contains(res.err, "uses the variable $job") {
		t.Errorf("unresolved variable: %d %q", res.status, res.err)
	}

	// The same query from a panel (no header) is a range query.
	res = queryData(t, nil, q)["A"]
	if res.err != "" || res.frames[0].Meta.Type != data.FrameTypeTimeSeriesMulti {
		t.Errorf("panel query: %v %+v", res.err, res.frames[0].Meta)
	}
}

func TestLogsVolumeAndSample(t *testing.T) {
	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)
	res := queryData(t, nil, query{refID: "log-volume-A", from: from, to: to, interval: time.Minute,
		json: `{"expr":"{workspace=\"demo\", job=\"api\"}","supportingQueryType":"logsVolume"}`})["log-volume-A"]
	if res.err != "" {
		t.Fatal(res.err)
	}
	var levels []string
	for _, f := range res.frames {
		levels = append(levels, f.Fields[1].Config.DisplayNameFromDS)
	}
	slices.Sort(levels)
	if strings.Join(levels, ",") != "debug,error,info,warn" {
		t.Errorf("levels %v", levels)
	}
	if got := sumValues(res.frames); got != linesPerFile {
		t.Errorf("volume adds to %v lines, pushed %d", got, linesPerFile)
	}

	res = queryData(t, nil, query{refID: "log-sample-A", from: from, to: to,
		json: `{"expr":"sum by (host) (rate({workspace=\"demo\", job=\"nginx\"} |= \"POST\" [5m]))","supportingQueryType":"logsSample","maxLines":20}`})["log-sample-A"]
	if res.err != "" {
		t.Fatal(res.err)
	}
	got := rows(t, res.frames[0])
	if len(got) != 20 {
		t.Fatalf("%d sample lines", len(got))
	}
	for _, l := range got {
		mustContain(t, "sample line", l, "POST")
	}
}

func TestResources(t *testing.T) {
	start, end := dataStart.UnixMilli(), dataEnd.Add(time.Minute).UnixMilli()
	rng := fmt.Sprintf("start=%d&end=%d", start, end)

	code, body := callResource(t, h.ds, "labels", rng+"&workspace=demo")
	var list struct{ Data []string }
	decodeJSON(t, body, &list)
	if code != 200 || !slices.Contains(list.Data, "job") || !slices.Contains(list.Data, "workspace") {
		t.Errorf("labels %d %s", code, body)
	}
	code, body = callResource(t, h.ds, "label/job/values", rng+"&query="+url.QueryEscape(`{service_name=~"api|web"} |= "x"`))
	decodeJSON(t, body, &list)
	if code != 200 || strings.Join(list.Data, ",") != "api,nginx" {
		t.Errorf("values scoped by selector: %d %s", code, body)
	}
	// The registry names a workspace without data yet; the data names
	// "demo", which was pushed without registering it.
	req, _ := http.NewRequest(http.MethodPost, h.serverURL+"/api/v1/workspaces", strings.NewReader(`{"name":"case-4711","description":"customer bundle"}`))
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		t.Fatalf("create workspace: %v %v", resp, err)
	}
	resp.Body.Close()
	code, body = callResource(t, h.ds, "workspaces", "")
	type wsInfo struct {
		Name                string
		Registered, HasData bool
		Description         string
	}
	var ws struct {
		Data       []string
		Registry   bool
		Workspaces []wsInfo
	}
	decodeJSON(t, body, &ws)
	byName := map[string]wsInfo{}
	for _, w := range ws.Workspaces {
		byName[w.Name] = w
	}
	if code != 200 || !ws.Registry || !slices.IsSorted(ws.Data) || len(ws.Data) != len(ws.Workspaces) ||
		byName["case-4711"] != (wsInfo{Name: "case-4711", Registered: true, Description: "customer bundle"}) ||
		byName[demoWorkspace] != (wsInfo{Name: demoWorkspace, HasData: true}) {
		t.Errorf("workspaces %d %s", code, body)
	}

	// The editor's estimate: the index's numbers for the selectors.
	code, body = callResource(t, h.ds, "estimate", rng+"&query="+url.QueryEscape(`{workspace="demo", job=~"api|nginx"} |= "x"`))
	var est struct{ Streams, Chunks, Entries, Bytes int64 }
	decodeJSON(t, body, &est)
	if code != 200 || est.Streams != 2 || est.Entries != 2*linesPerFile || est.Chunks < 2 || est.Bytes <= 0 {
		t.Errorf("estimate %d %s", code, body)
	}

	code, body = callResource(t, h.ds, "cost", rng+"&workspace=demo&expr="+url.QueryEscape(`{job="api"} |= "timeout"`))
	var cost struct {
		Streams, Entries, Bytes int64
		Summary                 string
	}
	decodeJSON(t, body, &cost)
	if code != 200 || cost.Streams != 1 || cost.Entries != linesPerFile || cost.Bytes <= 0 || cost.Summary == "" {
		t.Errorf("cost %d %s", code, body)
	}

	code, body = callResource(t, h.ds, "format", "expr="+url.QueryEscape(`{job="api"}|="x"`))
	var fmtd struct{ Expr string }
	decodeJSON(t, body, &fmtd)
	if code != 200 || fmtd.Expr != `{job="api"} |= "x"` {
		t.Errorf("format %d %s", code, body)
	}
}

func TestLogContext(t *testing.T) {
	// A hit in the middle of the api file: the lines around it by the
	// line numbers the agent keeps.
	s := pushed[slices.IndexFunc(pushed, func(s sampleStream) bool { return s.Labels.Get("job") == "api" })]
	const hit = 700 // line number, 1-based
	e := s.Entries[hit-1]
	lbls, _ := json.Marshal(map[string]string{"job": "api", "file": s.Labels.Get("file"), "workspace": demoWorkspace,
		"service_name": "api", "host": "api-1", "env": "demo", "line": fmt.Sprint(hit), "detected_level": "info"})
	code, body := callResource(t, h.ds, "context", fmt.Sprintf("ts=%d&before=5&after=3&labels=%s", e.Timestamp, url.QueryEscape(string(lbls))))
	if code != 200 {
		t.Fatalf("context %d %s", code, body)
	}
	var out map[string]json.RawMessage
	decodeJSON(t, body, &out)
	var method string
	decodeJSON(t, out["method"], &method)
	if method != "line" {
		t.Errorf("method %s", method)
	}
	for key, want := range map[string][]int{"before": {695, 696, 697, 698, 699}, "after": {701, 702, 703}} {
		var f data.Frame
		if err := json.Unmarshal(out[key], &f); err != nil {
			t.Fatal(err)
		}
		got := rows(t, &f)
		var wantLines []string
		for _, n := range want {
			wantLines = append(wantLines, string(s.Entries[n-1].Line))
		}
		if !slices.Equal(got, wantLines) {
			t.Errorf("%s: got %d lines %q\nwant %q", key, len(got), got, wantLines)
		}
	}
}
