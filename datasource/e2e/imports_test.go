//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/logsift/logsift/agent"
	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/importer"
	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/server"
)

// importEnv is a logsift server (in this process, so that the agent's
// importer can reach its gRPC port) behind a proxy that the test can use
// to cut the plugin's event stream and hold it down, and a datasource of
// the built plugin pointed at the proxy.
type importEnv struct {
	srv  *server.Server
	grpc string
	ds   *pluginv2.DataSourceInstanceSettings

	mu      sync.Mutex
	down    bool
	streams map[*http.Request]context.CancelFunc
	opened  int
}

// importEnvs numbers the datasources the tests create.
var importEnvs int64

func newImportEnv(t *testing.T) *importEnv {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPListenAddress = "127.0.0.1:0"
	cfg.GRPCListenAddress = "127.0.0.1:0"
	cfg.Limits = ingest.DefaultLimits()
	cfg.Query = lokiapi.DefaultLimits()
	cfg.Audit.Disabled = true
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	env := &importEnv{srv: srv, grpc: srv.GRPCAddr(), streams: map[*http.Request]context.CancelFunc{}}
	target, _ := url.Parse("http://" + srv.Addr())
	proxy := httputil.NewSingleHostReverseProxy(target)
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != client.EventsPath {
			proxy.ServeHTTP(w, r)
			return
		}
		env.mu.Lock()
		if env.down {
			env.mu.Unlock()
			http.Error(w, "the test holds the stream down", http.StatusBadGateway)
			return
		}
		rctx, rcancel := context.WithCancel(r.Context())
		r = r.WithContext(rctx)
		env.streams[r] = rcancel
		env.opened++
		env.mu.Unlock()
		defer func() {
			env.mu.Lock()
			delete(env.streams, r)
			env.mu.Unlock()
			rcancel()
		}()
		proxy.ServeHTTP(w, r)
	}))
	// Cleanups run last first: the proxy (and the plugin's streams
	// through it) go before the server.
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the server did not stop")
		}
	})
	t.Cleanup(func() {
		ps.CloseClientConnections()
		ps.Close()
	})
	importEnvs++
	env.ds = settings(200+importEnvs, ps.URL, `{"tenant":"`+tenant+`","timeoutSeconds":30}`)
	return env
}

func (e *importEnv) cut(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
	for _, cancel := range e.streams {
		cancel()
	}
}

func (e *importEnv) up() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = false
}

func (e *importEnv) streamsOpened() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opened
}

// importBundle runs the real agent importer (as `logsift-agent import
// DIR --workspace WS` does, with the run tracked on the server) and
// returns its result.
func (e *importEnv) importBundle(t *testing.T, dir, workspace string) *agent.ImportResult {
	t.Helper()
	adir := t.TempDir()
	yaml := fmt.Sprintf("data_dir: %q\noutput: {type: logsift, url: %q, tenant: %q}\nfiles:\n  - paths: [%q]\nmetrics: {listen_address: \"\"}\n",
		filepath.Join(adir, "agent"), e.grpc, tenant, filepath.Join(adir, "unused", "*.log"))
	cfg, err := config.Parse(filepath.Join(adir, "agent.yaml"), []byte(yaml))
	if err != nil {
		t.Fatalf("agent config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := agent.ImportRun(ctx, cfg, agent.ImportOptions{
		Options:        importer.Options{Paths: []string{dir}, Workspace: workspace, Host: "bundle-host"},
		FlushTimeout:   time.Minute,
		ReportInterval: 20 * time.Millisecond,
		RunHost:        "laptop",
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}

// writeImportBundle writes a support bundle folder: files of timestamped
// lines, about size bytes in all.
func writeImportBundle(t *testing.T, files, size int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	levels := []string{"INFO", "WARN", "ERROR", "DEBUG"}
	for f := 0; f < files; f++ {
		var b strings.Builder
		ts := start
		for b.Len() < size/files {
			ts = ts.Add(time.Duration(rng.IntN(900)) * time.Millisecond)
			fmt.Fprintf(&b, "%s %s [worker-%d] request id=%08x path=/api/v%d/orders took=%dms status=%d\n",
				ts.Format("2006-01-02T15:04:05.000Z07:00"), levels[rng.IntN(len(levels))], rng.IntN(16), rng.Uint32(), rng.IntN(3), rng.IntN(2000), 200+rng.IntN(4)*100)
		}
		p := filepath.Join(dir, "var", "log", fmt.Sprintf("app-%d.log", f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// progressRow is a row of an imports frame as Grafana Live forwards it.
type progressRow struct {
	RunID, Workspace, Host, Status, Error string
	FilesDone, Files, BytesDone, Bytes    int64
	Lines, Chunks                         int64
	Percent, Throughput                   float64
}

func (r progressRow) String() string {
	return fmt.Sprintf("%s files %d/%d bytes %d/%d lines %d chunks %d %.1f%%", r.Status, r.FilesDone, r.Files, r.BytesDone, r.Bytes, r.Lines, r.Chunks, r.Percent)
}

// progressStream is an imports channel of the built plugin, read as
// Grafana reads it.
type progressStream struct {
	t      *testing.T
	fields []string // from the first packet's schema
	rows   chan progressRow
	errc   chan error
	first  chan bool // whether the first packet carried the schema
}

func openProgress(t *testing.T, ds *pluginv2.DataSourceInstanceSettings, payload string) *progressStream {
	t.Helper()
	path := "imports/" + fmt.Sprint(time.Now().UnixNano())
	res, err := h.stream.SubscribeStream(context.Background(), &pluginv2.SubscribeStreamRequest{PluginContext: pluginContext(ds), Path: path, Data: []byte(payload)})
	if err != nil || res.Status != pluginv2.SubscribeStreamResponse_OK {
		t.Fatalf("subscribe %s: %v %v", path, res, err)
	}
	if len(res.Data) == 0 {
		t.Error("the subscription has no initial data (the runs' state for a subscriber that joins a running channel)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := h.stream.RunStream(ctx, &pluginv2.RunStreamRequest{PluginContext: pluginContext(ds), Path: path, Data: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	ps := &progressStream{t: t, rows: make(chan progressRow, 10000), errc: make(chan error, 1), first: make(chan bool, 1)}
	go func() {
		n := 0
		for {
			msg, err := st.Recv()
			if err != nil {
				ps.errc <- err
				return
			}
			rows, hasSchema, err := ps.decode(msg.Data)
			if err != nil {
				ps.errc <- err
				return
			}
			if n == 0 {
				ps.first <- hasSchema
			} else if hasSchema {
				ps.errc <- errors.New("a packet after the first repeats the schema")
				return
			}
			n++
			for _, r := range rows {
				ps.rows <- r
			}
		}
	}()
	select {
	case withSchema := <-ps.first:
		if !withSchema {
			t.Fatal("the first packet has no schema")
		}
	case err := <-ps.errc:
		t.Fatalf("stream: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no first packet within 30s")
	}
	return ps
}

// decode reads a packet: data.FrameToJSON with the schema the first
// time, data only after.
func (ps *progressStream) decode(b []byte) ([]progressRow, bool, error) {
	var p struct {
		Schema *struct {
			Fields []struct {
				Name string `json:"name"`
			} `json:"fields"`
		} `json:"schema"`
		Data struct {
			Values []json.RawMessage `json:"values"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, false, err
	}
	if p.Schema != nil {
		ps.fields = ps.fields[:0]
		for _, f := range p.Schema.Fields {
			ps.fields = append(ps.fields, f.Name)
		}
	}
	cols := map[string][]any{}
	for i, raw := range p.Data.Values {
		if i >= len(ps.fields) {
			return nil, false, fmt.Errorf("a packet with %d columns, schema %v", len(p.Data.Values), ps.fields)
		}
		var vs []any
		if err := json.Unmarshal(raw, &vs); err != nil {
			return nil, false, err
		}
		cols[ps.fields[i]] = vs
	}
	n := len(cols["run_id"])
	out := make([]progressRow, n)
	str := func(c string, i int) string { s, _ := cols[c][i].(string); return s }
	num := func(c string, i int) float64 { f, _ := cols[c][i].(float64); return f }
	for i := range out {
		out[i] = progressRow{RunID: str("run_id", i), Workspace: str("workspace", i), Host: str("host", i), Status: str("status", i), Error: str("error", i),
			FilesDone: int64(num("files_done", i)), Files: int64(num("files_total", i)), BytesDone: int64(num("bytes_done", i)), Bytes: int64(num("bytes_total", i)),
			Lines: int64(num("lines", i)), Chunks: int64(num("chunks", i)), Percent: num("percent", i), Throughput: num("throughput", i)}
	}
	return out, p.Schema != nil, nil
}

// until collects rows until done says so.
func (ps *progressStream) until(what string, rows []progressRow, done func([]progressRow) bool) []progressRow {
	ps.t.Helper()
	deadline := time.After(90 * time.Second)
	for !done(rows) {
		select {
		case r := <-ps.rows:
			rows = append(rows, r)
		case err := <-ps.errc:
			ps.t.Fatalf("%s: the stream ended: %v; rows %v", what, err, rows)
		case <-deadline:
			ps.t.Fatalf("%s: not within 90s; rows %v", what, rows)
		}
	}
	return rows
}

func finished(id string) func([]progressRow) bool {
	return func(rows []progressRow) bool {
		for _, r := range rows {
			if r.RunID == id && r.Status != "running" {
				return true
			}
		}
		return false
	}
}

// checkRun checks the rows of one run: each a new state, none going back,
// the first the run's start with the planned totals, one final row that
// says completed with the importer's totals.
func checkRun(t *testing.T, rows []progressRow, id string, res *agent.ImportResult) []progressRow {
	t.Helper()
	var mine []progressRow
	for _, r := range rows {
		if r.RunID == id {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("no row of run %s in %v", id, rows)
	}
	sum := res.Summary
	for i, r := range mine {
		if r.Workspace != "case-live" || r.Host != "laptop" {
			t.Errorf("row %d: workspace %q host %q", i, r.Workspace, r.Host)
		}
		if i == 0 {
			continue
		}
		p := mine[i-1]
		if r.Status == p.Status && r.FilesDone == p.FilesDone && r.BytesDone == p.BytesDone && r.Lines == p.Lines && r.Chunks == p.Chunks {
			t.Errorf("row %d repeats row %d: %v", i, i-1, r)
		}
		if r.BytesDone < p.BytesDone || r.FilesDone < p.FilesDone || r.Lines < p.Lines || r.Chunks < p.Chunks {
			t.Errorf("row %d goes back: %v after %v", i, r, p)
		}
		if p.Status != "running" {
			t.Errorf("row %d after the final row %v: %v", i, p, r)
		}
	}
	first, last := mine[0], mine[len(mine)-1]
	if first.Files != int64(sum.Files) || first.Bytes <= 0 {
		t.Errorf("first row %v: want the planned totals (%d files)", first, sum.Files)
	}
	if last.Status != "completed" || last.Percent != 100 || last.FilesDone != int64(sum.Files) || last.Files != int64(sum.Files) ||
		last.BytesDone != last.Bytes || last.Bytes != first.Bytes || last.Lines != sum.Lines || last.Throughput <= 0 || last.Error != "" {
		t.Errorf("final row %v: want completed at 100%% with %d files, %d lines, all bytes, a throughput", last, sum.Files, sum.Lines)
	}
	return mine
}

// TestImportProgressLive follows a real import through the built
// plugin: the agent's importer sends a bundle to the server and reports
// its run; the imports channel shows the run from its start with the
// planned totals, its progress, and its completion with the importer's
// totals.
func TestImportProgressLive(t *testing.T) {
	env := newImportEnv(t)
	ps := openProgress(t, env.ds, `{"refId":"A","workspace":"case-live"}`)
	bundle := writeImportBundle(t, 6, 24<<20)
	res := env.importBundle(t, bundle, "case-live")
	if res.RunID == "" || res.Summary.Files != 6 || res.Summary.Failed != 0 {
		t.Fatalf("import: run %q, %+v", res.RunID, res.Summary)
	}
	rows := ps.until("the completion", nil, finished(res.RunID))
	mine := checkRun(t, rows, res.RunID, res)
	running := 0
	for _, r := range mine {
		if r.Status == "running" && r.BytesDone > 0 && r.BytesDone < r.Bytes {
			running++
		}
	}
	t.Logf("import of %d bytes in %v: %d rows, %d of them part-way", mine[0].Bytes, res.Summary.Duration, len(mine), running)
	// The agent reports every 20 ms: an import that took a few of those
	// was seen part-way.
	if res.Summary.Duration > 500*time.Millisecond && running == 0 {
		t.Errorf("an import of %v showed no progress between its start and its end: %v", res.Summary.Duration, mine)
	}

	// QueryData answers the same state, for a panel refreshed without
	// Grafana Live.
	out := queryDataWith(t, env.ds, `{"refId":"Q","queryType":"imports","workspace":"case-live"}`)
	if out.err != "" || len(out.frames) != 1 {
		t.Fatalf("QueryData: %q, %d frames", out.err, len(out.frames))
	}
	f := out.frames[0]
	if f.Rows() != 1 {
		t.Fatalf("QueryData: %d rows, want the one run", f.Rows())
	}
	last := mine[len(mine)-1]
	ids, _ := f.FieldByName("run_id")
	lines, _ := f.FieldByName("lines")
	status, _ := f.FieldByName("status")
	if ids.At(0) != res.RunID || lines.At(0) != last.Lines || status.At(0) != "completed" {
		t.Errorf("QueryData row: %v %v %v; want %s completed with %d lines", ids.At(0), status.At(0), lines.At(0), res.RunID, last.Lines)
	}
}

// queryDataWith runs one query (refId Q) with the datasource ds over the
// last hour.
func queryDataWith(t *testing.T, ds *pluginv2.DataSourceInstanceSettings, model string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now()
	resp, err := h.data.QueryData(ctx, &pluginv2.QueryDataRequest{PluginContext: pluginContext(ds), Queries: []*pluginv2.DataQuery{{
		RefId: "Q", MaxDataPoints: 1000, IntervalMS: 1000, Json: []byte(model),
		TimeRange: &pluginv2.TimeRange{FromEpochMS: now.Add(-time.Hour).UnixMilli(), ToEpochMS: now.Add(time.Minute).UnixMilli()},
	}}})
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	r := resp.Responses["Q"]
	fs, err := data.UnmarshalArrowFrames(r.Frames)
	if err != nil {
		t.Fatalf("decode frames: %v", err)
	}
	return result{frames: fs, err: r.Error, status: r.Status}
}

// TestImportProgressReconnect cuts the plugin's event stream while a
// real import runs and holds it down for a while: the plugin reconnects,
// the run's state after the outage arrives once, no state is repeated or
// goes back, and the completion is there once with the importer's
// totals.
func TestImportProgressReconnect(t *testing.T) {
	env := newImportEnv(t)
	ps := openProgress(t, env.ds, `{"refId":"A","workspace":"case-live"}`)
	bundle := writeImportBundle(t, 6, 24<<20)
	done := make(chan *agent.ImportResult, 1)
	go func() { done <- env.importBundle(t, bundle, "case-live") }()
	// The run's first row (its start) arrives; then the stream is cut.
	rows := ps.until("the start", nil, func(rows []progressRow) bool { return len(rows) > 0 })
	opened := env.streamsOpened()
	env.cut(true)
	time.Sleep(300 * time.Millisecond)
	env.up()
	res := <-done
	rows = ps.until("the completion", rows, finished(res.RunID))
	if env.streamsOpened() <= opened {
		t.Fatalf("the plugin did not reconnect (%d streams opened)", env.streamsOpened())
	}
	mine := checkRun(t, rows, res.RunID, res)
	t.Logf("%d rows across the cut: %v", len(mine), mine)
	// Nothing more comes for the run: no repeat of its final state
	// after the reconnect's backfill.
	select {
	case r := <-ps.rows:
		t.Errorf("a row after the final one: %v", r)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestImportProgressBadToken: a server with API tokens refuses a wrong
// one; the subscription is denied, the stream ends with what to change,
// and a query gets the server's refusal.
func TestImportProgressBadToken(t *testing.T) {
	// Each run its own server and datasource: the plugin keeps an
	// instance per datasource id and version.
	importEnvs++
	dataDir := filepath.Join(h.dir, fmt.Sprintf("imports-auth-data-%d", importEnvs))
	createToken(t, dataDir, tenant, "query")
	srv, err := startServer(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	ds := settings(300+importEnvs, srv.url, `{"tenant":"`+tenant+`"}`)
	ds.DecryptedSecureJsonData = map[string]string{"apiToken": "lsk_not-a-token"}
	payload := []byte(`{"refId":"A"}`)
	sub, err := h.stream.SubscribeStream(context.Background(), &pluginv2.SubscribeStreamRequest{PluginContext: pluginContext(ds), Path: "imports/bad", Data: payload})
	if err != nil || sub.Status != pluginv2.SubscribeStreamResponse_PERMISSION_DENIED {
		t.Errorf("subscribe with a bad token: %v %v", sub, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := h.stream.RunStream(ctx, &pluginv2.RunStreamRequest{PluginContext: pluginContext(ds), Path: "imports/bad", Data: payload})
	if err == nil {
		_, err = st.Recv()
	}
	if err == nil || !strings.Contains(err.Error(), "refused the API token (HTTP 401)") || strings.Contains(err.Error(), "lsk_not-a-token") {
		t.Errorf("stream with a bad token: %v", err)
	}
	out := queryDataWith(t, ds, `{"refId":"Q","queryType":"imports"}`)
	if out.status != http.StatusUnauthorized || out.err == "" {
		t.Errorf("query with a bad token: %d %q", out.status, out.err)
	}
}
