package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
)

// running is a server started on loopback ports for one test.
type running struct {
	srv  *Server
	url  string
	stop func()
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	cfg.HTTPListenAddress = "127.0.0.1:0"
	cfg.GRPCListenAddress = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return &running{srv: srv, url: "http://" + srv.Addr(), stop: stop}
}

func do(t *testing.T, method, u, token, orgID string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if orgID != "" {
		req.Header.Set("X-Scope-OrgID", orgID)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func createToken(t *testing.T, tf *auth.TokenFile, tenant string, scopes ...auth.Scope) string {
	t.Helper()
	secret, _, err := tf.Create(auth.TokenSpec{Name: tenant + "-" + string(scopes[0]), Tenant: tenant, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// The wired server: tokens decide tenant and scope on every route, the
// workspace API answers behind them, search events reach an SSE client,
// and workspaces survive a restart.
func TestServerWiring(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Auth.Enabled = "true"
	// Tokens are created in the file before the server reads it.
	tf, err := auth.OpenTokenFile(auth.DefaultTokensPath(dir), auth.TokenFileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin := createToken(t, tf, "team-a", auth.ScopeAdmin)
	pushA := createToken(t, tf, "team-a", auth.ScopePush)
	queryA := createToken(t, tf, "team-a", auth.ScopeQuery)
	queryB := createToken(t, tf, "team-b", auth.ScopeQuery)
	tf.Close()

	r := start(t, cfg)
	ctx := context.Background()

	// Without a token nothing but /ready and /metrics answers.
	if code, _ := do(t, "GET", r.url+"/loki/api/v1/labels", "", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("labels without a token: %d, want 401", code)
	}
	if code, _ := do(t, "GET", r.url+"/ready", "", "", nil); code != http.StatusOK {
		t.Fatalf("/ready: %d", code)
	}

	// Events: an SSE client of team-a listens before the search runs.
	sseCtx, sseCancel := context.WithCancel(ctx)
	defer sseCancel()
	req, _ := http.NewRequestWithContext(sseCtx, "GET", r.url+"/api/v1/events?types=search.completed", nil)
	req.Header.Set("Authorization", "Bearer "+queryA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events: %d %s", resp.StatusCode, b)
	}
	sse := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				sse <- line
			}
		}
		close(sse)
	}()

	// Push as team-a; the push token cannot query.
	now := time.Now()
	push := &lokiclient.Client{URL: r.url, Token: pushA}
	err = push.Push(ctx, []lokiclient.Stream{{
		Labels:  labels.New("job", "api"),
		Entries: []chunk.Entry{{Timestamp: now.UnixNano(), Line: []byte("secret of team a: connection refused")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"query": {`{job="api"} |= "refused"`}, "start": {now.Add(-time.Hour).Format(time.RFC3339Nano)}, "end": {now.Add(time.Minute).Format(time.RFC3339Nano)}}
	if code, _ := do(t, "GET", r.url+"/loki/api/v1/query_range?"+q.Encode(), pushA, "", nil); code != http.StatusForbidden {
		t.Fatalf("query with a push token: %d, want 403", code)
	}
	code, body := do(t, "GET", r.url+"/loki/api/v1/query_range?"+q.Encode(), queryA, "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), "secret of team a") {
		t.Fatalf("team-a query: %d %s", code, body)
	}
	// team-b's token sees nothing, and cannot name team-a in the header.
	code, body = do(t, "GET", r.url+"/loki/api/v1/query_range?"+q.Encode(), queryB, "", nil)
	if code != http.StatusOK || strings.Contains(string(body), "secret") {
		t.Fatalf("team-b query: %d %s", code, body)
	}
	if code, _ := do(t, "GET", r.url+"/loki/api/v1/query_range?"+q.Encode(), queryB, "team-a", nil); code != http.StatusForbidden {
		t.Fatalf("team-b naming team-a: %d, want 403", code)
	}

	// The search event reached team-a's stream with the query and count;
	// team-b's search did not.
	select {
	case line, ok := <-sse:
		if !ok {
			t.Fatal("event stream ended")
		}
		var ev struct {
			Type, Tenant, Actor string
			Search              struct {
				QueryID string `json:"query_id"`
				Query   string
				Results int
			}
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %s: %v", line, err)
		}
		if ev.Type != "search.completed" || ev.Tenant != "team-a" || ev.Search.Results != 1 || ev.Search.QueryID == "" || !strings.Contains(ev.Search.Query, "refused") || ev.Actor != "token:team-a-query" {
			t.Fatalf("search event: %s", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no search.completed event within 5s")
	}

	// Workspaces: create as the pusher, list as the reader, deleting
	// needs admin.
	code, body = do(t, "POST", r.url+"/api/v1/workspaces", pushA, "", map[string]any{"name": "case-4711", "description": "customer bundle"})
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("create workspace: %d %s", code, body)
	}
	if code, _ := do(t, "DELETE", r.url+"/api/v1/workspaces/case-4711?confirm=case-4711", pushA, "", nil); code != http.StatusForbidden {
		t.Fatalf("delete with a push token: %d, want 403", code)
	}
	if code, body := do(t, "GET", r.url+"/api/v1/workspaces", queryB, "", nil); code != http.StatusOK || strings.Contains(string(body), "case-4711") {
		t.Fatalf("team-b lists team-a's workspace: %d %s", code, body)
	}
	// Tokens API: admin only.
	if code, _ := do(t, "GET", r.url+"/api/v1/tokens", queryA, "", nil); code != http.StatusForbidden {
		t.Fatalf("tokens with a query token: %d, want 403", code)
	}
	if code, body := do(t, "GET", r.url+"/api/v1/tokens", admin, "", nil); code != http.StatusOK || !strings.Contains(string(body), "team-b-query") {
		t.Fatalf("tokens as admin: %d %s", code, body)
	}

	// /compact, like /flush, is for admins and answers when done; the
	// data reads the same after it and after the restart below.
	if code, _ := do(t, "POST", r.url+"/compact", queryA, "", nil); code != http.StatusForbidden {
		t.Fatalf("/compact with a query token: %d, want 403", code)
	}
	if code, body := do(t, "GET", r.url+"/compact", admin, "", nil); code != http.StatusMethodNotAllowed || !strings.Contains(string(body), "POST") {
		t.Fatalf("GET /compact: %d %s, want 405 saying to use POST", code, body)
	}
	if code, body := do(t, "POST", r.url+"/flush", admin, "", nil); code != http.StatusNoContent {
		t.Fatalf("/flush: %d %s", code, body)
	}
	if code, body := do(t, "POST", r.url+"/compact", admin, "", nil); code != http.StatusNoContent {
		t.Fatalf("/compact: %d %s", code, body)
	}
	code, body = do(t, "GET", r.url+"/loki/api/v1/query_range?"+q.Encode(), queryA, "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), "secret of team a") {
		t.Fatalf("team-a query after /compact: %d %s", code, body)
	}

	// Live tail over WebSocket passes the guard, the metrics and the
	// tracing wrappers (each must let the connection be hijacked).
	tailCtx, tailCancel := context.WithTimeout(ctx, 10*time.Second)
	defer tailCancel()
	conn, _, err := websocket.Dial(tailCtx, "ws"+strings.TrimPrefix(r.url, "http")+"/loki/api/v1/tail?query="+url.QueryEscape(`{job="api"}`),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + queryA}}})
	if err != nil {
		t.Fatalf("tail: %v", err)
	}
	defer conn.CloseNow()
	err = push.Push(ctx, []lokiclient.Stream{{
		Labels:  labels.New("job", "api"),
		Entries: []chunk.Entry{{Timestamp: time.Now().UnixNano(), Line: []byte("tailed line")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, msg, err := conn.Read(tailCtx)
		if err != nil {
			t.Fatalf("tail read: %v", err)
		}
		if strings.Contains(string(msg), "tailed line") {
			break
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")

	// /metrics (open to scrapers) shows the store, the queries and the
	// events.
	code, body = do(t, "GET", r.url+"/metrics", "", "", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{"logsift_store_disk_bytes ", "logsift_store_head_bytes ", `logsift_query_duration_seconds_bucket{kind="logs",status="ok"`,
		`logsift_events_total{type="search.completed"}`, `logsift_events_total{type="workspace.created"}`, "logsift_auth_requests_total", "go_goroutines "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Restart: the workspace and the data are still there.
	sseCancel()
	r.stop()
	r = start(t, cfg)
	code, body = do(t, "GET", r.url+"/api/v1/workspaces/case-4711", queryA, "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), "customer bundle") {
		t.Fatalf("workspace after restart: %d %s", code, body)
	}
	code, body = do(t, "GET", r.url+"/loki/api/v1/query_range?"+q.Encode(), queryA, "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), "secret of team a") {
		t.Fatalf("data after restart: %d %s", code, body)
	}
	// The audit log recorded the workspace's creation with the token.
	if r.srv.audit == nil {
		t.Fatal("audit log is off by default")
	}
}

// A server that fails to start (a bad setting after the store opened)
// releases what it opened, so that the data directory can be opened again.
func TestNewCleansUpOnError(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Auth.Enabled = "sometimes"
	if _, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "auth.enabled") {
		t.Fatalf("bad auth.enabled: %v", err)
	}
	cfg.Auth.Enabled = ""
	cfg.Events.Journal.MaxBytes = -1
	if _, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "events.journal") {
		t.Fatalf("negative events.journal.max_bytes: %v", err)
	}
	cfg.Events.Journal.MaxBytes = 0
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("reopen after a failed start: %v", err)
	}
	if err := srv.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
