package lokiapi

// The requests below are the ones Grafana's Loki datasource and Grafana
// Logs Drilldown send, as read in their public source, replayed against a
// real store; each test checks the response fields the client reads.
//
// Grafana's Loki datasource (grafana/grafana):
//
//   - pkg/tsdb/loki/api.go, data queries through the Go backend:
//     GET /loki/api/v1/query_range?query=Q&direction=backward&limit=N
//     &start=<ns>&end=<ns>&step=<n>ms (step always sent, in ms); instant
//     GET /loki/api/v1/query?query=Q&direction=D&time=<ns>. Header
//     X-Query-Tags: Source=logvolhist|logsample|datasample for the logs
//     volume, logs sample and data sample queries. Read by
//     pkg/util/converter/prom.go: data.resultType, data.result (streams:
//     stream, values [ns string, line]; matrix: metric, values
//     [[float seconds, "value"]]; vector: metric, value; scalar [t, "v"]),
//     data.stats, error text of non-2xx answers (plain text or
//     {"message"}).
//   - pkg/tsdb/loki/healthcheck.go: instant query vector(1)+vector(1) at
//     time=4s; expects one frame with one row whose value is 2.
//   - The logs volume query of Explore: sum by (level, detected_level)
//     (count_over_time(<log query> | drop __error__ [$__auto])), a range
//     query with X-Query-Tags: Source=logvolhist.
//   - public/app/plugins/datasource/loki/LanguageProvider.ts, resource
//     calls proxied unchanged: labels?start&end[&query],
//     label/<name>/values?start&end[&query], series?match[]&start&end,
//     index/stats?query=<selector>&start&end (reads streams, chunks,
//     bytes, entries), detected_labels?start&end[&query] (reads the list
//     of {label}), detected_fields?start&end&limit=1000&query (reads
//     label, parsers), detected_field/<name>/values?start&end&limit=1000
//     [&query] (reads a list of strings). Times are Unix nanoseconds.
//     The datasource unwraps `data` when present (metadataRequest:
//     res.data ?? res).
//   - X-Loki-Response-Encoding-Flags: categorize-labels asks for
//     structured metadata and parsed labels apart, as a third element of
//     each value; the answer echoes data.encodingFlags.
//
// Grafana Logs Drilldown (grafana/logs-drilldown, src/services):
//
//   - datasource.ts, all with X-Query-Tags: Source=grafana-lokiexplore-app
//     and start/end as ISO 8601 UTC with milliseconds:
//     index/volume?query={service_name=~".+"}&limit=5000 (reads
//     data.result[].metric[<primary label>] and value[1]);
//     patterns?query=<selector>&step=<request interval> (reads
//     data[].pattern, data[].samples as [unix seconds, count], level);
//     detected_labels?query=<selector or ""> (reads detectedLabels[]
//     .label/.cardinality); detected_fields?query=<log query> (reads
//     fields[].label/.cardinality/.parsers/.type/.jsonPath);
//     labels?start&end (reads data).
//   - LokiConfig: drilldown-limits (reads limits.*,
//     pattern_ingester_enabled, version).
//   - TagValuesProviders.ts: detected_field/<name>/values with limit=1000.
//   - fields.ts builds metric queries such as
//     sum by (f) (count_over_time(<q> [$__auto])) and
//     avg_over_time(<q> | unwrap duration(f) | __error__="" [$__auto]) by ().

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// fixture is a store loaded with an hour of varied logs: JSON, logfmt and
// plain text lines, structured metadata, identifier-valued labels. The
// first half is flushed to chunks, the second stays in heads.
type fixture struct {
	srv   *httptest.Server
	api   *API
	t0    time.Time        // first entry
	t1    time.Time        // one hour later, after the last entry
	lines map[string]int   // entries per service_name
	bytes map[string]int64 // line bytes per service_name
}

const drillTenant = "drill"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	f := &fixture{t0: time.Date(2024, 6, 1, 11, 0, 0, 0, time.UTC), lines: map[string]int{}, bytes: map[string]int64{}}
	f.t1 = f.t0.Add(time.Hour)

	type gen struct {
		labels labels.Labels
		line   func(i int) (string, labels.Labels)
	}
	users := []string{"alice", "bob", "carol"}
	gens := []gen{
		{labels.New("service_name", "api", "env", "prod", "pod", "api-1"), func(i int) (string, labels.Labels) {
			lvl := []string{"info", "info", "warn", "error"}[i%4]
			return fmt.Sprintf(`{"level":%q,"msg":"request done","status":%d,"duration":"%dms","size":"%dKB","user":{"name":%q},"cached":%t}`,
					lvl, []int{200, 404, 500}[i%3], 10+i%50, 1+i%9, users[i%3], i%2 == 0),
				labels.New("detected_level", lvl, "trace_id", fmt.Sprintf("%016x", i))
		}},
		{labels.New("service_name", "api", "env", "prod", "pod", "api-2"), func(i int) (string, labels.Labels) {
			lvl := []string{"error", "info"}[i%2]
			return fmt.Sprintf(`level=%s msg="connection refused" host=db-%d latency=%dms retries=%d`, lvl, i%3, 100+i, i%5),
				labels.New("detected_level", lvl)
		}},
		{labels.New("service_name", "worker", "env", "dev", "pod", "w-1"), func(i int) (string, labels.Labels) {
			if i%3 == 0 {
				return fmt.Sprintf("disk almost full on /var/data%d", i%2), labels.New("detected_level", "warn")
			}
			return fmt.Sprintf("Job %d finished in %d ms", 1000+i, 40+i%20), labels.New("detected_level", "info")
		}},
	}
	// Streams whose request_id label is a UUID: detected_labels leaves
	// such labels out.
	for k := range 3 {
		gens = append(gens, gen{labels.New("service_name", "web", "env", "prod", "request_id", fmt.Sprintf("%08x-1111-2222-3333-44445555666%d", k, k)), func(i int) (string, labels.Labels) {
			return fmt.Sprintf("GET /index.html %d", 200+k), nil
		}})
	}
	const perStream = 360 // one entry every 10s
	for half := range 2 {
		var batch []store.Stream
		for _, g := range gens {
			var es []chunk.Entry
			for i := half * perStream / 2; i < (half+1)*perStream/2; i++ {
				line, md := g.line(i)
				es = append(es, chunk.Entry{Timestamp: f.t0.Add(time.Duration(i) * 10 * time.Second).UnixNano(), Line: []byte(line), Metadata: md})
				svc := g.labels.Get("service_name")
				f.lines[svc]++
				f.bytes[svc] += int64(len(line))
			}
			batch = append(batch, store.Stream{Labels: g.labels, Entries: es})
		}
		if err := st.Append(context.Background(), drillTenant, batch); err != nil {
			t.Fatal(err)
		}
		if half == 0 {
			if err := st.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.api = &API{Engine: &query.Engine{Store: st}, Store: st, Limits: DefaultLimits(), Tenants: tenant.Resolver{}}
	mux := http.NewServeMux()
	f.api.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// ns and iso format times as Grafana's datasource and Drilldown send them.
func ns(t time.Time) string  { return strconv.FormatInt(t.UnixNano(), 10) }
func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

var grafanaHeaders = map[string]string{"X-Scope-OrgID": drillTenant}
var drilldownHeaders = map[string]string{"X-Scope-OrgID": drillTenant, "X-Query-Tags": "Source=grafana-lokiexplore-app"}

func (f *fixture) get(t *testing.T, path string, v url.Values, hdr map[string]string) (int, []byte) {
	t.Helper()
	code, body := get(t, f.srv, path, v, hdr)
	return code, []byte(body)
}

// getJSON fetches and decodes a 200 answer.
func (f *fixture) getJSON(t *testing.T, path string, v url.Values, hdr map[string]string, out any) {
	t.Helper()
	code, body := f.get(t, path, v, hdr)
	if code != http.StatusOK {
		t.Fatalf("%s?%s: %d %s", path, v.Encode(), code, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s: invalid JSON %v: %s", path, err, body)
	}
}

type promResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType    string          `json:"resultType"`
		Result        json.RawMessage `json:"result"`
		Stats         map[string]any  `json:"stats"`
		EncodingFlags []string        `json:"encodingFlags"`
	} `json:"data"`
}

type matrixSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// pointValue reads a [seconds, "value"] pair as Grafana's converter does.
func pointValue(t *testing.T, p [2]any) (float64, float64) {
	t.Helper()
	ts, ok := p[0].(float64)
	if !ok {
		t.Fatalf("time %v is not a number", p[0])
	}
	s, ok := p[1].(string)
	if !ok {
		t.Fatalf("value %v is not a string", p[1])
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("value %q: %v", s, err)
	}
	return ts, v
}

func TestGrafanaDatasourceHealthCheck(t *testing.T) {
	f := newFixture(t)
	var resp promResponse
	f.getJSON(t, "/loki/api/v1/query", url.Values{"query": {"vector(1)+vector(1)"}, "direction": {"backward"}, "time": {"4000000000"}}, grafanaHeaders, &resp)
	var vec []vectorSample
	if err := json.Unmarshal(resp.Data.Result, &vec); err != nil || resp.Data.ResultType != "vector" || len(vec) != 1 {
		t.Fatalf("health check answer: %+v %s", resp, resp.Data.Result)
	}
	// A 10-digit integer is seconds, as Loki reads it: Grafana's health
	// check lands in 2096 and checks the value only.
	if ts, v := pointValue(t, vec[0].Value); ts != 4e9 || v != 2 {
		t.Fatalf("health check point %v, want [4e9, \"2\"]", vec[0].Value)
	}
	if resp.Data.Stats["summary"] == nil {
		t.Fatal("no stats")
	}
}

func TestGrafanaMetricQueries(t *testing.T) {
	f := newFixture(t)
	// The logs volume histogram of Explore, as the backend sends it.
	v := url.Values{
		"query":     {`sum by (level, detected_level) (count_over_time({service_name="api"} | drop __error__[1m]))`},
		"direction": {"backward"}, "limit": {"1000"},
		"start": {ns(f.t0)}, "end": {ns(f.t1)}, "step": {"60000ms"},
	}
	hdr := map[string]string{"X-Scope-OrgID": drillTenant, "X-Query-Tags": "Source=logvolhist"}
	var resp promResponse
	f.getJSON(t, "/loki/api/v1/query_range", v, hdr, &resp)
	var mat []matrixSeries
	if err := json.Unmarshal(resp.Data.Result, &mat); err != nil || resp.Data.ResultType != "matrix" {
		t.Fatalf("volume answer: %v %s", err, resp.Data.Result)
	}
	levelsSeen := map[string]bool{}
	var total float64
	for _, s := range mat {
		levelsSeen[s.Metric["detected_level"]] = true
		last := -1.0
		for _, p := range s.Values {
			ts, _ := pointValue(t, p)
			if ts <= last {
				t.Fatalf("times not rising in %v", s.Values)
			}
			last = ts
		}
	}
	for _, want := range []string{"info", "warn", "error"} {
		if !levelsSeen[want] {
			t.Errorf("no series for detected_level=%s: %s", want, resp.Data.Result)
		}
	}
	// Count per minute summed over a whole minute-aligned step equals the
	// lines: check with one instant query over the hour.
	var inst promResponse
	f.getJSON(t, "/loki/api/v1/query", url.Values{"query": {`sum(count_over_time({service_name="api"}[1h]))`}, "time": {ns(f.t1.Add(-time.Nanosecond))}}, grafanaHeaders, &inst)
	var vec []vectorSample
	if err := json.Unmarshal(inst.Data.Result, &vec); err != nil || len(vec) != 1 {
		t.Fatalf("instant: %s", inst.Data.Result)
	}
	if _, total = pointValue(t, vec[0].Value); total != float64(f.lines["api"]) {
		t.Fatalf("count_over_time over the hour = %v, want %d", total, f.lines["api"])
	}

	// Drilldown's field breakdown queries.
	for _, q := range []string{
		`sum by (pod) (count_over_time({service_name=~".+"} [1m]))`,
		`avg_over_time({service_name="api", pod="api-2"} | logfmt | unwrap duration(latency) | __error__="" [1m]) by ()`,
		`sum by (status) (count_over_time({service_name="api"} | json | drop __error__, __error_details__ [1m]))`,
	} {
		var r promResponse
		f.getJSON(t, "/loki/api/v1/query_range", url.Values{"query": {q}, "start": {iso(f.t0)}, "end": {iso(f.t1)}, "step": {"60"}}, drilldownHeaders, &r)
		var m []matrixSeries
		if err := json.Unmarshal(r.Data.Result, &m); err != nil || r.Data.ResultType != "matrix" || len(m) == 0 {
			t.Fatalf("%s: %s %s", q, r.Data.ResultType, r.Data.Result)
		}
	}

	// A scalar instant query renders [t, "v"].
	var sc promResponse
	f.getJSON(t, "/loki/api/v1/query", url.Values{"query": {"1+1"}, "time": {"1700000000.5"}}, grafanaHeaders, &sc)
	var pt [2]any
	if err := json.Unmarshal(sc.Data.Result, &pt); err != nil || sc.Data.ResultType != "scalar" {
		t.Fatalf("scalar: %s %s", sc.Data.ResultType, sc.Data.Result)
	}
	if ts, val := pointValue(t, pt); ts != 1700000000.5 || val != 2 {
		t.Fatalf("scalar point %v", pt)
	}
}

func TestGrafanaLogQueryCategorized(t *testing.T) {
	f := newFixture(t)
	v := url.Values{"query": {`{service_name="api", pod="api-1"} | json`}, "direction": {"backward"}, "limit": {"10"},
		"start": {ns(f.t0)}, "end": {ns(f.t1)}, "step": {"1000ms"}}
	hdr := map[string]string{"X-Scope-OrgID": drillTenant, "X-Loki-Response-Encoding-Flags": "categorize-labels"}
	var resp promResponse
	f.getJSON(t, "/loki/api/v1/query_range", v, hdr, &resp)
	if resp.Data.ResultType != "streams" || !slices.Contains(resp.Data.EncodingFlags, "categorize-labels") {
		t.Fatalf("categorized answer lacks encodingFlags: %+v", resp.Data)
	}
	var streams []struct {
		Stream map[string]string `json:"stream"`
		Values [][]json.RawMessage
	}
	if err := json.Unmarshal(resp.Data.Result, &streams); err != nil || len(streams) == 0 {
		t.Fatalf("streams: %v %s", err, resp.Data.Result)
	}
	n := 0
	for _, s := range streams {
		for _, e := range s.Values {
			n++
			if len(e) != 3 {
				t.Fatalf("entry without categorized labels: %s", e)
			}
			var cat struct {
				StructuredMetadata map[string]string `json:"structuredMetadata"`
				Parsed             map[string]string `json:"parsed"`
			}
			if err := json.Unmarshal(e[2], &cat); err != nil || cat.StructuredMetadata["detected_level"] == "" || cat.Parsed["msg"] != "request done" {
				t.Fatalf("third element %s", e[2])
			}
		}
	}
	if n != 10 {
		t.Fatalf("%d entries, want the limit of 10", n)
	}
	// Without the header there is no third element and no flag.
	code, body := f.get(t, "/loki/api/v1/query_range", v, grafanaHeaders)
	if code != 200 || strings.Contains(string(body), "encodingFlags") || strings.Contains(string(body), "structuredMetadata") {
		t.Fatalf("plain answer: %d %s", code, body)
	}
}

func TestGrafanaResourceCalls(t *testing.T) {
	f := newFixture(t)
	rng := url.Values{"start": {ns(f.t0)}, "end": {ns(f.t1)}}

	var labelsResp struct{ Data []string }
	f.getJSON(t, "/loki/api/v1/labels", rng, grafanaHeaders, &labelsResp)
	if !slices.Equal(labelsResp.Data, []string{"env", "pod", "request_id", "service_name"}) {
		t.Fatalf("labels: %v", labelsResp.Data)
	}

	// index/stats per selector, as getQueryStats sends it.
	var stats struct{ Streams, Chunks, Bytes, Entries int64 }
	v := url.Values{"query": {`{service_name="api"}`}, "start": rng["start"], "end": rng["end"]}
	f.getJSON(t, "/loki/api/v1/index/stats", v, grafanaHeaders, &stats)
	if stats.Streams != 2 || stats.Entries != int64(f.lines["api"]) || stats.Bytes != f.bytes["api"] || stats.Chunks < 4 {
		t.Fatalf("index/stats = %+v, want 2 streams, %d entries, %d bytes, >= 4 chunks", stats, f.lines["api"], f.bytes["api"])
	}
	// Half the range: the heads count exactly, the flushed half pro rata.
	v.Set("start", ns(f.t0.Add(30*time.Minute)))
	f.getJSON(t, "/loki/api/v1/index/stats", v, grafanaHeaders, &stats)
	if want := int64(f.lines["api"] / 2); stats.Entries < want-2 || stats.Entries > want+2 {
		t.Fatalf("second half entries = %d, want about %d", stats.Entries, want)
	}

	// detected_labels as the language provider probes it: unwrapped from
	// data it must be a list of {label}.
	var dl struct {
		Data           []detectedLabel `json:"data"`
		DetectedLabels []detectedLabel `json:"detectedLabels"`
	}
	f.getJSON(t, "/loki/api/v1/detected_labels", rng, grafanaHeaders, &dl)
	if !slices.Equal(dl.Data, dl.DetectedLabels) || len(dl.Data) == 0 {
		t.Fatalf("detected_labels data/detectedLabels differ: %+v", dl)
	}

	// detected_fields and values, as fetchDetectedFields and
	// fetchDetectedLabelValues send them (limit=1000, ns times).
	var df struct {
		Data []detectedField `json:"data"`
	}
	f.getJSON(t, "/loki/api/v1/detected_fields", url.Values{"query": {`{service_name="api"}`}, "limit": {"1000"}, "start": rng["start"], "end": rng["end"]}, grafanaHeaders, &df)
	hasJSON := slices.ContainsFunc(df.Data, func(f detectedField) bool { return slices.Contains(f.Parsers, "json") })
	hasLogfmt := slices.ContainsFunc(df.Data, func(f detectedField) bool { return slices.Contains(f.Parsers, "logfmt") })
	if !hasJSON || !hasLogfmt {
		t.Fatalf("detected_fields lacks json or logfmt parsers: %+v", df.Data)
	}
	var dv struct {
		Data   []string `json:"data"`
		Values []string `json:"values"`
	}
	f.getJSON(t, "/loki/api/v1/detected_field/detected_level/values", url.Values{"query": {`{service_name="api"}`}, "limit": {"1000"}, "start": rng["start"], "end": rng["end"]}, grafanaHeaders, &dv)
	if !slices.Equal(dv.Data, []string{"error", "info", "warn"}) || !slices.Equal(dv.Values, dv.Data) {
		t.Fatalf("detected_level values: %+v", dv)
	}

	// Log context (LogContextProvider): the row's labels as the selector,
	// a small limit, the direction in capitals, start at the row.
	ctxQ := url.Values{"query": {`{env="dev", pod="w-1", service_name="worker"}`}, "limit": {"10"}, "direction": {"FORWARD"},
		"start": {ns(f.t0.Add(time.Minute))}, "end": {ns(f.t1)}}
	var ctxResp promResponse
	f.getJSON(t, "/loki/api/v1/query_range", ctxQ, grafanaHeaders, &ctxResp)
	var ctxStreams []struct{ Values [][2]string }
	if err := json.Unmarshal(ctxResp.Data.Result, &ctxStreams); err != nil {
		t.Fatal(err)
	}
	var ctxTimes []string
	for _, s := range ctxStreams { // one per detected_level: metadata joins the labels
		for _, v := range s.Values {
			ctxTimes = append(ctxTimes, v[0])
		}
	}
	slices.Sort(ctxTimes)
	if len(ctxTimes) != 10 || ctxTimes[0] != ns(f.t0.Add(time.Minute)) {
		t.Fatalf("log context: %s", ctxResp.Data.Result)
	}

	var series struct{ Data []map[string]string }
	f.getJSON(t, "/loki/api/v1/series", url.Values{"match[]": {`{service_name="worker"}`}, "start": rng["start"], "end": rng["end"]}, grafanaHeaders, &series)
	if len(series.Data) != 1 || series.Data[0]["pod"] != "w-1" {
		t.Fatalf("series: %v", series.Data)
	}
}

func TestDrilldownVolume(t *testing.T) {
	f := newFixture(t)
	v := url.Values{"query": {`{service_name=~".+"}`}, "start": {iso(f.t0)}, "end": {iso(f.t1)}, "limit": {"5000"}}
	var resp promResponse
	f.getJSON(t, "/loki/api/v1/index/volume", v, drilldownHeaders, &resp)
	var vec []vectorSample
	if err := json.Unmarshal(resp.Data.Result, &vec); err != nil || resp.Data.ResultType != "vector" {
		t.Fatalf("volume: %v %s", err, resp.Data.Result)
	}
	got := map[string]float64{}
	for _, s := range vec {
		if len(s.Metric) != 1 {
			t.Fatalf("volume grouped by more than the selector's label: %v", s.Metric)
		}
		ts, b := pointValue(t, s.Value)
		if ts != float64(f.t1.Unix()) {
			t.Fatalf("volume stamped %v, want the end %d", ts, f.t1.Unix())
		}
		got[s.Metric["service_name"]] = b
	}
	for svc, want := range f.bytes {
		if got[svc] != float64(want) {
			t.Errorf("volume of %s = %v, want %d", svc, got[svc], want)
		}
	}
	// Largest first, as Drilldown sorts them anyway.
	for i := 1; i < len(vec); i++ {
		_, a := pointValue(t, vec[i-1].Value)
		_, b := pointValue(t, vec[i].Value)
		if a < b {
			t.Fatalf("volumes not in descending order: %s", resp.Data.Result)
		}
	}

	// targetLabels, limit and aggregateBy=labels.
	v.Set("targetLabels", "env")
	v.Set("limit", "1")
	f.getJSON(t, "/loki/api/v1/index/volume", v, drilldownHeaders, &resp)
	vec = nil
	_ = json.Unmarshal(resp.Data.Result, &vec)
	if len(vec) != 1 || vec[0].Metric["env"] != "prod" {
		t.Fatalf("targetLabels=env limit=1: %s", resp.Data.Result)
	}
	v.Del("targetLabels")
	v.Set("limit", "100")
	v.Set("aggregateBy", "labels")
	f.getJSON(t, "/loki/api/v1/index/volume", v, drilldownHeaders, &resp)
	vec = nil
	_ = json.Unmarshal(resp.Data.Result, &vec)
	names := map[string]float64{}
	for _, s := range vec {
		for k := range s.Metric {
			_, names[k] = pointValue(t, s.Value)
		}
	}
	var all int64
	for _, b := range f.bytes {
		all += b
	}
	if names["service_name"] != float64(all) || names["env"] != float64(all) || names["request_id"] != float64(f.bytes["web"]) {
		t.Fatalf("aggregateBy=labels: %v (all %d, web %d)", names, all, f.bytes["web"])
	}

	// volume_range: a matrix whose steps add up to the total.
	rv := url.Values{"query": {`{service_name="api"}`}, "start": {iso(f.t0)}, "end": {iso(f.t1)}, "step": {"10m"}}
	f.getJSON(t, "/loki/api/v1/index/volume_range", rv, drilldownHeaders, &resp)
	var mat []matrixSeries
	if err := json.Unmarshal(resp.Data.Result, &mat); err != nil || resp.Data.ResultType != "matrix" || len(mat) != 1 {
		t.Fatalf("volume_range: %s", resp.Data.Result)
	}
	sum := 0.0
	for _, p := range mat[0].Values {
		ts, b := pointValue(t, p)
		if math.Mod(ts-float64(f.t0.Unix()), 600) != 0 {
			t.Fatalf("step time %v not on the 10m grid from start", ts)
		}
		sum += b
	}
	if len(mat[0].Values) != 6 || math.Abs(sum-float64(f.bytes["api"])) > 6 {
		t.Fatalf("volume_range: %d steps summing to %v, want 6 steps and %d bytes", len(mat[0].Values), sum, f.bytes["api"])
	}
}

func TestDrilldownPatterns(t *testing.T) {
	f := newFixture(t)
	v := url.Values{"query": {`{service_name="worker"}`}, "start": {iso(f.t0)}, "end": {iso(f.t1)}, "step": {"5m"}}
	var resp struct {
		Status string
		Data   []struct {
			Pattern string       `json:"pattern"`
			Level   string       `json:"level"`
			Samples [][2]float64 `json:"samples"`
		}
	}
	f.getJSON(t, "/loki/api/v1/patterns", v, drilldownHeaders, &resp)
	totals := map[string]float64{}
	for _, p := range resp.Data {
		for _, s := range p.Samples {
			if math.Mod(s[0], 300) != 0 || s[1] <= 0 {
				t.Fatalf("sample %v: want a 5m-aligned time in seconds and a positive count", s)
			}
			totals[p.Pattern+" @"+p.Level] += s[1]
		}
	}
	want := map[string]float64{
		"Job <_> finished in <_> ms @info": 240,
		"disk almost full on <_> @warn":    120,
	}
	for k, n := range want {
		if totals[k] != n {
			t.Errorf("%s: %v lines, want %v (all: %v)", k, totals[k], n, totals)
		}
	}
	// A line filter narrows the lines mined.
	v.Set("query", `{service_name="worker"} |= "disk"`)
	f.getJSON(t, "/loki/api/v1/patterns", v, drilldownHeaders, &resp)
	if len(resp.Data) != 1 || resp.Data[0].Pattern != "disk almost full on <_>" {
		t.Fatalf("filtered patterns: %+v", resp.Data)
	}
	// JSON and logfmt lines get patterns whose values vary.
	v.Set("query", `{service_name="api", pod="api-2"}`)
	f.getJSON(t, "/loki/api/v1/patterns", v, drilldownHeaders, &resp)
	found := false
	for _, p := range resp.Data {
		if p.Pattern == `level=<_> msg="connection refused" host=<_> latency=<_> retries=<_>` || p.Pattern == `level=error msg="connection refused" host=<_> latency=<_> retries=<_>` {
			found = true
		}
	}
	if !found {
		t.Fatalf("no logfmt pattern: %+v", resp.Data)
	}
}

func TestDrilldownDetectedLabels(t *testing.T) {
	f := newFixture(t)
	var resp struct {
		DetectedLabels []detectedLabel `json:"detectedLabels"`
	}
	// Drilldown sends an empty query for {}.
	f.getJSON(t, "/loki/api/v1/detected_labels", url.Values{"query": {""}, "start": {iso(f.t0)}, "end": {iso(f.t1)}}, drilldownHeaders, &resp)
	got := map[string]int{}
	for _, l := range resp.DetectedLabels {
		got[l.Label] = l.Cardinality
	}
	want := map[string]int{"env": 2, "pod": 3, "service_name": 3}
	if len(got) != len(want) {
		t.Fatalf("detected labels %v, want %v (request_id holds UUIDs only and is left out)", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s cardinality %d, want %d", k, got[k], n)
		}
	}
	f.getJSON(t, "/loki/api/v1/detected_labels", url.Values{"query": {`{service_name="api"}`}, "start": {iso(f.t0)}, "end": {iso(f.t1)}}, drilldownHeaders, &resp)
	got = map[string]int{}
	for _, l := range resp.DetectedLabels {
		got[l.Label] = l.Cardinality
	}
	if got["pod"] != 2 || got["service_name"] != 1 {
		t.Fatalf("detected labels of api: %v", got)
	}
}

func TestDrilldownDetectedFields(t *testing.T) {
	f := newFixture(t)
	v := url.Values{"query": {`{service_name="api"}`}, "start": {iso(f.t0)}, "end": {iso(f.t1)}}
	var resp struct {
		Fields []struct {
			Label       string   `json:"label"`
			Type        string   `json:"type"`
			Cardinality int      `json:"cardinality"`
			Parsers     []string `json:"parsers"`
			JSONPath    []string `json:"jsonPath"`
		} `json:"fields"`
	}
	f.getJSON(t, "/loki/api/v1/detected_fields", v, drilldownHeaders, &resp)
	type want struct {
		typ    string
		card   int
		parser string // "" for structured metadata: parsers null
		path   []string
	}
	wants := map[string]want{
		"status":         {"int", 3, "json", []string{"status"}},
		"duration":       {"duration", 50, "json", []string{"duration"}},
		"size":           {"bytes", 9, "json", []string{"size"}},
		"user_name":      {"string", 3, "json", []string{"user", "name"}},
		"cached":         {"boolean", 2, "json", []string{"cached"}},
		"latency":        {"duration", 360, "logfmt", nil},
		"retries":        {"int", 5, "logfmt", nil},
		"host":           {"string", 3, "logfmt", nil},
		"detected_level": {"string", 3, "", nil},
		"trace_id":       {"string", 360, "", nil},
	}
	got := map[string]bool{}
	for _, fl := range resp.Fields {
		w, ok := wants[fl.Label]
		if !ok {
			continue
		}
		got[fl.Label] = true
		if fl.Type != w.typ || fl.Cardinality != w.card || !slices.Equal(fl.JSONPath, w.path) {
			t.Errorf("%s: type %s cardinality %d path %v, want %s %d %v", fl.Label, fl.Type, fl.Cardinality, fl.JSONPath, w.typ, w.card, w.path)
		}
		if w.parser == "" && fl.Parsers != nil {
			t.Errorf("%s: parsers %v, want null for structured metadata", fl.Label, fl.Parsers)
		}
		if w.parser != "" && !slices.Equal(fl.Parsers, []string{w.parser}) {
			t.Errorf("%s: parsers %v, want [%s]", fl.Label, fl.Parsers, w.parser)
		}
	}
	for k := range wants {
		if !got[k] {
			t.Errorf("field %s not detected", k)
		}
	}
	// line_limit samples the newest lines only.
	v.Set("line_limit", "4")
	f.getJSON(t, "/loki/api/v1/detected_fields", v, drilldownHeaders, &resp)
	for _, fl := range resp.Fields {
		if fl.Label == "trace_id" && fl.Cardinality > 4 {
			t.Fatalf("line_limit=4 but trace_id has %d values", fl.Cardinality)
		}
	}
	// Values of a JSON field, as TagValuesProviders asks.
	var vals struct{ Values []string }
	f.getJSON(t, "/loki/api/v1/detected_field/status/values", url.Values{"query": {`{service_name="api"} | json`}, "limit": {"1000"}, "start": {iso(f.t0)}, "end": {iso(f.t1)}}, drilldownHeaders, &vals)
	if !slices.Equal(vals.Values, []string{"200", "404", "500"}) {
		t.Fatalf("status values: %v", vals.Values)
	}
}

func TestDrilldownConfigAndBuildInfo(t *testing.T) {
	f := newFixture(t)
	var cfg struct {
		Limits                 map[string]any `json:"limits"`
		PatternIngesterEnabled bool           `json:"pattern_ingester_enabled"`
		Version                string         `json:"version"`
	}
	f.getJSON(t, "/loki/api/v1/drilldown-limits", nil, drilldownHeaders, &cfg)
	if !cfg.PatternIngesterEnabled || cfg.Version != LokiCompatVersion || cfg.Limits["max_query_length"] != "4w2d1h" || cfg.Limits["volume_enabled"] != true {
		t.Fatalf("drilldown-limits: %+v", cfg)
	}
	var bi map[string]string
	f.getJSON(t, "/loki/api/v1/status/buildinfo", nil, nil, &bi)
	for _, k := range []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} {
		if _, ok := bi[k]; !ok {
			t.Errorf("buildinfo lacks %s: %v", k, bi)
		}
	}
	if bi["version"] != LokiCompatVersion || !strings.HasPrefix(bi["goVersion"], "go") {
		t.Fatalf("buildinfo: %v", bi)
	}
	var fq struct{ Status, Data string }
	f.getJSON(t, "/loki/api/v1/format_query", url.Values{"query": {`sum by(app)(rate({app="x"}|="a"[5m]))`}}, nil, &fq)
	if fq.Status != "success" || fq.Data != `sum by (app) (rate({app="x"} |= "a" [5m]))` {
		t.Fatalf("format_query: %+v", fq)
	}
}
