package plugin

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

const buildInfoLogsift = `{"version":"3.5.0","revision":"abc","branch":"HEAD","goVersion":"go1.26","application":"logsift","logsiftVersion":"v0.4.0"}`

func checkHealth(t *testing.T, in *Instance) *backend.CheckHealthResult {
	t.Helper()
	res, err := in.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCheckHealth(t *testing.T) {
	cases := []struct {
		name      string
		buildinfo func(f *fakeServer)
		labels    func(f *fakeServer)
		ok        bool
		want      string
	}{
		{
			name:      "ok",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 200, buildInfoLogsift) },
			labels: func(f *fakeServer) {
				f.answer("/loki/api/v1/labels", 200, `{"status":"success","data":["file","job"]}`)
			},
			ok: true, want: `Connected to logsift v0.4.0 (Loki API 3.5.0); "team-a" has 2 labels`,
		},
		{
			name:      "loki",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 200, `{"version":"3.4.2"}`) },
			labels:    func(f *fakeServer) { f.answer("/loki/api/v1/labels", 200, `{"status":"success","data":[]}`) },
			ok:        true, want: `Connected to Loki 3.4.2. No logs for "team-a" in the last 24 hours: if you expected some, check the tenant.`,
		},
		{
			name:      "old loki",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 200, `{"version":"2.9.4"}`) },
			want:      "version mismatch",
		},
		{
			name:      "not loki",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 200, `<html>hello</html>`) },
			want:      "is not a logsift or Loki server: its version check did not answer JSON",
		},
		{
			name: "wrong path",
			want: "answered 404",
		},
		{
			name:      "bad token",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 401, `invalid token`) },
			want:      "refused the API token (HTTP 401)",
		},
		{
			name:      "tenant required",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 200, buildInfoLogsift) },
			labels:    func(f *fakeServer) { f.answer("/loki/api/v1/labels", 401, "no org id\n") },
			want:      "requires a tenant: set Tenant",
		},
		{
			name:      "bad tenant",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 200, buildInfoLogsift) },
			labels: func(f *fakeServer) {
				f.answer("/loki/api/v1/labels", 400, `tenant ID "team a" has the unsupported character ' ' at byte 4`)
			},
			want: `rejected the tenant "team-a"`,
		},
		{
			// logsift with authentication refuses the version check too.
			name: "tenant refused at the version check",
			buildinfo: func(f *fakeServer) {
				f.answer("/loki/api/v1/status/buildinfo", 400, `tenant ID "team a" has the unsupported character ' ' at byte 4`)
			},
			want: `rejected the tenant "team-a"`,
		},
		{
			name: "token lacks the query scope",
			buildinfo: func(f *fakeServer) {
				f.answer("/loki/api/v1/status/buildinfo", 403, `forbidden: token tok1 lacks the "query" scope this route needs (it has push); create a token with --scope query`)
			},
			want: "the datasource needs a token with the query scope",
		},
		{
			name: "token of another tenant",
			buildinfo: func(f *fakeServer) {
				f.answer("/loki/api/v1/status/buildinfo", 403, `token tok1 is bound to tenant "ops" and may not act for tenant "team-a" (named in X-Scope-OrgID)`)
			},
			want: `refused the tenant "team-a" for this API token (HTTP 403)`,
		},
		{
			name:      "forbidden at the labels call",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 200, buildInfoLogsift) },
			labels:    func(f *fakeServer) { f.answer("/loki/api/v1/labels", 403, `forbidden`) },
			want:      "connected to logsift v0.4.0 (Loki API 3.5.0), but it refused the API token (HTTP 403): forbidden",
		},
		{
			name:      "server error",
			buildinfo: func(f *fakeServer) { f.answer("/loki/api/v1/status/buildinfo", 200, buildInfoLogsift) },
			labels:    func(f *fakeServer) { f.answer("/loki/api/v1/labels", 503, `server overloaded`) },
			want:      "answered HTTP 503 to listing labels: server overloaded",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeServer(t)
			if c.buildinfo != nil {
				c.buildinfo(f)
			}
			if c.labels != nil {
				c.labels(f)
			}
			res := checkHealth(t, testInstance(t, f.srv.URL))
			if (res.Status == backend.HealthStatusOk) != c.ok || !strings.Contains(res.Message, c.want) {
				t.Errorf("status %v message %q, want ok=%v and %q", res.Status, res.Message, c.ok, c.want)
			}
			if c.ok {
				var d map[string]any
				if err := json.Unmarshal(res.JSONDetails, &d); err != nil || d["version"] == nil {
					t.Errorf("details %s: %v", res.JSONDetails, err)
				}
				if got := f.last("/loki/api/v1/labels").header.Get("X-Scope-OrgID"); got != "team-a" {
					t.Errorf("tenant header %q", got)
				}
			}
		})
	}
}

func TestCheckHealthWithoutToken(t *testing.T) {
	f := newFakeServer(t)
	f.answer("/loki/api/v1/status/buildinfo", 401, "unauthenticated: this server requires an API token")
	in := newInstance(backend.DataSourceInstanceSettings{URL: f.srv.URL})
	t.Cleanup(in.Dispose)
	res := checkHealth(t, in)
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "requires an API token: set API token in the datasource settings") {
		t.Errorf("no token: %q", res.Message)
	}
}

func TestCheckHealthUnreachable(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := checkHealth(t, testInstance(t, "http://"+addr))
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "connection refused; is the logsift server running") {
		t.Errorf("refused: %q", res.Message)
	}
	res = checkHealth(t, testInstance(t, "http://no-such-host.invalid:3100"))
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "cannot resolve the host") {
		t.Errorf("dns: %q", res.Message)
	}
	in := newInstance(backend.DataSourceInstanceSettings{URL: "localhost:3100"})
	res = checkHealth(t, in)
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "must start with http:// or https://") {
		t.Errorf("bad url: %q", res.Message)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string][3]int{"3.5.0": {3, 5, 0}, "v2.9.10": {2, 9, 10}, "3.1": {3, 1, 0}, "3.0.0-rc.1": {3, 0, 0}} {
		if got, ok := parseVersion(in); !ok || got != want {
			t.Errorf("%s: %v %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "main-abc", "3", "a.b.c", "1.2.3.4"} {
		if _, ok := parseVersion(in); ok {
			t.Errorf("%q parsed", in)
		}
	}
}
