package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// The test: a token without the query scope gets 403, and another
// tenant's token sees nothing, through the real query API and store.
func TestAnotherTenantsTokenSeesNothing(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	base := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	es := []chunk.Entry{
		{Timestamp: base.UnixNano(), Line: []byte("secret of team a: connection refused")},
		{Timestamp: base.Add(time.Second).UnixNano(), Line: []byte("another line of team a")},
	}
	if err := st.Append(context.Background(), "team-a", []store.Stream{{Labels: labels.New("job", "api"), Entries: es}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// The API resolves the tenant from the header, as it did before auth;
	// the Guard has replaced the header with the authenticated tenant.
	api := &lokiapi.API{Engine: &query.Engine{Store: st}, Store: st, Limits: lokiapi.DefaultLimits(), Tenants: tenant.Resolver{}}
	api.Register(mux)
	h, s := newHarness(t, auth.Options{}, mux,
		auth.TokenSpec{Tenant: "team-a", Scopes: []auth.Scope{auth.ScopeQuery}},
		auth.TokenSpec{Tenant: "team-b", Scopes: []auth.Scope{auth.ScopeQuery}},
		auth.TokenSpec{Tenant: "team-a", Scopes: []auth.Scope{auth.ScopePush}})
	tokA, tokB, pushA := s[0], s[1], s[2]

	q := url.Values{
		"query": {`{job="api"}`},
		"start": {fmt.Sprint(base.Add(-time.Minute).UnixNano())},
		"end":   {fmt.Sprint(base.Add(time.Minute).UnixNano())},
	}
	path := "/loki/api/v1/query_range?" + q.Encode()
	lines := func(token, org string) (int, []string) {
		r := h.do("GET", path, token, org)
		if r.code != 200 {
			return r.code, nil
		}
		var resp struct {
			Data struct {
				Result []struct {
					Values [][2]string `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		var out []string
		for _, s := range resp.Data.Result {
			for _, v := range s.Values {
				out = append(out, v[1])
			}
		}
		return r.code, out
	}
	if code, got := lines(tokA, ""); code != 200 || len(got) != 2 {
		t.Fatalf("team a's token: %d %v", code, got)
	}
	if code, got := lines(tokB, ""); code != 200 || len(got) != 0 {
		t.Fatalf("team b's token saw team a's data: %d %v", code, got)
	}
	if code, _ := lines(tokB, "team-a"); code != 403 {
		t.Fatalf("team b's token naming team a: %d", code)
	}
	if code, _ := lines(pushA, ""); code != 403 {
		t.Fatalf("push-only token queried: %d", code)
	}
	if code, _ := lines("", "team-a"); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	// Label and series listings follow the same tenant.
	r := h.do("GET", "/loki/api/v1/labels?start=0", tokB, "")
	if r.code != 200 || strings.Contains(r.body, "job") {
		t.Fatalf("team b's labels: %d %s", r.code, r.body)
	}
	r = h.do("GET", "/loki/api/v1/labels?start=0", tokA, "")
	if r.code != 200 || !strings.Contains(r.body, "job") {
		t.Fatalf("team a's labels: %d %s", r.code, r.body)
	}
}

// countingAppender counts what each tenant got appended.
type countingAppender struct {
	mu    sync.Mutex
	lines map[string]int
}

func (a *countingAppender) Append(_ context.Context, id string, streams []store.Stream) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range streams {
		a.lines[id] += len(s.Entries)
	}
	return nil
}

// The test: a tenant over its ingestion rate gets 429 with
// Retry-After, and the other tenants are not slowed: every one of their
// pushes is taken while the first tenant is being refused.
func TestPushRateLimitIsolation(t *testing.T) {
	app := &countingAppender{lines: map[string]int{}}
	lim := ingest.DefaultLimits()
	lim.IngestionRateMB = 4096.0 / (1 << 20) // 4 KiB/s
	lim.IngestionBurstSizeMB = 8192.0 / (1 << 20)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	push := ingest.NewHandler(app, ingest.Config{Limits: &lim, Metrics: metrics.NewSet(), Now: func() time.Time { return now }})
	mux := http.NewServeMux()
	mux.Handle("/loki/api/v1/push", push)
	h, s := newHarness(t, auth.Options{}, mux,
		auth.TokenSpec{Tenant: "noisy", Scopes: []auth.Scope{auth.ScopePush}},
		auth.TokenSpec{Tenant: "calm", Scopes: []auth.Scope{auth.ScopePush}})
	noisy, calm := s[0], s[1]

	body := func(i int) string {
		line := strings.Repeat("x", 1000)
		return fmt.Sprintf(`{"streams":[{"stream":{"job":"app"},"values":[["%d","%s %d"]]}]}`, now.UnixNano()+int64(i), line, i)
	}
	send := func(token string, i int) (int, string) {
		req, _ := http.NewRequest("POST", h.srv.URL+"/loki/api/v1/push", strings.NewReader(body(i)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		r := h.send(req)
		return r.code, r.hdr.Get("Retry-After")
	}
	var noisyOK, noisy429, calmOK int
	for i := 0; i < 40; i++ {
		code, retry := send(noisy, i)
		switch code {
		case http.StatusNoContent:
			noisyOK++
		case http.StatusTooManyRequests:
			noisy429++
			if retry == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("noisy push %d: %d", i, code)
		}
		// The calm tenant pushes a little between the noisy pushes.
		if i%10 == 0 {
			if code, _ := send(calm, i); code == http.StatusNoContent {
				calmOK++
			}
		}
	}
	if noisy429 == 0 || noisyOK == 0 {
		t.Fatalf("noisy tenant: %d taken, %d refused; want both", noisyOK, noisy429)
	}
	if calmOK != 4 {
		t.Fatalf("calm tenant: %d of 4 pushes taken while another tenant was over its rate", calmOK)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if app.lines["calm"] != 4 || app.lines["noisy"] != noisyOK {
		t.Fatalf("appended %v", app.lines)
	}
}
