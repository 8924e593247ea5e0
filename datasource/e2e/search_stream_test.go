package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/pkg/lokiclient"
	enginequery "github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/search"
	"github.com/logsift/logsift/pkg/server"
	tenantpkg "github.com/logsift/logsift/pkg/tenant"
)

// lokiOnly is a proxy to the shared server that answers 404 on the
// streaming search, as a Loki server does, so that a test of the
// plugin's sliced search runs whatever the server offers.
func lokiOnly(t *testing.T) string {
	t.Helper()
	target, err := url.Parse(h.serverURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == client.SearchPath {
			http.NotFound(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ps.Close)
	return ps.URL
}

// streamingServer is a logsift server in this process, loaded with the
// test data in chunks of 150 entries, whose streaming search runs the
// scan with hook. Its other routes are the server's own.
func streamingServer(t *testing.T, hook func(i, n int)) string {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Audit.Disabled = true
	cfg.Store.TargetChunkSize = 1 // every push cuts a chunk
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	svc := &search.Service{Engine: srv.Engine, Store: srv.Store, Limits: cfg.Query, Tenants: tenantpkg.Resolver{Default: cfg.DefaultTenant, Required: cfg.RequireTenant}}
	stream := &search.HTTP{Service: svc}
	mux := http.NewServeMux()
	mux.Handle(search.Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stream.ServeHTTP(w, r.WithContext(enginequery.WithSourceHook(r.Context(), hook)))
	}))
	mux.Handle("/", srv.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	c := &lokiclient.Client{URL: hs.URL, Tenant: tenant, Categorize: true}
	for _, s := range pushed {
		for i := 0; i < len(s.Entries); i += 150 {
			if err := c.Push(context.Background(), []lokiclient.Stream{{Labels: s.Labels, Entries: s.Entries[i:min(i+150, len(s.Entries))]}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := srv.Store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return hs.URL
}

// runSearchChannel runs a search channel through the plugin, calling
// each with every frame's rows and progress.
func runSearchChannel(t *testing.T, ds *pluginv2.DataSourceInstanceSettings, path, payload string, each func(rows []string, progress map[string]any)) {
	t.Helper()
	subscribe(t, ds, path, payload)
	st, err := h.stream.RunStream(context.Background(), &pluginv2.RunStreamRequest{PluginContext: pluginContext(ds), Path: path, Data: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("search stream: %v", err)
		}
		var f data.Frame
		if err := json.Unmarshal(msg.Data, &f); err != nil {
			t.Fatalf("packet is not a full frame: %v", err)
		}
		each(rows(t, &f), f.Meta.Custom.(map[string]any)["progress"].(map[string]any))
	}
}

// TestServerStreamedSearch drives the built plugin against a server with
// the streaming search, and proves the order, not the timing: past the
// first half of its sources the server's scan waits until the test (as
// Grafana) has received a frame with lines. A plugin or server that held
// the lines until the whole scan was done would never let it, and the
// wait would time out.
func TestServerStreamedSearch(t *testing.T) {
	var mu sync.Mutex
	gate := make(chan struct{})
	var once sync.Once
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	u := streamingServer(t, func(i, n int) {
		if i < n/2 {
			return
		}
		select {
		case <-gate:
		case <-time.After(20 * time.Second):
			note(fmt.Sprintf("source %d of %d: gate timed out", i, n))
		}
		if i == n-1 {
			note("last source scanned")
		}
	})
	ds := settings(41, u, `{"tenant":"`+tenant+`"}`)
	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)

	want := count(containing("level="))
	payload := fmt.Sprintf(`{"refId":"A","expr":"{workspace=\"demo\"} |= \"level=\"","maxLines":5000,"from":%d,"to":%d}`, from.UnixMilli(), to.UnixMilli())
	lines := 0
	var progress []map[string]any
	runSearchChannel(t, ds, "search/server-order", payload, func(rs []string, p map[string]any) {
		if len(rs) > 0 {
			once.Do(func() {
				note(fmt.Sprintf("frame with %d lines", len(rs)))
				close(gate)
			})
		}
		lines += len(rs)
		progress = append(progress, p)
	})
	mu.Lock()
	t.Logf("events %v", events)
	if len(events) < 2 || !strings.HasPrefix(events[0], "frame with") || strings.Contains(strings.Join(events, ","), "timed out") {
		t.Fatalf("events %v: lines did not reach Grafana before the server's scan ended", events)
	}
	mu.Unlock()
	if want > 5000 {
		t.Fatalf("the test data has %d matching lines; the test wants them all under the limit", want)
	}
	last := progress[len(progress)-1]
	if lines != want || last["done"] != true || last["rangeCovered"] != 1.0 || last["chunksCovered"] != 1.0 ||
		last["chunksScanned"] != last["chunksTotal"] || int(last["linesMatched"].(float64)) != want || last["slices"] != 0.0 {
		t.Fatalf("%d lines (brute force %d), last progress %v", lines, want, last)
	}
	var first map[string]any
	for _, p := range progress {
		if p["linesSent"].(float64) > 0 {
			first = p
			break
		}
	}
	if first["chunksScanned"].(float64) >= first["chunksTotal"].(float64) || first["rangeCovered"].(float64) >= 1 || first["done"] == true {
		t.Fatalf("first progress with lines %v: not part-way", first)
	}

	// A line limit: the newest lines, and the search stops there.
	var got []string
	payload = fmt.Sprintf(`{"refId":"A","expr":"{workspace=\"demo\"} |= \"level=warn\"","maxLines":40,"from":%d,"to":%d}`, from.UnixMilli(), to.UnixMilli())
	progress = nil
	runSearchChannel(t, ds, "search/server-limit", payload, func(rs []string, p map[string]any) {
		got = append(got, rs...)
		progress = append(progress, p)
	})
	last = progress[len(progress)-1]
	if len(got) != 40 || last["limitReached"] != true || last["done"] != true || last["rangeCovered"].(float64) >= 1 {
		t.Fatalf("limited search: %d lines, last %v", len(got), last)
	}
	for _, l := range got {
		if !strings.Contains(l, "level=warn") {
			t.Fatalf("line %q does not match", l)
		}
	}
}
