package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Canned answers in the server's format (pkg/lokiapi).
const (
	cannedStreams = `{"status":"success","data":{"resultType":"streams","result":[
 {"stream":{"file":"var/log/app.log","job":"app","workspace":"case-1"},"values":[
  ["1714564830000000000","level=error msg=\"db timeout\" took=3s",{"structuredMetadata":{"detected_level":"error","line":"42"},"parsed":{"msg":"db timeout","took":"3s"}}],
  ["1714564810000000000","level=info msg=started",{"structuredMetadata":{"detected_level":"info","line":"41"},"parsed":{"msg":"started"}}]]},
 {"stream":{"file":"var/log/web.log","job":"web","workspace":"case-1"},"values":[
  ["1714564820000000000","GET /health 200",{"structuredMetadata":{"line":"7"}}]]}],
 "stats":{"summary":{"execTime":0.0125,"totalBytesProcessed":4096,"totalLinesProcessed":120,"totalPostFilterLines":3,"totalEntriesReturned":3},
  "querier":{"store":{"totalChunksRef":4,"totalChunksDownloaded":1,"chunk":{"compressedBytes":900,"decompressedBytes":4000}}},
  "ingester":{"store":{"chunk":{"headChunkBytes":96}}},"logsift":{"chunksPruned":3,"blocksPruned":9,"streams":2}},
 "encodingFlags":["categorize-labels"]}}`
	cannedMatrix = `{"status":"success","data":{"resultType":"matrix","result":[
 {"metric":{"detected_level":"info"},"values":[[1714564800,"12"],[1714564830,"7"]]},
 {"metric":{"detected_level":"error"},"values":[[1714564800,"1"],[1714564830,"0.5"]]},
 {"metric":{},"values":[[1714564830,"2"]]}],
 "stats":{"summary":{"execTime":0.002,"totalBytesProcessed":512,"totalLinesProcessed":20}}}}`
	cannedVector = `{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"job":"app"},"value":[1714586400,"17"]},{"metric":{"job":"web"},"value":[1714586400,"3"]}],
 "stats":{"summary":{"execTime":0.001,"totalBytesProcessed":256,"totalLinesProcessed":20}}}}`
)

var (
	qFrom = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	qTo   = qFrom.Add(6 * time.Hour)
)

func dataQuery(refID, js string) backend.DataQuery {
	return backend.DataQuery{
		RefID:         refID,
		JSON:          json.RawMessage(js),
		TimeRange:     backend.TimeRange{From: qFrom, To: qTo},
		Interval:      30 * time.Second,
		MaxDataPoints: 720,
	}
}

func runQuery(t *testing.T, in *Instance, headers map[string]string, q backend.DataQuery) backend.DataResponse {
	t.Helper()
	resp, err := in.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{q}, Headers: headers})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Responses[q.RefID]
}

func TestQueryDataGolden(t *testing.T) {
	fake := newFakeServer(t)
	fake.answer("/loki/api/v1/query_range", 200, cannedStreams)
	fake.answer("/loki/api/v1/query", 200, cannedVector)
	in := testInstance(t, fake.srv.URL)

	cases := []struct {
		name    string
		query   string
		alert   bool
		answer  string // query_range answer
		path    string // endpoint asked
		params  map[string]string
		headers map[string]string
	}{
		{
			name:   "logs_range",
			query:  `{"refId":"A","expr":"{job=~\"app|web\"} |= \"o\"","maxLines":50}`,
			answer: cannedStreams, path: "/loki/api/v1/query_range",
			params: map[string]string{"query": `{job=~"app|web"} |= "o"`, "limit": "50", "direction": "backward",
				"start": "1714564800000000000", "end": "1714586400000000000"},
		},
		{
			name:   "logs_forward_workspace",
			query:  `{"refId":"A","expr":"{job=\"app\"}","direction":"forward","workspace":"case-1"}`,
			answer: cannedStreams, path: "/loki/api/v1/query_range",
			params: map[string]string{"query": `{job="app", workspace="case-1"}`, "limit": "500", "direction": "forward"},
		},
		{
			name:   "metric_range",
			query:  `{"refId":"A","expr":"sum by (detected_level) (count_over_time({job=\"app\"}[$__auto]))","legendFormat":"{{detected_level}} lines","step":"1m"}`,
			answer: cannedMatrix, path: "/loki/api/v1/query_range",
			params: map[string]string{"query": `sum by (detected_level) (count_over_time({job="app"}[1m]))`, "step": "60"},
		},
		{
			name:  "metric_instant",
			query: `{"refId":"A","expr":"sum by (job) (count_over_time({job=~\".+\"}[$__range]))","queryType":"instant"}`,
			path:  "/loki/api/v1/query",
			params: map[string]string{"query": `sum by (job) (count_over_time({job=~".+"}[21600s]))`,
				"time": "1714586400000000000"},
		},
		{
			// An alert rule: no queryType, nothing interpolated, the
			// FromAlert header set.
			name:  "alert_instant",
			query: `{"refId":"A","expr":"sum by (job) (count_over_time({job=~\".+\"} |= \"error\" [$__auto]))"}`,
			alert: true,
			path:  "/loki/api/v1/query",
			params: map[string]string{"query": `sum by (job) (count_over_time({job=~".+"} |= "error" [21600s]))`,
				"time": "1714586400000000000"},
		},
		{
			name:   "logs_volume",
			query:  `{"refId":"log-volume-A","expr":"{job=\"app\"} |= \"timeout\"","supportingQueryType":"logsVolume"}`,
			answer: cannedMatrix, path: "/loki/api/v1/query_range",
			params: map[string]string{"query": `sum by (detected_level) (count_over_time({job="app"} |= "timeout" [30s]))`, "step": "30"},
		},
		{
			name:   "logs_sample",
			query:  `{"refId":"log-sample-A","expr":"sum(rate({job=\"app\"} | logfmt [5m]))","supportingQueryType":"logsSample"}`,
			answer: cannedStreams, path: "/loki/api/v1/query_range",
			params: map[string]string{"query": `{job="app"} | logfmt`, "limit": "100"},
		},
		{
			name:  "stream",
			query: `{"refId":"A","expr":"{job=\"app\"}","queryType":"stream"}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.answer != "" {
				fake.answer("/loki/api/v1/query_range", 200, c.answer)
			}
			before := fake.count(c.path)
			var headers map[string]string
			if c.alert {
				headers = map[string]string{"FromAlert": "true"}
			}
			dr := runQuery(t, in, headers, dataQuery("A", c.query))
			if dr.Error != nil {
				t.Fatalf("query failed: %v", dr.Error)
			}
			checkGolden(t, "query_"+c.name, dr)
			if c.path == "" {
				return
			}
			if fake.count(c.path) != before+1 {
				t.Fatalf("expected one request to %s", c.path)
			}
			got := fake.last(c.path)
			for k, v := range c.params {
				if got.params.Get(k) != v {
					t.Errorf("%s=%q, want %q", k, got.params.Get(k), v)
				}
			}
			if got.header.Get("X-Scope-OrgID") != "team-a" || got.header.Get("Authorization") != "Bearer s3cret" ||
				got.header.Get("X-Loki-Response-Encoding-Flags") != "categorize-labels" {
				t.Errorf("headers %v", got.header)
			}
		})
	}
}

func TestQueryDataErrors(t *testing.T) {
	fake := newFakeServer(t)
	fake.answer("/loki/api/v1/query_range", 400, "parse error at line 1, col 7: syntax error: unexpected IDENTIFIER\n")
	in := testInstance(t, fake.srv.URL)

	dr := runQuery(t, in, nil, dataQuery("A", `{"expr":"{job=\"app\"} foo"}`))
	if dr.Error == nil || !strings.Contains(dr.Error.Error(), "parse error at line 1") || dr.Status != backend.StatusBadRequest || dr.ErrorSource != backend.ErrorSourceDownstream {
		t.Errorf("server 400: %+v", dr)
	}
	checkGolden(t, "query_server_error", dr)

	dr = runQuery(t, in, nil, dataQuery("A", `{"expr":"{job=\"app\"}","queryType":"table"}`))
	if dr.Error == nil || !strings.Contains(dr.Error.Error(), "unknown queryType") {
		t.Errorf("bad query type: %+v", dr)
	}

	dr = runQuery(t, in, nil, dataQuery("A", `{"expr":""}`))
	if dr.Error != nil || len(dr.Frames) != 0 {
		t.Errorf("empty query: %+v", dr)
	}

	fake.answer("/loki/api/v1/query_range", 504, "query timed out")
	dr = runQuery(t, in, nil, dataQuery("A", `{"expr":"{job=\"app\"}"}`))
	if dr.Status != backend.StatusTimeout {
		t.Errorf("timeout: %+v", dr)
	}

	down := testInstance(t, "http://127.0.0.1:1")
	dr = runQuery(t, down, nil, dataQuery("A", `{"expr":"{job=\"app\"}"}`))
	if dr.Error == nil || !strings.Contains(dr.Error.Error(), "connection refused") || dr.Status != backend.StatusBadGateway {
		t.Errorf("unreachable server: %+v", dr)
	}
}

func TestQueryDataMany(t *testing.T) {
	fake := newFakeServer(t)
	fake.answer("/loki/api/v1/query_range", 200, cannedStreams)
	in := testInstance(t, fake.srv.URL)
	var qs []backend.DataQuery
	for _, id := range []string{"A", "B", "C", "D", "E", "F"} {
		qs = append(qs, dataQuery(id, `{"expr":"{job=\"app\"}"}`))
	}
	resp, err := in.QueryData(context.Background(), &backend.QueryDataRequest{Queries: qs})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		dr := resp.Responses[q.RefID]
		if dr.Error != nil || len(dr.Frames) != 1 || dr.Frames[0].RefID != q.RefID {
			t.Errorf("%s: %+v", q.RefID, dr)
		}
	}
}

func TestFromAlert(t *testing.T) {
	for h, want := range map[string]bool{"FromAlert": true, "fromalert": true, "http_FromAlert": true, "Other": false} {
		if got := FromAlert(map[string]string{h: "true"}); got != want {
			t.Errorf("%s: %v", h, got)
		}
	}
	if FromAlert(map[string]string{"FromAlert": "false"}) {
		t.Error("FromAlert: false counted as an alert")
	}
}

func TestSettings(t *testing.T) {
	in := newInstance(backend.DataSourceInstanceSettings{URL: "http://x", JSONData: json.RawMessage(`{"timeoutSeconds":-1}`)})
	if in.configErr == nil || !strings.Contains(in.configErr.Error(), "timeoutSeconds") {
		t.Errorf("negative timeout: %v", in.configErr)
	}
	in = newInstance(backend.DataSourceInstanceSettings{URL: "http://x", JSONData: json.RawMessage(`{"tlsAuthWithCACert":true}`)})
	if in.configErr == nil || !strings.Contains(in.configErr.Error(), "CA certificate") {
		t.Errorf("missing CA: %v", in.configErr)
	}
	in = newInstance(backend.DataSourceInstanceSettings{URL: "http://x", JSONData: json.RawMessage(`{"tlsAuthWithCACert":true}`),
		DecryptedSecureJSONData: map[string]string{"tlsCACert": "not pem"}})
	if in.configErr == nil || !strings.Contains(in.configErr.Error(), "PEM") {
		t.Errorf("bad CA: %v", in.configErr)
	}
	in = newInstance(backend.DataSourceInstanceSettings{JSONData: json.RawMessage(`null`)})
	if in.configErr == nil || !strings.Contains(in.configErr.Error(), "URL is empty") {
		t.Errorf("no URL: %v", in.configErr)
	}
	dr := runQuery(t, in, nil, dataQuery("A", `{"expr":"{a=\"b\"}"}`))
	if dr.Error == nil || !strings.Contains(dr.Error.Error(), "URL is empty") {
		t.Errorf("query with bad settings: %+v", dr)
	}
	s, err := ParseSettings(backend.DataSourceInstanceSettings{URL: " http://x ", JSONData: json.RawMessage(`{"tenant":" t ","maxLines":7}`)})
	if err != nil || s.URL != "http://x" || s.Tenant != "t" || s.MaxLines != 7 || s.Timeout != DefaultTimeout {
		t.Errorf("settings %+v, %v", s, err)
	}
	in.Dispose()
}
