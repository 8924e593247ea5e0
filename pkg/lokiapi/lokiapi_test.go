package lokiapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

func TestParseTime(t *testing.T) {
	def := time.Unix(42, 0)
	cases := map[string]int64{
		"":                                    42e9,
		"1700000000":                          1700000000e9,
		"1700000000123456789":                 1700000000123456789,
		"1700000000.5":                        1700000000500000000,
		"2023-11-14T22:13:20Z":                1700000000e9,
		"2023-11-14T22:13:20.25+00:00":        1700000000250000000,
		"2023-11-14T23:13:20.000000001+01:00": 1700000000000000001,
	}
	for in, want := range cases {
		got, err := ParseTime("start", in, def)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got.UnixNano() != want {
			t.Errorf("%q = %d, want %d", in, got.UnixNano(), want)
		}
	}
	for _, bad := range []string{"yesterday", "12:00", "1e400.0", "NaN.", "nan.0", "+Inf.0", "-inf."} {
		if _, err := ParseTime("start", bad, def); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "1.5": 1500 * time.Millisecond, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute, "0": 0} {
		if got, err := ParseDuration("since", in); err != nil || got != want {
			t.Errorf("%q = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"NaN", "nan", "Inf", "-Inf", "-5", "-5m", "1e300", "soon", ""} {
		if d, err := ParseDuration("since", bad); err == nil {
			t.Errorf("%q accepted as %v", bad, d)
		} else if !strings.Contains(err.Error(), "since") {
			t.Errorf("%q: error %q does not name the parameter", bad, err)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	in := []byte("a\"b\\c\n\t\x01\xffé\u2028z")
	got := string(appendJSONString(nil, in))
	var back string
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatalf("%s is not valid JSON: %v", got, err)
	}
	want, _ := json.Marshal(string(in)) // encoding/json's view of the same bytes
	var wantBack string
	_ = json.Unmarshal(want, &wantBack)
	if back != wantBack {
		t.Fatalf("decoded %q, encoding/json gives %q", back, wantBack)
	}
}

// server runs the API over a real store with a few entries.
func server(t *testing.T) (*httptest.Server, int64) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	base := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	es := []chunk.Entry{
		{Timestamp: base, Line: []byte("first line")},
		{Timestamp: base + 1e9, Line: []byte(`{"level":"warn","msg":"second"}`), Metadata: labels.New("trace_id", "abc")},
		{Timestamp: base + 2e9, Line: []byte("third line")},
	}
	if err := st.Append(context.Background(), "team-a", []store.Stream{{Labels: labels.New("job", "api", "env", "prod"), Entries: es}}); err != nil {
		t.Fatal(err)
	}
	api := &API{Engine: &query.Engine{Store: st}, Store: st, Limits: DefaultLimits(), Tenants: tenant.Resolver{}}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, base
}

func get(t *testing.T, srv *httptest.Server, path string, v url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path+"?"+v.Encode(), nil)
	for k, val := range hdr {
		req.Header.Set(k, val)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestQueryRangeShapes(t *testing.T) {
	srv, base := server(t)
	v := url.Values{"query": {`{job="api"}`}, "start": {time.Unix(0, base-1).Format(time.RFC3339Nano)}, "end": {time.Unix(0, base+1e10).Format(time.RFC3339Nano)}, "direction": {"forward"}}
	tenantA := map[string]string{"X-Scope-OrgID": "team-a"}

	// Without categorize-labels, metadata joins the stream labels.
	code, body := get(t, srv, "/loki/api/v1/query_range", v, tenantA)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var resp struct {
		Status string
		Data   struct {
			ResultType string
			Result     []struct {
				Stream map[string]string
				Values [][]any
			}
			Stats map[string]any
		}
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != "success" || resp.Data.ResultType != "streams" || len(resp.Data.Result) != 2 {
		t.Fatalf("unexpected answer: %s", body)
	}
	if resp.Data.Stats["summary"] == nil {
		t.Fatalf("no stats summary: %s", body)
	}
	var withTrace int
	for _, s := range resp.Data.Result {
		if s.Stream["trace_id"] == "abc" {
			withTrace++
			if len(s.Values) != 1 || s.Values[0][0] != "1717243201000000000" {
				t.Fatalf("metadata stream: %v", s.Values)
			}
		}
	}
	if withTrace != 1 {
		t.Fatalf("metadata did not join the labels: %s", body)
	}

	// With it, one stream and the metadata as the third element; a parser
	// adds "parsed".
	v.Set("query", `{job="api"} | json`)
	code, body = get(t, srv, "/loki/api/v1/query_range", v, map[string]string{"X-Scope-OrgID": "team-a", "X-Loki-Response-Encoding-Flags": "categorize-labels"})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if !strings.Contains(body, `"structuredMetadata":{"trace_id":"abc"}`) || !strings.Contains(body, `"parsed":{"level":"warn","msg":"second"}`) {
		t.Fatalf("categorized answer lacks metadata or parsed labels: %s", body)
	}

	// Another tenant sees nothing.
	v.Set("query", `{job="api"}`)
	code, body = get(t, srv, "/loki/api/v1/query_range", v, map[string]string{"X-Scope-OrgID": "team-b"})
	if code != 200 || !strings.Contains(body, `"result":[]`) {
		t.Fatalf("team-b: %d %s", code, body)
	}
}

func TestLabelsAndSeries(t *testing.T) {
	srv, base := server(t)
	v := url.Values{"start": {time.Unix(0, base-1).Format(time.RFC3339)}, "end": {time.Unix(0, base+1e10).Format(time.RFC3339)}}
	h := map[string]string{"X-Scope-OrgID": "team-a"}
	if code, body := get(t, srv, "/loki/api/v1/labels", v, h); code != 200 || body != `{"data":["env","job"],"status":"success"}`+"\n" {
		t.Fatalf("labels: %d %s", code, body)
	}
	if code, body := get(t, srv, "/loki/api/v1/label/job/values", v, h); code != 200 || !strings.Contains(body, `"data":["api"]`) {
		t.Fatalf("values: %d %s", code, body)
	}
	sv := url.Values{"match[]": {`{env="prod"}`}, "start": v["start"], "end": v["end"]}
	if code, body := get(t, srv, "/loki/api/v1/series", sv, h); code != 200 || !strings.Contains(body, `{"env":"prod","job":"api"}`) {
		t.Fatalf("series: %d %s", code, body)
	}
}

func TestErrorsAreLokiShaped(t *testing.T) {
	srv, _ := server(t)
	h := map[string]string{"X-Scope-OrgID": "team-a"}
	cases := []struct {
		v    url.Values
		code int
		msg  string
	}{
		{url.Values{"query": {`{job="api"} |= `}}, 400, "parse error at line 1, col"},
		{url.Values{}, 400, "query parameter is required"},
		{url.Values{"query": {`{job="api"}`}, "limit": {"abc"}}, 400, "invalid limit"},
		{url.Values{"query": {`{job="api"}`}, "limit": {"100000"}}, 400, "max_entries_limit_per_query"},
		{url.Values{"query": {`{job="api"}`}, "direction": {"up"}}, 400, "invalid direction"},
		{url.Values{"query": {`{job="api"}`}, "start": {"2024-01-02T00:00:00Z"}, "end": {"2024-01-01T00:00:00Z"}}, 400, "before start"},
		{url.Values{"query": {`{job="api"}`}, "step": {"often"}}, 400, "invalid step"},
	}
	for _, tc := range cases {
		code, body := get(t, srv, "/loki/api/v1/query_range", tc.v, h)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%v: %d %q, want %d containing %q", tc.v, code, body, tc.code, tc.msg)
		}
	}
	if code, body := get(t, srv, "/loki/api/v1/label/bad-name/values", nil, h); code != 400 {
		t.Errorf("bad label name: %d %s", code, body)
	}
}
