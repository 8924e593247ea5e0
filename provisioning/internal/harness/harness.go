// Package harness runs the parts the provisioning tests check their files
// against: a real logsift server on loopback (pkg/server, started in this
// process) and the Grafana datasource plugin's backend (datasource/plugin)
// configured against it, so that a dashboard panel or an alert rule query
// runs exactly as Grafana would have the plugin run it.
package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/logsift/logsift/agent"
	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/importer"
	"github.com/logsift/logsift/datasource/plugin"
	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/server"
)

// Env is a running server and a plugin instance pointed at it.
type Env struct {
	// URL is the server's HTTP base URL (http://127.0.0.1:port).
	URL string
	// Client pushes and queries over the Loki API.
	Client *lokiclient.Client
	// DS is the plugin's datasource instance, with the settings the
	// provisioned datasource file gives (URL replaced by the test server's).
	DS     *plugin.Instance
	Server *server.Server
}

// Start runs a server on a new data directory and a plugin instance with
// jsonData (the provisioned datasource's, or nil for defaults). Both stop
// when the test ends.
func Start(t testing.TB, jsonData json.RawMessage) *Env {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPListenAddress = "127.0.0.1:0"
	cfg.GRPCListenAddress = "127.0.0.1:0"
	cfg.Limits = ingest.DefaultLimits()
	cfg.Query = lokiapi.DefaultLimits()
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start the logsift server: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s")
		}
	})
	url := "http://" + srv.Addr()
	if err := waitReady(url); err != nil {
		t.Fatal(err)
	}
	if jsonData == nil {
		jsonData = json.RawMessage(`{}`)
	}
	inst, err := plugin.NewInstance(context.Background(), backend.DataSourceInstanceSettings{
		UID: "logsift", Name: "logsift", Type: plugin.ID, URL: url, JSONData: jsonData,
	})
	if err != nil {
		t.Fatalf("plugin instance: %v", err)
	}
	ds := inst.(*plugin.Instance)
	t.Cleanup(ds.Dispose)
	return &Env{URL: url, Client: &lokiclient.Client{URL: url}, DS: ds, Server: srv}
}

func waitReady(url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server at %s not ready within 10s", url)
}

// Push sends streams through the Loki push API (protobuf+snappy), the
// path Promtail, Alloy and the demo use.
func (e *Env) Push(t testing.TB, streams []lokiclient.Stream) {
	t.Helper()
	if err := e.Client.Push(context.Background(), streams); err != nil {
		t.Fatalf("push: %v", err)
	}
}

// Query runs one query model (the JSON a panel or an alert rule stores)
// through the plugin's QueryData over [from, to]. alert sets Grafana's
// FromAlert header, as the alerting engine does.
func (e *Env) Query(t testing.TB, model json.RawMessage, from, to time.Time, interval time.Duration, alert bool) backend.DataResponse {
	t.Helper()
	var head struct {
		RefID string `json:"refId"`
	}
	_ = json.Unmarshal(model, &head)
	if head.RefID == "" {
		head.RefID = "A"
	}
	req := &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{PluginID: plugin.ID},
		Queries: []backend.DataQuery{{
			RefID:         head.RefID,
			JSON:          model,
			TimeRange:     backend.TimeRange{From: from, To: to},
			Interval:      interval,
			MaxDataPoints: 1000,
		}},
	}
	if alert {
		req.Headers = map[string]string{backend.FromAlertHeaderName: "true"}
	}
	resp, err := e.DS.QueryData(context.Background(), req)
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	r, ok := resp.Responses[head.RefID]
	if !ok {
		t.Fatalf("QueryData answered no response for refId %s", head.RefID)
	}
	return r
}

// Import runs the real agent importer (agent.Import, as `logsift-agent
// import PATH --workspace NAME` does) into this server's gRPC chunk
// service and returns once every chunk is acknowledged.
func (e *Env) Import(t testing.TB, path, workspace, host string) *importer.Summary {
	t.Helper()
	dir := t.TempDir()
	yaml := fmt.Sprintf("data_dir: %q\noutput: {type: logsift, url: %q}\nfiles:\n  - paths: [%q]\nmetrics: {listen_address: \"\"}\n",
		filepath.Join(dir, "agent"), e.Server.GRPCAddr(), filepath.Join(dir, "unused", "*.log"))
	cfg, err := config.Parse(filepath.Join(dir, "agent.yaml"), []byte(yaml))
	if err != nil {
		t.Fatalf("agent config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := agent.Import(ctx, cfg, importer.Options{Paths: []string{path}, Workspace: workspace, Host: host}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	return sum
}
