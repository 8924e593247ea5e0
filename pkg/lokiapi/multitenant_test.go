package lokiapi

import (
	"context"
	"encoding/json"
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

// A query naming several tenants (X-Scope-OrgID: a|b) reads each one's
// streams with __tenant_id__ added, a matcher on that label picks tenants,
// metric queries can group by it, and the strictest limits apply.
func TestQueryAcrossTenants(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	base := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	for i, id := range []string{"team-a", "team-b", "team-c"} {
		var es []chunk.Entry
		for j := 0; j <= i; j++ {
			es = append(es, chunk.Entry{Timestamp: base + int64(j)*1e9, Line: []byte("error in " + id)})
		}
		if err := st.Append(context.Background(), id, []store.Stream{{Labels: labels.New("job", "api"), Entries: es}}); err != nil {
			t.Fatal(err)
		}
	}
	lim := DefaultLimits()
	lim.Overrides = map[string]Limits{"team-b": {MaxEntriesPerQuery: 10}}
	api := &API{Engine: &query.Engine{Store: st}, Store: st, Limits: lim, Tenants: tenant.Resolver{}}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	span := url.Values{"start": {time.Unix(0, base-1e9).Format(time.RFC3339Nano)}, "end": {time.Unix(0, base+1e10).Format(time.RFC3339Nano)}}
	q := func(expr, orgID string, extra url.Values) (int, string) {
		v := url.Values{"query": {expr}}
		for k, vs := range span {
			v[k] = vs
		}
		for k, vs := range extra {
			v[k] = vs
		}
		return get(t, srv, "/loki/api/v1/query_range", v, map[string]string{"X-Scope-OrgID": orgID})
	}

	code, body := q(`{job="api"}`, "team-a|team-b", nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var res struct {
		Data struct {
			Result []struct {
				Stream map[string]string `json:"stream"`
				Values [][2]string       `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range res.Data.Result {
		got[r.Stream["__tenant_id__"]] += len(r.Values)
		for _, v := range r.Values {
			if !strings.HasSuffix(v[1], r.Stream["__tenant_id__"]) {
				t.Errorf("line %q under tenant %s", v[1], r.Stream["__tenant_id__"])
			}
		}
	}
	if got["team-a"] != 1 || got["team-b"] != 2 || len(got) != 2 {
		t.Fatalf("entries by tenant %v, want team-a 1, team-b 2", got)
	}

	// A matcher on __tenant_id__ picks tenants.
	_, body = q(`{job="api", __tenant_id__=~"team-(b|c)"}`, "team-a|team-b|team-c", nil)
	if strings.Contains(body, `"team-a"`) || !strings.Contains(body, `"team-c"`) {
		t.Fatalf("tenant matcher: %s", body)
	}

	// A metric query groups by tenant.
	code, body = q(`sum by (__tenant_id__) (count_over_time({job="api"}[1m]))`, "team-a|team-c", url.Values{"step": {"5"}})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var mres struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &mres); err != nil {
		t.Fatal(err)
	}
	if len(mres.Data.Result) != 2 || mres.Data.Result[0].Metric["__tenant_id__"] != "team-a" || mres.Data.Result[1].Metric["__tenant_id__"] != "team-c" {
		t.Fatalf("series by tenant: %s", body)
	}

	// team-b's stricter entry limit applies to a query that names it.
	code, body = q(`{job="api"}`, "team-a|team-b", url.Values{"limit": {"100"}})
	if code != 400 || !strings.Contains(body, "max_entries_limit_per_query") {
		t.Fatalf("strictest limit: %d %s", code, body)
	}

	// Live tail follows one tenant and says so.
	if code, body := get(t, srv, "/loki/api/v1/tail", url.Values{"query": {`{job="api"}`}}, map[string]string{"X-Scope-OrgID": "team-a|team-b"}); code != 400 || !strings.Contains(body, "one tenant") {
		t.Fatalf("multi-tenant tail: %d %s", code, body)
	}
}
