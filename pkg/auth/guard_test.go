package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/tenant"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	t      *testing.T
	tokens *auth.TokenFile
	guard  *auth.Guard
	srv    *httptest.Server
	logs   *syncBuffer
	set    *metrics.Set
}

// newHarness serves h behind a Guard over a fresh tokens file. specs are
// created before the Guard starts; their secrets are returned in order.
func newHarness(t *testing.T, opts auth.Options, h http.Handler, specs ...auth.TokenSpec) (*harness, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta", "tokens.json")
	tf, err := auth.OpenTokenFile(path, auth.TokenFileOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tf.Close() })
	var secrets []string
	for _, s := range specs {
		secret, _, err := tf.Create(s)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, secret)
	}
	logs := &syncBuffer{}
	opts.Tokens = tf
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Metrics = metrics.NewSet()
	g, err := auth.NewGuard(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler(h))
	t.Cleanup(srv.Close)
	return &harness{t: t, tokens: tf, guard: g, srv: srv, logs: logs, set: opts.Metrics}, secrets
}

type reply struct {
	code int
	body string
	hdr  http.Header
}

// do sends a request; token "" sends none, org "" no X-Scope-OrgID.
func (h *harness) do(method, path, token, org string) reply {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if org != "" {
		req.Header.Set(tenant.Header, org)
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) reply {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: string(b), hdr: resp.Header}
}

// echo answers with what the handler sees of the request's identity.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	ctxOrg, _ := tenant.FromContext(r.Context())
	p, _ := auth.PrincipalFromContext(r.Context())
	out := map[string]any{"ctx": ctxOrg, "header": r.Header.Get(tenant.Header), "authorization": r.Header.Get("Authorization")}
	if p != nil {
		out["token"] = p.TokenID
		out["open"] = p.Open
	}
	_ = json.NewEncoder(w).Encode(out)
})

func seen(t *testing.T, r reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("answer %d %q is not the echo: %v", r.code, r.body, err)
	}
	return m
}

func TestOpenModeIsLoudAndResolvesTenants(t *testing.T) {
	h, _ := newHarness(t, auth.Options{}, echo)
	if !strings.Contains(h.logs.String(), "level=WARN") || !strings.Contains(h.logs.String(), "open mode") {
		t.Fatalf("open mode not logged as a warning:\n%s", h.logs)
	}
	if h.guard.Enabled() {
		t.Fatal("auth on without tokens in auto mode")
	}
	r := h.do("POST", "/loki/api/v1/push", "", "")
	if r.code != 200 || seen(t, r)["ctx"] != tenant.DefaultID || seen(t, r)["header"] != tenant.DefaultID {
		t.Fatalf("no header: %d %s", r.code, r.body)
	}
	r = h.do("GET", "/loki/api/v1/query_range", "", "b|a")
	if r.code != 200 || seen(t, r)["ctx"] != "a|b" {
		t.Fatalf("multi-tenant query: %d %s", r.code, r.body)
	}
	if r := h.do("POST", "/loki/api/v1/push", "", "a|b"); r.code != 400 {
		t.Fatalf("push to a|b: %d %s", r.code, r.body)
	}
	if r := h.do("POST", "/flush", "", ""); r.code != 200 || seen(t, r)["open"] != true {
		t.Fatalf("admin route in open mode: %d %s", r.code, r.body)
	}

	h2, _ := newHarness(t, auth.Options{Tenants: tenant.Resolver{Required: true}}, echo)
	if r := h2.do("GET", "/loki/api/v1/labels", "", ""); r.code != 401 || !strings.Contains(r.body, "no org id") {
		t.Fatalf("required header missing: %d %s", r.code, r.body)
	}
	h3, _ := newHarness(t, auth.Options{Tenants: tenant.Resolver{Default: "home"}}, echo)
	if r := h3.do("GET", "/loki/api/v1/labels", "", ""); seen(t, r)["ctx"] != "home" {
		t.Fatalf("default tenant: %s", r.body)
	}
}

func TestOffModeIgnoresTokens(t *testing.T) {
	h, _ := newHarness(t, auth.Options{Auth: auth.Config{Enabled: "false"}}, echo,
		auth.TokenSpec{Tenant: "a", Scopes: []auth.Scope{auth.ScopeQuery}})
	if h.guard.Enabled() {
		t.Fatal("auth.enabled=false but auth is on")
	}
	if r := h.do("POST", "/loki/api/v1/push", "", "x"); r.code != 200 || seen(t, r)["ctx"] != "x" {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if _, err := auth.NewGuard(auth.Options{Auth: auth.Config{Enabled: "maybe"}}); err == nil {
		t.Fatal("invalid auth.enabled accepted")
	}
	if _, err := auth.NewGuard(auth.Options{Auth: auth.Config{Enabled: "true"}}); err == nil {
		t.Fatal("auth.enabled=true without a tokens file accepted")
	}
}

func TestScopesAndTenants(t *testing.T) {
	h, s := newHarness(t, auth.Options{}, echo,
		auth.TokenSpec{Name: "promtail", Tenant: "team-a", Scopes: []auth.Scope{auth.ScopePush}},
		auth.TokenSpec{Name: "grafana-a", Tenant: "team-a", Scopes: []auth.Scope{auth.ScopeQuery}},
		auth.TokenSpec{Name: "grafana-b", Tenant: "team-b", Scopes: []auth.Scope{auth.ScopeQuery}},
		auth.TokenSpec{Name: "ops", Tenant: "ops", Scopes: []auth.Scope{auth.ScopeAdmin}, AllowedTenants: []string{"team-a", "team-b"}},
	)
	pushA, queryA, queryB, admin := s[0], s[1], s[2], s[3]
	if !h.guard.Enabled() {
		t.Fatal("auth off with tokens")
	}
	cases := []struct {
		name, method, path, token, org string
		code                           int
		tenant                         string
		bodyHas                        string
	}{
		{"no token", "GET", "/loki/api/v1/query_range", "", "", 401, "", "requires an API token"},
		{"garbage token", "GET", "/loki/api/v1/query_range", "hunter2", "", 401, "", "invalid"},
		{"unknown token", "GET", "/loki/api/v1/query_range", auth.SecretPrefix + strings.Repeat("x", auth.SecretLength-4), "", 401, "", "invalid"},
		{"push token queries", "GET", "/loki/api/v1/query_range", pushA, "", 403, "", `lacks the "query" scope`},
		{"push token pushes", "POST", "/loki/api/v1/push", pushA, "", 200, "team-a", ""},
		{"push token own tenant header", "POST", "/loki/api/v1/push", pushA, "team-a", 200, "team-a", ""},
		{"push token other tenant", "POST", "/loki/api/v1/push", pushA, "team-b", 403, "", `may not act for tenant "team-b"`},
		{"query token pushes", "POST", "/loki/api/v1/push", queryA, "", 403, "", `lacks the "push" scope`},
		{"query token queries", "GET", "/loki/api/v1/query_range", queryA, "", 200, "team-a", ""},
		{"query token tail", "GET", "/loki/api/v1/tail", queryB, "", 200, "team-b", ""},
		{"query token other tenant", "GET", "/loki/api/v1/labels", queryB, "team-a", 403, "", "may not act"},
		{"query token both tenants", "GET", "/loki/api/v1/labels", queryB, "team-a|team-b", 403, "", "may not act"},
		{"query token flush", "POST", "/flush", queryA, "", 403, "", `lacks the "admin" scope`},
		{"query token pprof", "GET", "/debug/pprof/heap", queryA, "", 403, "", "admin"},
		{"unclassified route needs admin", "GET", "/something/new", queryA, "", 403, "", "admin"},
		{"admin flush", "POST", "/flush", admin, "", 200, "ops", ""},
		{"query token compact", "POST", "/compact", queryA, "", 403, "", `lacks the "admin" scope`},
		{"admin compact", "POST", "/compact", admin, "", 200, "ops", ""},
		{"admin queries allowed tenant", "GET", "/loki/api/v1/labels", admin, "team-b", 200, "team-b", ""},
		{"admin queries across tenants", "GET", "/loki/api/v1/labels", admin, "team-b|team-a", 200, "team-a|team-b", ""},
		{"admin other tenant", "GET", "/loki/api/v1/labels", admin, "team-c", 403, "", "may not act"},
		{"admin invalid header", "GET", "/loki/api/v1/labels", admin, "a/b", 400, "", "unsupported character"},
		{"ready open", "GET", "/ready", "", "", 200, "", ""},
		{"metrics open", "GET", "/metrics", "", "", 200, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.method, c.path, c.token, c.org)
			if r.code != c.code {
				t.Fatalf("status %d, want %d: %s", r.code, c.code, r.body)
			}
			if c.bodyHas != "" && !strings.Contains(r.body, c.bodyHas) {
				t.Fatalf("body %q lacks %q", r.body, c.bodyHas)
			}
			if r.code == 401 && r.hdr.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if c.tenant != "" {
				m := seen(t, r)
				if m["ctx"] != c.tenant || m["header"] != c.tenant {
					t.Fatalf("handler saw context %v header %v, want %s", m["ctx"], m["header"], c.tenant)
				}
				if m["authorization"] != "" {
					t.Fatal("the token reached the handler")
				}
			}
		})
	}

	// Basic auth with the token as password, as Promtail and Grafana send.
	req, _ := http.NewRequest("POST", h.srv.URL+"/loki/api/v1/push", nil)
	req.SetBasicAuth("anything", pushA)
	if r := h.send(req); r.code != 200 || seen(t, r)["ctx"] != "team-a" {
		t.Fatalf("basic auth: %d %s", r.code, r.body)
	}
	req.SetBasicAuth("team-a", "wrong")
	if r := h.send(req); r.code != 401 {
		t.Fatalf("basic auth with a bad password: %d", r.code)
	}
	req.Header.Set("Authorization", "Digest x")
	if r := h.send(req); r.code != 401 {
		t.Fatalf("unsupported scheme: %d", r.code)
	}

	// Revoking a token locks it out without a restart.
	if _, err := h.tokens.Revoke("grafana-a"); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", "/loki/api/v1/labels", queryA, ""); r.code != 401 {
		t.Fatalf("revoked token: %d %s", r.code, r.body)
	}

	text := metricsText(h.set)
	for _, want := range []string{`logsift_auth_requests_total{result="forbidden"}`, `logsift_auth_requests_total{result="unauthenticated"}`,
		`logsift_tenant_requests_total{tenant="team-a",scope="push"}`, `logsift_tenant_request_errors_total{route="/loki/api/v1/push",tenant="team-a",code="403"}`,
		`logsift_auth_tokens{state="revoked"} 1`, `logsift_auth_open_mode 0`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(h.logs.String(), pushA) || strings.Contains(h.logs.String(), queryA) {
		t.Fatal("a token was logged")
	}
}

func metricsText(set *metrics.Set) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	return b.String()
}

func TestProtectMetrics(t *testing.T) {
	h, s := newHarness(t, auth.Options{Auth: auth.Config{ProtectMetrics: true}}, echo,
		auth.TokenSpec{Tenant: "a", Scopes: []auth.Scope{auth.ScopeQuery}},
		auth.TokenSpec{Tenant: "ops", Scopes: []auth.Scope{auth.ScopeAdmin}})
	if r := h.do("GET", "/metrics", "", ""); r.code != 401 {
		t.Fatalf("protected /metrics without token: %d", r.code)
	}
	if r := h.do("GET", "/metrics", s[0], ""); r.code != 403 {
		t.Fatalf("protected /metrics with query token: %d", r.code)
	}
	if r := h.do("GET", "/metrics", s[1], ""); r.code != 200 {
		t.Fatalf("protected /metrics with admin token: %d", r.code)
	}
}

// Auto mode turns auth on when the first token appears, without a
// restart, and does not turn it off again.
func TestAutoModeSwitchesOn(t *testing.T) {
	h, _ := newHarness(t, auth.Options{}, echo)
	if r := h.do("GET", "/loki/api/v1/labels", "", "x"); r.code != 200 {
		t.Fatalf("open mode: %d", r.code)
	}
	// The CLI adds a token to the file of the running server.
	cli, err := auth.OpenTokenFile(h.tokens.Path(), auth.TokenFileOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := cli.Create(auth.TokenSpec{Tenant: "x", Scopes: []auth.Scope{auth.ScopeQuery}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", "/loki/api/v1/labels", "", "x"); r.code != 401 {
		t.Fatalf("after the first token, no token: %d", r.code)
	}
	if r := h.do("GET", "/loki/api/v1/labels", secret, ""); r.code != 200 {
		t.Fatalf("after the first token, with it: %d %s", r.code, r.body)
	}
	if !strings.Contains(h.logs.String(), "auth is now ON") {
		t.Fatalf("switch not logged:\n%s", h.logs)
	}
	// Revoking every token locks the server; it does not open it.
	if _, err := cli.Revoke(secretID(t, cli)); err != nil {
		t.Fatal(err)
	}
	if err := h.tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", "/loki/api/v1/labels", "", "x"); r.code != 401 {
		t.Fatalf("after revoking every token: %d", r.code)
	}
}

func secretID(t *testing.T, tf *auth.TokenFile) string {
	t.Helper()
	l := tf.List()
	if len(l) != 1 {
		t.Fatalf("%d tokens", len(l))
	}
	return l[0].ID
}

// The status wrapper must not hide the connection from WebSocket
// upgrades (live tail) or flushes (streamed answers).
func TestHijackAndFlushThroughGuard(t *testing.T) {
	hijacked := make(chan error, 1)
	h, _ := newHarness(t, auth.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.URL.Path == "/loki/api/v1/query_range" {
			w.Write([]byte("x"))
			if err := rc.Flush(); err != nil {
				t.Errorf("flush: %v", err)
			}
			return
		}
		conn, _, err := rc.Hijack()
		hijacked <- err
		if err == nil {
			conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			conn.Close()
		}
	}))
	h.do("GET", "/loki/api/v1/tail", "", "")
	if err := <-hijacked; err != nil {
		t.Fatalf("hijack through the guard: %v", err)
	}
	if r := h.do("GET", "/loki/api/v1/query_range", "", ""); r.code != 200 || r.body != "x" {
		t.Fatalf("%d %q", r.code, r.body)
	}
}

func TestTokenAPIAndClient(t *testing.T) {
	mux := http.NewServeMux()
	h, s := newHarness(t, auth.Options{}, mux,
		auth.TokenSpec{Name: "root", Tenant: "ops", Scopes: []auth.Scope{auth.ScopeAdmin}},
		auth.TokenSpec{Name: "reader", Tenant: "a", Scopes: []auth.Scope{auth.ScopeQuery}})
	(&auth.TokenAPI{Tokens: h.tokens}).Register(mux)
	mux.Handle("/loki/api/v1/labels", echo)
	ctx := context.Background()

	reader := &auth.Client{URL: h.srv.URL, Token: s[1]}
	if _, err := reader.List(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("query token listed tokens: %v", err)
	}
	admin := &auth.Client{URL: h.srv.URL, Token: s[0]}
	v, err := admin.Create(ctx, auth.TokenSpec{Name: "promtail", Tenant: "b", Scopes: []auth.Scope{auth.ScopePush, auth.ScopeQuery}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.Token, auth.SecretPrefix) || v.Tenant != "b" || v.ID == "" {
		t.Fatalf("created %+v", v)
	}
	// Usable at once.
	if r := h.do("GET", "/loki/api/v1/labels", v.Token, ""); r.code != 200 || seen(t, r)["ctx"] != "b" {
		t.Fatalf("new token: %d %s", r.code, r.body)
	}
	list, err := admin.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("listed %d tokens", len(list))
	}
	for _, tv := range list {
		if tv.Token != "" {
			t.Fatal("a listing shows a secret")
		}
	}
	if _, err := admin.Create(ctx, auth.TokenSpec{Tenant: "a|b", Scopes: []auth.Scope{auth.ScopeQuery}}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("invalid spec: %v", err)
	}
	rv, err := admin.Revoke(ctx, v.ID)
	if err != nil || rv.Revoked.IsZero() {
		t.Fatalf("revoke: %+v %v", rv, err)
	}
	if r := h.do("GET", "/loki/api/v1/labels", v.Token, ""); r.code != 401 {
		t.Fatalf("revoked token: %d", r.code)
	}
	if _, err := admin.Revoke(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("revoke unknown: %v", err)
	}

	// Without the Guard, the API refuses everything.
	bare := httptest.NewServer(func() http.Handler {
		m := http.NewServeMux()
		(&auth.TokenAPI{Tokens: h.tokens}).Register(m)
		return m
	}())
	defer bare.Close()
	if _, err := (&auth.Client{URL: bare.URL}).List(ctx); err == nil {
		t.Fatal("token API without the guard answered")
	}
}

func TestShedInflight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	h, _ := newHarness(t, auth.Options{Overload: auth.OverloadConfig{MaxInflightRequests: 2, MaxConcurrentQueries: -1}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ready" {
				return
			}
			entered <- struct{}{}
			<-release
		}))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); h.do("POST", "/loki/api/v1/push", "", "") }()
	}
	<-entered
	<-entered
	r := h.do("POST", "/loki/api/v1/push", "", "")
	if r.code != 503 || r.hdr.Get("Retry-After") == "" || !strings.Contains(r.body, "max_inflight_requests") {
		t.Fatalf("third request: %d %q retry=%q", r.code, r.body, r.hdr.Get("Retry-After"))
	}
	// Health checks and admin routes are not shed.
	if r := h.do("GET", "/ready", "", ""); r.code != 200 {
		t.Fatalf("/ready while saturated: %d", r.code)
	}
	close(release)
	wg.Wait()
	if r := h.do("POST", "/loki/api/v1/push", "", ""); r.code != 200 {
		t.Fatalf("after the load: %d", r.code)
	}
	if !strings.Contains(metricsText(h.set), `logsift_overload_rejected_total{reason="inflight"} 1`) {
		t.Fatal("shed request not counted")
	}
}

func TestShedMemory(t *testing.T) {
	runtime.GC() // the live heap is known from the first collection on
	h, _ := newHarness(t, auth.Options{Overload: auth.OverloadConfig{MemoryHighWaterBytes: 1}}, echo)
	r := h.do("GET", "/loki/api/v1/labels", "", "")
	if r.code != 503 || r.hdr.Get("Retry-After") == "" || !strings.Contains(r.body, "high-water") {
		t.Fatalf("above the high-water mark: %d %q", r.code, r.body)
	}
	if r := h.do("POST", "/flush", "", ""); r.code != 200 {
		t.Fatalf("admin route shed: %d", r.code)
	}
	h2, _ := newHarness(t, auth.Options{Overload: auth.OverloadConfig{MemoryHighWaterBytes: -1}}, echo)
	if r := h2.do("GET", "/loki/api/v1/labels", "", ""); r.code != 200 {
		t.Fatalf("memory shedding off: %d", r.code)
	}
}

func TestBreakerShedsFailingTenant(t *testing.T) {
	h, _ := newHarness(t, auth.Options{Overload: auth.OverloadConfig{Breaker: auth.BreakerConfig{MinFailures: 3, Cooldown: time.Hour}}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(tenant.Header) == "sick" && r.URL.Path == "/loki/api/v1/query_range" {
				http.Error(w, "query timed out", http.StatusGatewayTimeout)
				return
			}
			w.Write([]byte("ok"))
		}))
	for i := 0; i < 3; i++ {
		if r := h.do("GET", "/loki/api/v1/query_range", "", "sick"); r.code != 504 {
			t.Fatalf("query %d: %d", i, r.code)
		}
	}
	r := h.do("GET", "/loki/api/v1/query_range", "", "sick")
	if r.code != 503 || !strings.Contains(r.body, "circuit breaker") || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("after three timeouts: %d %q", r.code, r.body)
	}
	if r := h.do("GET", "/loki/api/v1/query_range", "", "healthy"); r.code != 200 {
		t.Fatalf("another tenant: %d %s", r.code, r.body)
	}
	// Pushes of the failing tenant are not queries.
	if r := h.do("POST", "/loki/api/v1/push", "", "sick"); r.code != 200 {
		t.Fatalf("push of the tenant with an open breaker: %d", r.code)
	}
	if !strings.Contains(h.logs.String(), "circuit breaker opened") {
		t.Fatal("opening not logged")
	}
}

// A tenant flooding queries meets its own limit: its excess gets 429 at
// once, while another tenant's queries all run, even while every one of
// the first tenant's slots is held.
func TestQueryFloodIsolation(t *testing.T) {
	const limit, queued, flood = 2, 3, 20
	release := make(chan struct{})
	var mu sync.Mutex
	running := map[string]int{}
	h, _ := newHarness(t, auth.Options{Overload: auth.OverloadConfig{MaxConcurrentQueries: limit, MaxQueuedQueries: queued, QueueTimeout: time.Hour}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			org := r.Header.Get(tenant.Header)
			mu.Lock()
			running[org]++
			mu.Unlock()
			if org == "flood" {
				<-release
			}
			w.Write([]byte("ok"))
		}))
	codes := make(chan int, flood)
	var wg sync.WaitGroup
	for i := 0; i < flood; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- h.do("GET", "/loki/api/v1/query_range", "", "flood").code
		}()
	}
	// Wait until the flood holds its slots and fills its queue: the rest
	// of it is refused at once.
	refused := 0
	for refused < flood-limit-queued {
		c := <-codes
		if c != http.StatusTooManyRequests {
			t.Fatalf("flood request answered %d before its slots freed", c)
		}
		refused++
	}
	r := h.do("GET", "/loki/api/v1/query_range", "", "flood")
	if r.code != 429 || !strings.Contains(r.body, "too many outstanding requests") || !strings.Contains(r.body, "max_concurrent_queries") || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("flood: %d %q", r.code, r.body)
	}
	// The other tenant runs every query while the flood is stuck.
	quiet := 0
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if r := h.do("GET", "/loki/api/v1/query_range", "", "quiet"); r.code == 200 {
			quiet++
		}
		lat = append(lat, time.Since(start))
	}
	if quiet != 20 {
		t.Fatalf("quiet tenant: %d of 20 queries succeeded while another tenant flooded", quiet)
	}
	mu.Lock()
	if running["flood"] != limit {
		t.Fatalf("flood ran %d queries at once, limit %d", running["flood"], limit)
	}
	mu.Unlock()
	t.Logf("quiet tenant latencies while flooded: %v", lat)
	close(release)
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		if c == 200 {
			ok++
		}
	}
	if ok != limit+queued {
		t.Fatalf("%d flood queries ran in the end, want %d (running + queued)", ok, limit+queued)
	}
	if !strings.Contains(metricsText(h.set), `logsift_overload_rejected_total{reason="tenant_queries"}`) {
		t.Fatal("429s not counted")
	}
}

func TestQueueTimeout(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h, _ := newHarness(t, auth.Options{Overload: auth.OverloadConfig{MaxConcurrentQueries: 1, QueueTimeout: 20 * time.Millisecond}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
		}))
	done := make(chan struct{})
	go func() { h.do("GET", "/loki/api/v1/query_range", "", ""); close(done) }()
	<-entered
	if r := h.do("GET", "/loki/api/v1/query_range", "", ""); r.code != 429 {
		t.Fatalf("waiter past the queue timeout: %d", r.code)
	}
	close(release)
	<-done
}

func TestTailLimit(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h, _ := newHarness(t, auth.Options{Overload: auth.OverloadConfig{MaxConcurrentTails: 1, MaxInflightRequests: 1}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/loki/api/v1/tail" {
				entered <- struct{}{}
				<-release
			}
		}))
	done := make(chan struct{})
	go func() { h.do("GET", "/loki/api/v1/tail", "", "a"); close(done) }()
	<-entered
	if r := h.do("GET", "/loki/api/v1/tail", "", "a"); r.code != 429 || !strings.Contains(r.body, "max_concurrent_tail_requests") {
		t.Fatalf("second tail: %d %q", r.code, r.body)
	}
	// A held tail is not a request in flight.
	if r := h.do("GET", "/loki/api/v1/labels", "", "a"); r.code != 200 {
		t.Fatalf("query beside an open tail with max_inflight_requests=1: %d %s", r.code, r.body)
	}
	close(release)
	<-done
}

// BenchmarkGuard measures what the Guard adds to a request: token check,
// tenant resolution, header rewrite, query slot and breaker.
func BenchmarkGuard(b *testing.B) {
	tf, err := auth.OpenTokenFile(filepath.Join(b.TempDir(), "tokens.json"), auth.TokenFileOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer tf.Close()
	secret, _, err := tf.Create(auth.TokenSpec{Tenant: "a", Scopes: []auth.Scope{auth.ScopeQuery, auth.ScopePush}})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"none", "token", "open"} {
		b.Run(mode, func(b *testing.B) {
			opts := auth.Options{Tokens: tf, Metrics: metrics.NewSet(), Logger: slog.New(slog.DiscardHandler)}
			if mode == "open" {
				opts.Auth.Enabled = "false"
			}
			g, err := auth.NewGuard(opts)
			if err != nil {
				b.Fatal(err)
			}
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			if mode != "none" {
				h = g.Handler(h)
			}
			req := httptest.NewRequest("GET", "/loki/api/v1/query_range", nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.ServeHTTP(w, req)
			}
		})
	}
}
