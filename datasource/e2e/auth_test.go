package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// createToken makes an API token in a data directory with the server's
// own CLI, as an operator does, and returns its secret.
func createToken(t *testing.T, dataDir, tenantID, scope string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(filepath.Join(h.dir, "logsift"), "token", "create", "-data-dir", dataDir, "-tenant", tenantID, "-scope", scope)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("token create: %v\n%s", err, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// TestCheckHealthWithAuth runs the health check against a server with API
// tokens on, through the built plugin, for each way the token and the
// tenant can be wrong: the message must say which.
func TestCheckHealthWithAuth(t *testing.T) {
	dataDir := filepath.Join(h.dir, "auth-data")
	query := createToken(t, dataDir, tenant, "query")
	push := createToken(t, dataDir, tenant, "push")
	srv, err := startServer(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", srv.log)
		}
	})

	check := func(id int64, token, jsonData string) *pluginv2.CheckHealthResponse {
		t.Helper()
		ds := settings(id, srv.url, jsonData)
		ds.DecryptedSecureJsonData = map[string]string{}
		if token != "" {
			ds.DecryptedSecureJsonData["apiToken"] = token
		}
		res, err := h.diagnostics.CheckHealth(context.Background(), &pluginv2.CheckHealthRequest{PluginContext: pluginContext(ds)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	cases := []struct {
		name, token, jsonData string
		ok                    bool
		want                  string
	}{
		{"right token and tenant", query, `{"tenant":"` + tenant + `"}`, true, "Connected to logsift"},
		{"tenant from the token", query, `{}`, true, "the default tenant"},
		{"no token", "", `{"tenant":"` + tenant + `"}`, false, "requires an API token: set API token in the datasource settings"},
		{"unknown token", "lsk_not-a-token", `{"tenant":"` + tenant + `"}`, false, "refused the API token (HTTP 401): the token is wrong, unknown or revoked"},
		{"push-only token", push, `{"tenant":"` + tenant + `"}`, false, "the datasource needs a token with the query scope"},
		{"another tenant", query, `{"tenant":"someone-else"}`, false, `refused the tenant "someone-else" for this API token (HTTP 403)`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := check(int64(100+i), c.token, c.jsonData)
			if (res.Status == pluginv2.CheckHealthResponse_OK) != c.ok || !strings.Contains(res.Message, c.want) {
				t.Errorf("status %v: %q\nwant ok=%v and %q", res.Status, res.Message, c.ok, c.want)
			}
			if !c.ok && strings.Contains(res.Message, query) {
				t.Errorf("the message shows the token: %q", res.Message)
			}
		})
	}
	// The token reaches queries as well: a panel gets the server's
	// refusal with its status.
	ds := settings(120, srv.url, `{"tenant":"`+tenant+`"}`)
	ds.DecryptedSecureJsonData = map[string]string{"apiToken": push}
	resp, err := h.data.QueryData(context.Background(), &pluginv2.QueryDataRequest{PluginContext: pluginContext(ds), Queries: []*pluginv2.DataQuery{{
		RefId: "A", TimeRange: &pluginv2.TimeRange{FromEpochMS: dataStart.UnixMilli(), ToEpochMS: dataEnd.UnixMilli()},
		Json: []byte(`{"expr":"{job=\"api\"}"}`),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Responses["A"]; r.Status != 403 || !strings.Contains(r.Error, "scope") {
		t.Errorf("query with a push token: %d %q", r.Status, r.Error)
	}
}
