package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

type resourceRecorder struct {
	resp *backend.CallResourceResponse
}

func (r *resourceRecorder) Send(resp *backend.CallResourceResponse) error {
	r.resp = resp
	return nil
}

func callResource(t *testing.T, in *Instance, path, rawQuery string, body []byte) (int, map[string]any) {
	t.Helper()
	u := path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	var rec resourceRecorder
	if err := in.CallResource(context.Background(), &backend.CallResourceRequest{Path: path, URL: u, Method: http.MethodGet, Body: body}, &rec); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.resp.Body, &out); err != nil {
		t.Fatalf("%s answered %s: %v", path, rec.resp.Body, err)
	}
	out["_raw"] = rec.resp.Body
	return rec.resp.Status, out
}

func TestResourceLabels(t *testing.T) {
	f := newFakeServer(t)
	f.answer("/loki/api/v1/labels", 200, `{"status":"success","data":["file","job"]}`)
	f.answer("/loki/api/v1/label/job/values", 200, `{"status":"success","data":["app","web"]}`)
	f.answer("/loki/api/v1/label/workspace/values", 200, `{"status":"success","data":["case-1","case-2"]}`)
	in := testInstance(t, f.srv.URL)

	code, out := callResource(t, in, "labels", "start=1714564800000&end=1714568400000&query="+
		`%7Bjob%3D%22app%22%7D+%7C%3D+%22x%22&workspace=case-1`, nil)
	if code != 200 || len(out["data"].([]any)) != 2 {
		t.Fatalf("labels: %d %v", code, out)
	}
	got := f.last("/loki/api/v1/labels")
	if got.params.Get("query") != `{job="app", workspace="case-1"}` || got.params.Get("start") != "1714564800000000000" || got.params.Get("end") != "1714568400000000000" {
		t.Errorf("labels asked %v", got.params)
	}

	code, out = callResource(t, in, "label/job/values", "query=%7Bfile%3D%22a%22", nil) // half-typed selector
	if code != 400 || !strings.Contains(out["error"].(string), "cannot read the selector") {
		t.Errorf("half-typed selector: %d %v", code, out)
	}
	code, out = callResource(t, in, "label/job/values", "", []byte(`{"query":"{file=\"a\"} | json","start":"1714564800000"}`))
	if code != 200 || out["data"].([]any)[1] != "web" {
		t.Errorf("values: %d %v", code, out)
	}
	if got := f.last("/loki/api/v1/label/job/values").params.Get("query"); got != `{file="a"}` {
		t.Errorf("values scoped by %q", got)
	}

	code, _ = callResource(t, in, "label/bad-name/values", "", nil)
	if code != 400 {
		t.Errorf("bad label name: %d", code)
	}
	code, out = callResource(t, in, "nope", "", nil)
	if code != 404 || !strings.Contains(out["error"].(string), "unknown resource") {
		t.Errorf("unknown: %d %v", code, out)
	}
	code, _ = callResource(t, in, "labels", "start=yesterday", nil)
	if code != 400 {
		t.Errorf("bad start: %d", code)
	}
}

func TestResourceWorkspaces(t *testing.T) {
	f := newFakeServer(t)
	f.answer("/loki/api/v1/label/workspace/values", 200, `{"status":"success","data":["case-1","pushed-by-alloy"]}`)
	in := testInstance(t, f.srv.URL)

	// A server without the registry (Loki): the label values alone.
	code, out := callResource(t, in, "workspaces", "workspace=ignored", nil)
	if code != 200 || out["registry"] != false || strings.Join(toStrings(out["data"]), ",") != "case-1,pushed-by-alloy" {
		t.Errorf("workspaces without registry: %d %v", code, out)
	}
	got := f.last("/loki/api/v1/label/workspace/values")
	if got.params.Get("query") != "" {
		t.Errorf("workspaces scoped by %q", got.params.Get("query"))
	}
	// No range given: the last 30 days, since imports hold old logs.
	start, _ := parseInt(got.params.Get("start"))
	end, _ := parseInt(got.params.Get("end"))
	if d := time.Duration(end - start); d != workspaceLookback {
		t.Errorf("looked back %v", d)
	}

	// logsift: the registry, joined with the labels.
	f.answer("/api/v1/workspaces", 200, `{"workspaces":[
	 {"name":"case-2","tenant":"team-a","description":"customer 4711","sources":[{"kind":"import","path":"bundle.zip","added":"2024-05-01T00:00:00Z"}],
	  "run_count":1,"last_run":{"id":"r1","workspace":"case-2","status":"running","started":"2024-05-01T00:00:00Z","counters":{"files":10,"files_done":4,"bytes":100,"bytes_done":40,"lines":7,"chunks":1},"error_count":0}},
	 {"name":"case-1","tenant":"team-a","sources":[],"run_count":0}]}`)
	code, out = callResource(t, in, "workspaces", "start=1714564800000", nil)
	if code != 200 || out["registry"] != true || strings.Join(toStrings(out["data"]), ",") != "case-1,case-2,pushed-by-alloy" {
		t.Fatalf("workspaces: %d %v", code, out)
	}
	ws := out["workspaces"].([]any)
	c2 := ws[1].(map[string]any)
	if c2["name"] != "case-2" || c2["registered"] != true || c2["hasData"] != false || c2["description"] != "customer 4711" ||
		c2["sources"].(float64) != 1 || c2["lastRun"].(map[string]any)["status"] != "running" {
		t.Errorf("case-2: %v", c2)
	}
	if a := ws[2].(map[string]any); a["registered"] != false || a["hasData"] != true {
		t.Errorf("label-only workspace: %v", a)
	}
	if h := f.last("/api/v1/workspaces").header; h.Get("X-Scope-OrgID") != "team-a" || h.Get("Authorization") != "Bearer s3cret" {
		t.Errorf("registry asked with %v", h)
	}

	// A registry that fails: the labels still answer, with a warning.
	f.answer("/api/v1/workspaces", 500, `{"error":"disk on fire"}`)
	code, out = callResource(t, in, "workspaces", "", nil)
	if code != 200 || len(toStrings(out["data"])) != 2 || !strings.Contains(out["warning"].(string), "disk on fire") {
		t.Errorf("registry failure: %d %v", code, out)
	}
	// Labels that fail: the error, with the server's status.
	f.answer("/loki/api/v1/label/workspace/values", 401, `unauthenticated`)
	if code, out = callResource(t, in, "workspaces", "", nil); code != 401 {
		t.Errorf("labels failure: %d %v", code, out)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestResourceCostAndFormat(t *testing.T) {
	f := newFakeServer(t)
	f.answer("/loki/api/v1/index/stats", 200, `{"streams":3,"chunks":120,"entries":450000,"bytes":1610612736}`)
	f.answer("/loki/api/v1/format_query", 200, `{"status":"success","data":"{job=\"app\"} |= \"x\""}`)
	in := testInstance(t, f.srv.URL)

	code, out := callResource(t, in, "cost", "expr=sum(rate(%7Bjob%3D%22app%22%7D%5B%24__auto%5D))&workspace=w", nil)
	if code != 200 || out["bytes"].(float64) != 1610612736 || out["bytesHuman"] != "1.5 GiB" || !strings.Contains(out["summary"].(string), "120 chunks") {
		t.Errorf("cost: %d %v", code, out)
	}
	if got := f.last("/loki/api/v1/index/stats").params.Get("query"); got != `sum(rate({job="app", workspace="w"}[1m]))` {
		t.Errorf("cost asked %q", got)
	}
	// The frontend asks for "estimate" with the query in "query".
	code, out = callResource(t, in, "estimate", "query=%7Bjob%3D%22app%22%7D&start=1714564800000&end=1714568400000", nil)
	if code != 200 || out["chunks"].(float64) != 120 || out["streams"].(float64) != 3 || out["entries"].(float64) != 450000 {
		t.Errorf("estimate: %d %v", code, out)
	}
	if got := f.last("/loki/api/v1/index/stats").params; got.Get("query") != `{job="app"}` || got.Get("start") != "1714564800000000000" {
		t.Errorf("estimate asked %v", got)
	}
	code, out = callResource(t, in, "format", "", []byte(`{"expr":"{job=\"app\"}|=\"x\""}`))
	if code != 200 || out["expr"] != `{job="app"} |= "x"` {
		t.Errorf("format: %d %v", code, out)
	}
	f.answer("/loki/api/v1/format_query", 400, "parse error at line 1, col 2")
	code, out = callResource(t, in, "format", "expr=%7B", nil)
	if code != 400 || !strings.Contains(out["error"].(string), "parse error") {
		t.Errorf("format error: %d %v", code, out)
	}
	code, _ = callResource(t, in, "cost", "", nil)
	if code != 400 {
		t.Errorf("cost without expr: %d", code)
	}
}

// contextServer answers a file of 30 lines, one per second from t0, each
// with its line number; the labels call lists the stream labels.
func contextServer(t *testing.T, withLines bool) *fakeServer {
	f := newFakeServer(t)
	f.answer("/loki/api/v1/labels", 200, `{"status":"success","data":["file","job"]}`)
	const t0 = int64(1714564800000000000)
	f.handle("/loki/api/v1/query_range", func(w http.ResponseWriter, r *http.Request) {
		q := r.Form.Get("query")
		start, _ := parseTime(r.Form.Get("start"))
		end, _ := parseTime(r.Form.Get("end"))
		var lo, hi int64 = 1, 30
		if withLines {
			// The filters the plugin sends: | line >= A | line <= B.
			parts := strings.Split(q, "|")
			for _, p := range parts[1:] {
				var n int64
				p = strings.TrimSpace(p)
				if strings.HasPrefix(p, "line >= ") {
					n, _ = parseInt(strings.TrimPrefix(p, "line >= "))
					lo = n
				} else if strings.HasPrefix(p, "line <= ") {
					n, _ = parseInt(strings.TrimPrefix(p, "line <= "))
					hi = n
				}
			}
		}
		type val []any
		var vals []val
		for i := int64(1); i <= 30; i++ {
			ts := t0 + i*1e9
			if i < lo || i > hi || ts < start.UnixNano() || ts >= end.UnixNano() {
				continue
			}
			v := val{itoa(ts), "line " + itoa(i)}
			if withLines {
				v = append(v, map[string]any{"structuredMetadata": map[string]string{"line": itoa(i)}})
			}
			vals = append(vals, v)
		}
		if r.Form.Get("direction") == "backward" {
			for i, j := 0, len(vals)-1; i < j; i, j = i+1, j-1 {
				vals[i], vals[j] = vals[j], vals[i]
			}
		}
		if n, _ := parseInt(r.Form.Get("limit")); n > 0 && int64(len(vals)) > n {
			vals = vals[:n]
		}
		b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "streams",
			"result": []any{map[string]any{"stream": map[string]string{"job": "app", "file": "a.log"}, "values": vals}}}})
		_, _ = w.Write(b)
	})
	return f
}

func contextLines(t *testing.T, out map[string]any, key string) []string {
	t.Helper()
	// Frames decode only with the schema first: take the text as sent.
	var raws map[string]json.RawMessage
	if err := json.Unmarshal(out["_raw"].([]byte), &raws); err != nil {
		t.Fatal(err)
	}
	raw := raws[key]
	var f data.Frame
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s frame: %v", key, err)
	}
	n, _ := f.RowLen()
	var lines []string
	for i := 0; i < n; i++ {
		lines = append(lines, f.Fields[1].At(i).(string))
	}
	return lines
}

func TestResourceContextByLine(t *testing.T) {
	f := contextServer(t, true)
	in := testInstance(t, f.srv.URL)
	labels := `{"job":"app","file":"a.log","detected_level":"info","line":"10"}`
	code, out := callResource(t, in, "context", "ts=1714564810000000000&before=3&after=2&labels="+urlEncode(labels), nil)
	if code != 200 {
		t.Fatalf("context: %d %v", code, out)
	}
	if out["method"] != "line" || out["selector"] != `{file="a.log", job="app"}` {
		t.Errorf("method %v selector %v", out["method"], out["selector"])
	}
	if got := strings.Join(contextLines(t, out, "before"), ","); got != "line 7,line 8,line 9" {
		t.Errorf("before: %s", got)
	}
	if got := strings.Join(contextLines(t, out, "after"), ","); got != "line 11,line 12" {
		t.Errorf("after: %s", got)
	}
	var answer any
	if err := json.Unmarshal(out["_raw"].([]byte), &answer); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "resource_context_line", answer)
	if q := f.last("/loki/api/v1/query_range").params.Get("query"); q != `{file="a.log", job="app"} | line >= 7 | line <= 12` {
		t.Errorf("asked %q", q)
	}
	// With label types, no lookup of the stream labels is needed.
	n := f.count("/loki/api/v1/labels")
	types := `{"job":"I","file":"I","detected_level":"S","line":"S"}`
	code, out = callResource(t, in, "context", "ts=1714564810000&line=2&before=5&after=1&labelTypes="+urlEncode(types)+"&labels="+urlEncode(labels), nil)
	if code != 200 || f.count("/loki/api/v1/labels") != n {
		t.Fatalf("context with types: %d %v", code, out)
	}
	if got := strings.Join(contextLines(t, out, "before"), ","); got != "line 1" {
		t.Errorf("before line 2: %s", got)
	}
}

func TestResourceContextByTime(t *testing.T) {
	f := contextServer(t, false)
	in := testInstance(t, f.srv.URL)
	code, out := callResource(t, in, "context", "ts=1714564810000000000&before=2&after=2&body=line+10&labels="+urlEncode(`{file="a.log", job="app"}`), nil)
	if code != 200 {
		t.Fatalf("context: %d %v", code, out)
	}
	if out["method"] != "timestamp" {
		t.Errorf("method %v", out["method"])
	}
	if got := strings.Join(contextLines(t, out, "before"), ","); got != "line 8,line 9" {
		t.Errorf("before: %s", got)
	}
	if got := strings.Join(contextLines(t, out, "after"), ","); got != "line 11,line 12" {
		t.Errorf("after: %s", got)
	}
	for _, bad := range []string{"", "ts=1", "ts=x&labels=%7B%7D", "ts=1&labels=%7B%22a%22%3A%22b%22%7D&before=-1"} {
		if code, _ := callResource(t, in, "context", bad, nil); code != 400 {
			t.Errorf("%q: %d", bad, code)
		}
	}
}
