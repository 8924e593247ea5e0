package workspace

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/tenant"
)

type apiClient struct {
	t   *testing.T
	url string
}

func newAPI(t *testing.T, f *fixture, resolver tenant.Resolver) *apiClient {
	t.Helper()
	mux := http.NewServeMux()
	(&HTTP{Service: f.svc, Tenants: resolver}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &apiClient{t: t, url: srv.URL}
}

// do sends a request and decodes the JSON answer into a map.
func (c *apiClient) do(method, path, tenantID, body string) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if tenantID != "" {
		req.Header.Set(tenant.Header, tenantID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Fatalf("%s %s: content type %q, body %s", method, path, ct, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

// expectError checks the status code and that the body is {"error": ...}
// containing want.
func (c *apiClient) expectError(code int, want, method, path, tenantID, body string) {
	c.t.Helper()
	got, out := c.do(method, path, tenantID, body)
	msg, _ := out["error"].(string)
	if got != code || msg == "" || !strings.Contains(msg, want) || len(out) != 1 {
		c.t.Errorf("%s %s %s: %d %v, want %d with an error containing %q", method, path, body, got, out, code, want)
	}
}

func TestHTTPWorkspaceCRUD(t *testing.T) {
	f := newFixture(t)
	c := newAPI(t, f, tenant.Resolver{})

	code, w := c.do("POST", "/api/v1/workspaces", "t1", `{"name":"case-1","description":"bundle","labels":{"team":"a"}}`)
	if code != http.StatusCreated || w["name"] != "case-1" || w["tenant"] != "t1" || w["description"] != "bundle" {
		t.Fatalf("create: %d %v", code, w)
	}
	code, list := c.do("GET", "/api/v1/workspaces", "t1", "")
	if ws, _ := list["workspaces"].([]any); code != 200 || len(ws) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	// Without the header the request belongs to the default tenant, which
	// has nothing.
	code, list = c.do("GET", "/api/v1/workspaces", "", "")
	if ws, _ := list["workspaces"].([]any); code != 200 || ws == nil || len(ws) != 0 {
		t.Fatalf("default tenant list: %d %v", code, list)
	}
	code, w = c.do("PATCH", "/api/v1/workspaces/case-1", "t1", `{"name":"case-2","description":"renamed"}`)
	if code != 200 || w["name"] != "case-2" || w["description"] != "renamed" {
		t.Fatalf("rename: %d %v", code, w)
	}
	if aliases, _ := w["aliases"].([]any); len(aliases) != 1 || aliases[0] != "case-1" {
		t.Fatalf("aliases after rename: %v", w["aliases"])
	}
	code, w = c.do("POST", "/api/v1/workspaces/case-2/sources", "t1", `{"kind":"tail","path":"/var/log/*.log","host":"h1"}`)
	if srcs, _ := w["sources"].([]any); code != 200 || len(srcs) != 1 {
		t.Fatalf("add source: %d %v", code, w)
	}
	code, w = c.do("GET", "/api/v1/workspaces/case-2/sources", "t1", "")
	if srcs, _ := w["sources"].([]any); code != 200 || len(srcs) != 1 {
		t.Fatalf("sources: %d %v", code, w)
	}
	code, w = c.do("DELETE", "/api/v1/workspaces/case-2?confirm=case-2", "t1", "")
	if code != 200 || w["deleted"] != "case-2" || w["deleted_streams"] != float64(3) {
		t.Fatalf("delete: %d %v", code, w)
	}
	if calls := f.data.Calls(); len(calls) != 1 || calls[0].matchers[0].String() != `workspace=~"case-2|case-1"` {
		t.Fatalf("data deletion %+v", calls)
	}
	c.expectError(404, "not found", "GET", "/api/v1/workspaces/case-2", "t1", "")
}

func TestHTTPErrors(t *testing.T) {
	f := newFixture(t)
	c := newAPI(t, f, tenant.Resolver{})
	mustCreate(t, f.svc, "t1", "w")

	c.expectError(400, "unsupported character", "POST", "/api/v1/workspaces", "t1", `{"name":"bad name"}`)
	c.expectError(400, "must start with", "POST", "/api/v1/workspaces", "t1", `{"name":"-x"}`)
	c.expectError(400, "empty", "POST", "/api/v1/workspaces", "t1", `{"name":""}`)
	c.expectError(400, "request body", "POST", "/api/v1/workspaces", "t1", `{"name":`)
	c.expectError(400, "unknown field", "POST", "/api/v1/workspaces", "t1", `{"nmae":"x"}`)
	c.expectError(400, "empty", "POST", "/api/v1/workspaces", "t1", ``)
	c.expectError(400, "more than one", "POST", "/api/v1/workspaces", "t1", `{"name":"a"}{"name":"b"}`)
	c.expectError(409, "already exists", "POST", "/api/v1/workspaces", "t1", `{"name":"w"}`)
	c.expectError(404, "not found", "GET", "/api/v1/workspaces/nope", "t1", "")
	c.expectError(400, "unsupported character", "GET", "/api/v1/workspaces/a%20b", "t1", "")
	c.expectError(404, "not found", "PATCH", "/api/v1/workspaces/nope", "t1", `{"name":"x"}`)
	c.expectError(404, "not found", "DELETE", "/api/v1/workspaces/nope?confirm=nope", "t1", "")
	c.expectError(405, "not allowed", "PUT", "/api/v1/workspaces/w", "t1", `{}`)
	c.expectError(404, "no such workspace API path", "GET", "/api/v1/workspaces/w/nothing/here", "t1", "")

	// Deletion needs the confirmation, and the right one.
	c.expectError(400, "confirm=w", "DELETE", "/api/v1/workspaces/w", "t1", "")
	c.expectError(400, "confirm", "DELETE", "/api/v1/workspaces/w?confirm=W", "t1", "")
	if len(f.data.Calls()) != 0 {
		t.Fatal("data deleted without confirmation")
	}

	// Another tenant does not see t1's workspace.
	c.expectError(404, "not found", "GET", "/api/v1/workspaces/w", "t2", "")
	c.expectError(404, "not found", "DELETE", "/api/v1/workspaces/w?confirm=w", "t2", "")
	c.expectError(400, "several tenants", "GET", "/api/v1/workspaces", "t1|t2", "")
	c.expectError(400, "unsupported character", "GET", "/api/v1/workspaces", "t/1", "")

	// Too large a body.
	big := `{"name":"x","description":"` + strings.Repeat("d", maxBodyBytes) + `"}`
	c.expectError(413, "too large", "POST", "/api/v1/workspaces", "t1", big)

	// A server that requires the header.
	strict := newAPI(t, f, tenant.Resolver{Required: true})
	strict.expectError(401, "no org id", "GET", "/api/v1/workspaces", "", "")

	// A server that cannot delete data.
	svc, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	mustCreate(t, svc, "t1", "w")
	noData := newAPI(t, &fixture{svc: svc}, tenant.Resolver{})
	noData.expectError(501, "cannot delete stored data", "DELETE", "/api/v1/workspaces/w?confirm=w", "t1", "")
}

func TestHTTPRunsAndCancellation(t *testing.T) {
	f := newFixture(t)
	c := newAPI(t, f, tenant.Resolver{})

	code, run := c.do("POST", "/api/v1/workspaces/case-9/runs", "t1", `{"host":"laptop","source":"bundle.zip","files":3,"bytes":300}`)
	if code != http.StatusCreated || run["status"] != "running" || run["workspace"] != "case-9" {
		t.Fatalf("start run: %d %v", code, run)
	}
	id := run["id"].(string)
	runPath := "/api/v1/workspaces/case-9/runs/" + id

	code, run = c.do("POST", runPath+"/progress", "t1", `{"counters":{"files_done":1,"bytes_done":100,"lines":10},"errors":["x.log: unreadable"]}`)
	counters, _ := run["counters"].(map[string]any)
	if code != 200 || run["status"] != "running" || counters["files_done"] != float64(1) || counters["files"] != float64(3) || run["error_count"] != float64(1) {
		t.Fatalf("progress: %d %v", code, run)
	}
	c.expectError(400, "no status", "POST", runPath+"/progress", "t1", `{"status":"completed","counters":{}}`)
	c.expectError(400, "must not be negative", "POST", runPath+"/progress", "t1", `{"counters":{"lines":-5}}`)

	// The run is not reachable through another workspace or tenant.
	mustCreate(t, f.svc, "t1", "other")
	c.expectError(404, "not found", "GET", "/api/v1/workspaces/other/runs/"+id, "t1", "")
	c.expectError(404, "not found", "POST", "/api/v1/workspaces/other/runs/"+id+"/cancel", "t1", "")
	c.expectError(404, "not found", "GET", runPath, "t2", "")
	c.expectError(404, "not found", "POST", runPath+"/cancel", "t2", "")
	c.expectError(400, "invalid run ID", "GET", "/api/v1/workspaces/case-9/runs/ZZZ", "t1", "")

	// Cancel from the server; the agent's poll and next report see it.
	code, run = c.do("POST", runPath+"/cancel", "t1", "")
	if code != 200 || run["status"] != "cancelled" || run["cancel_requested"] == nil {
		t.Fatalf("cancel: %d %v", code, run)
	}
	if !f.svc.IsCancelled(id) {
		t.Fatal("IsCancelled false after the HTTP cancel")
	}
	if code, run = c.do("GET", runPath, "t1", ""); code != 200 || run["status"] != "cancelled" {
		t.Fatalf("poll after cancel: %d %v", code, run)
	}
	if code, run = c.do("POST", runPath+"/progress", "t1", `{"counters":{"files_done":2}}`); code != 200 || run["status"] != "cancelled" {
		t.Fatalf("report after cancel: %d %v", code, run)
	}
	c.expectError(400, "finishes as", "POST", runPath+"/finish", "t1", `{"status":"done"}`)
	if code, run = c.do("POST", runPath+"/finish", "t1", `{"status":"cancelled","counters":{"files_done":2}}`); code != 200 || run["finished"] == nil {
		t.Fatalf("agent confirms: %d %v", code, run)
	}
	c.expectError(409, "takes no more progress", "POST", runPath+"/progress", "t1", `{"counters":{}}`)
	c.expectError(409, "already finished", "POST", runPath+"/finish", "t1", `{"status":"completed"}`)

	code, list := c.do("GET", "/api/v1/workspaces/case-9/runs?limit=5", "t1", "")
	if runs, _ := list["runs"].([]any); code != 200 || len(runs) != 1 {
		t.Fatalf("runs: %d %v", code, list)
	}
	c.expectError(400, "limit", "GET", "/api/v1/workspaces/case-9/runs?limit=-1", "t1", "")
	c.expectError(404, "not found", "GET", "/api/v1/workspaces/none/runs", "t1", "")

	// Runs stay reachable under a former name of the workspace.
	if _, err := f.svc.Rename(t.Context(), "t1", "case-9", "case-10"); err != nil {
		t.Fatal(err)
	}
	if code, run = c.do("GET", runPath, "t1", ""); code != 200 || run["workspace"] != "case-10" {
		t.Fatalf("run under a former name: %d %v", code, run)
	}
}

func TestHTTPLocationHeader(t *testing.T) {
	f := newFixture(t)
	mux := http.NewServeMux()
	(&HTTP{Service: f.svc}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/workspaces", bytes.NewBufferString(`{"name":"loc"}`)))
	if rec.Code != 201 || rec.Header().Get("Location") != "/api/v1/workspaces/loc" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Location"))
	}
}
