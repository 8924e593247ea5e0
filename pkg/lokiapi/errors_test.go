package lokiapi

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestMalformedRequestsGet400 sends every endpoint requests a client may
// get wrong and checks for a 400 whose text says what is wrong.
func TestMalformedRequestsGet400(t *testing.T) {
	f := newFixture(t)
	start, end := iso(f.t0), iso(f.t1)
	cases := []struct {
		path string
		v    url.Values
		msg  string
	}{
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="api"} |= `}}, "parse error at line 1, col 25: syntax error: unexpected end of input"},
		{"/loki/api/v1/query_range", url.Values{"query": {"sum(rate({a=\"b\"}[5m])\n) by"}}, "parse error at line 2"},
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="api"}`}, "step": {"0"}}, "zero or negative query resolution step"},
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="api"}`}, "step": {"-5s"}}, "zero or negative query resolution step"},
		{"/loki/api/v1/query_range", url.Values{"query": {`rate({service_name="api"}[1m])`}, "start": {start}, "end": {end}, "step": {"100ms"}}, "maximum resolution of 11,000 points"},
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="api"}`}, "start": {end}, "end": {start}}, "end timestamp must not be before start time"},
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="api"}`}, "start": {"last tuesday"}}, "invalid start"},
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="api"}`}, "limit": {"-1"}}, "invalid limit"},
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="api"}`}, "interval": {"soon"}}, "invalid interval"},
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name=""}`}}, "parse error"},
		{"/loki/api/v1/query", url.Values{"query": {`{service_name="api"}`}}, "log queries are not supported as an instant query type"},
		{"/loki/api/v1/query", url.Values{"query": {`rate({service_name="api"}[1x])`}}, "parse error"},
		{"/loki/api/v1/query", url.Values{"query": {`count_over_time({service_name="api"}[5m])`}, "time": {"noon"}}, "invalid time"},
		{"/loki/api/v1/query", url.Values{}, "query parameter is required"},
		{"/loki/api/v1/index/stats", url.Values{}, "query parameter is required"},
		{"/loki/api/v1/index/stats", url.Values{"query": {`{service_name=}`}}, "parse error"},
		{"/loki/api/v1/index/volume", url.Values{"query": {`{service_name="api"}`}, "aggregateBy": {"pods"}}, "invalid aggregateBy"},
		{"/loki/api/v1/index/volume", url.Values{"query": {`{service_name="api"}`}, "targetLabels": {"env,bad-name"}}, "invalid label name \"bad-name\""},
		{"/loki/api/v1/index/volume", url.Values{"query": {`{service_name="api"}`}, "limit": {"0"}}, "invalid limit"},
		{"/loki/api/v1/index/volume_range", url.Values{"query": {`{service_name="api"}`}, "start": {start}, "end": {end}, "step": {"1ms"}}, "maximum resolution"},
		{"/loki/api/v1/patterns", url.Values{"query": {`count_over_time({service_name="api"}[1m])`}}, "expected a log query"},
		{"/loki/api/v1/patterns", url.Values{}, "query parameter is required"},
		{"/loki/api/v1/patterns", url.Values{"query": {`{service_name="api"} | line_format "{{.x"`}}, "line_format"},
		{"/loki/api/v1/detected_fields", url.Values{}, "query parameter is required"},
		{"/loki/api/v1/detected_fields", url.Values{"query": {`rate({service_name="api"}[1m])`}}, "need a log query"},
		{"/loki/api/v1/detected_fields", url.Values{"query": {`{service_name="api"}`}, "line_limit": {"many"}}, "invalid line_limit"},
		{"/loki/api/v1/detected_field/bad-name/values", url.Values{"query": {`{service_name="api"}`}}, "invalid field name"},
		{"/loki/api/v1/detected_labels", url.Values{"query": {`{service_name`}}, "parse error"},
		{"/loki/api/v1/format_query", url.Values{"query": {`sum(`}}, "parse error at line 1, col 5"},
		{"/loki/api/v1/format_query", url.Values{}, "query parameter is required"},
	}
	for _, tc := range cases {
		code, body := f.get(t, tc.path, tc.v, grafanaHeaders)
		if code != 400 || !strings.Contains(string(body), tc.msg) {
			t.Errorf("%s?%s: %d %q, want 400 containing %q", tc.path, tc.v.Encode(), code, body, tc.msg)
		}
	}
}

// TestLimitsSayWhatToChange checks each query limit, per tenant, and that
// its error names the setting.
func TestLimitsSayWhatToChange(t *testing.T) {
	f := newFixture(t)
	f.api.Limits.Overrides = map[string]Limits{
		drillTenant: {
			MaxQueryLength:    2 * time.Hour,
			MaxQuerySeries:    2,
			MaxQueryBytesRead: 1000,
			MaxQueryRange:     time.Hour,
		},
		"small": {MaxEntriesPerQuery: 10},
	}
	start, end := iso(f.t0), iso(f.t1)
	cases := []struct {
		path string
		v    url.Values
		code int
		msg  string
	}{
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="worker"}`}, "start": {iso(f.t0.Add(-3 * time.Hour))}, "end": {end}}, 400, "query.max_query_length"},
		{"/loki/api/v1/index/volume", url.Values{"query": {`{service_name="worker"}`}, "start": {iso(f.t0.Add(-3 * time.Hour))}, "end": {end}}, 400, "query.max_query_length"},
		{"/loki/api/v1/query_range", url.Values{"query": {`sum by (request_id) (count_over_time({service_name="web"}[1m]))`}, "start": {iso(f.t1.Add(-time.Minute))}, "end": {end}}, 400, "query.max_query_series"},
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="api"}`}, "start": {start}, "end": {end}}, 400, "query.max_query_bytes_read"},
		{"/loki/api/v1/detected_fields", url.Values{"query": {`{service_name="api"}`}, "start": {start}, "end": {end}}, 400, "query.max_query_bytes_read"},
		{"/loki/api/v1/query", url.Values{"query": {`count_over_time({service_name="worker"}[2h])`}, "time": {end}}, 400, "query.max_query_range"},
		// Within every limit: the newest minute of one small stream.
		{"/loki/api/v1/query_range", url.Values{"query": {`{service_name="worker"}`}, "start": {iso(f.t1.Add(-30 * time.Second))}, "end": {end}}, 200, `"resultType":"streams"`},
	}
	for _, tc := range cases {
		code, body := f.get(t, tc.path, tc.v, grafanaHeaders)
		if code != tc.code || !strings.Contains(string(body), tc.msg) {
			t.Errorf("%s?%s: %d %q, want %d containing %q", tc.path, tc.v.Encode(), code, body, tc.code, tc.msg)
		}
	}
	// Another tenant keeps the defaults but for its own override.
	small := map[string]string{"X-Scope-OrgID": "small"}
	if code, body := f.get(t, "/loki/api/v1/query_range", url.Values{"query": {`{a="b"}`}, "limit": {"11"}}, small); code != 400 || !strings.Contains(string(body), "max_entries_limit_per_query (11 > 10)") {
		t.Errorf("per-tenant entries limit: %d %s", code, body)
	}
	if code, body := f.get(t, "/loki/api/v1/query_range", url.Values{"query": {`{a="b"}`}, "limit": {"5000"}, "start": {iso(f.t0.Add(-100 * time.Hour))}, "end": {end}}, map[string]string{"X-Scope-OrgID": "other"}); code != 200 {
		t.Errorf("default tenant limits: %d %s", code, body)
	}
	// The entry limit does not apply to metric queries, as in Loki.
	if code, body := f.get(t, "/loki/api/v1/query_range", url.Values{"query": {`count_over_time({a="b"}[1m])`}, "limit": {"11"}}, small); code != 200 {
		t.Errorf("entry limit applied to a metric query: %d %s", code, body)
	}
	// A timeout answers 504 and names its setting.
	f.api.Limits.QueryTimeout = time.Nanosecond
	code, body := f.get(t, "/loki/api/v1/query_range", url.Values{"query": {`{service_name="worker"}`}, "start": {start}, "end": {end}}, map[string]string{"X-Scope-OrgID": "other"})
	if code != 504 || !strings.Contains(string(body), "query.query_timeout") {
		t.Errorf("timeout: %d %s", code, body)
	}
}
