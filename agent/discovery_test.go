//go:build unix

package agent

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/importer"
	rcv "github.com/logsift/logsift/agent/internal/receiver"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/levels"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/store"
)

// storedEntry is an entry read back from the store.
type storedEntry struct {
	labels labels.Labels
	line   string
	level  string // "" when the entry has no detected_level
	hasMD  bool   // metadata other than detected_level
}

// storedEntries reads every entry of a tenant from the store: chunks
// (agent data) and head (pushed data not yet cut).
func storedEntries(t *testing.T, st *store.Store, tenantID string) []storedEntry {
	t.Helper()
	var out []storedEntry
	add := func(ls labels.Labels, e chunk.Entry) {
		// Metadata strings point into the block buffer, reused per block.
		se := storedEntry{labels: ls, line: string(e.Line), level: strings.Clone(e.Metadata.Get(levels.Label))}
		for _, m := range e.Metadata {
			se.hasMD = se.hasMD || m.Name != levels.Label
		}
		out = append(out, se)
	}
	var bb chunk.BlockBuffer
	for _, sd := range st.Select(tenantID, nil, 0, 1<<62) {
		for _, ref := range sd.Chunks {
			c, _, err := st.ReadChunk(ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.Meta().Blocks {
				ents, err := c.ReadBlock(i, &bb)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					add(sd.Labels, e)
				}
			}
		}
		for _, e := range sd.Head {
			add(sd.Labels, e)
		}
	}
	return out
}

// discoveryFiles are corpus files of different shapes: Apache's
// "[notice]", logcat letters, log4j with stack traces, MongoDB JSON,
// PostgreSQL's LOG:, syslog without levels, logfmt-free plain text.
var discoveryFiles = []string{
	"loghub/Apache/Apache_2k.log",
	"loghub/Android/Android_2k.log",
	"loghub/HDFS/HDFS_2k.log",
	"loghub/OpenStack/OpenStack_2k.log",
	"loghub/Proxifier/Proxifier_2k.log",
	"elastic-examples/kafka/kafka0/server.log.2016-12-19-16",
	"beats-module-samples/mongodb/mongodb-debian-4.4.4-json.log",
	"beats-module-samples/postgresql/postgresql-9.6-debian-with-slowlog.log",
	"fixtures-fluent-bit/multiline-doc/test.log",
}

// TestTailedLinesMatchTheServersDiscovery tails corpus files into a real
// store through the gRPC chunk stream, pushes the same lines with the
// same labels through the server's Loki push path (pkg/ingest, default
// limits) into the same store under another tenant, and compares the two:
// every line must carry the same detected_level, and every stream the
// same labels, service_name included. A group with a job label takes its
// service_name from it; a group without any of Loki's labels gets
// "unknown_service", as Loki gives it.
func TestTailedLinesMatchTheServersDiscovery(t *testing.T) {
	root := corpus.Require(t)
	dir := t.TempDir()
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server")})

	cfg := harnessConfig(dir, srv.Addr())
	cfg.Files = []config.FileGroup{
		{Paths: []string{filepath.Join(dir, "logs", "web", "*.log")}, Labels: map[string]string{"job": "web", "env": "prod"}},
		{Paths: []string{filepath.Join(dir, "logs", "other", "*.log")}},
	}
	type file struct {
		path   string
		static labels.Labels
		lines  [][]byte
	}
	var files []file
	total := 0
	for i, rel := range discoveryFiles {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		group, static := "web", labels.New("job", "web", "env", "prod")
		if i%3 == 2 {
			group, static = "other", nil
		}
		if !bytes.HasSuffix(data, []byte{'\n'}) {
			// A tailer waits for the newline of a last line.
			data = append(data, '\n')
		}
		p := filepath.Join(dir, "logs", group, strings.ReplaceAll(filepath.Base(rel), ".", "_")+".log")
		writeFileAll(t, p, data)
		lines := corpus.Lines(data)
		files = append(files, file{path: p, static: static, lines: lines})
		total += len(lines)
	}
	stop := runAgent(t, cfg)
	defer stop()

	// The server's own discovery, on the same lines with the labels the
	// agent starts from (its group's labels and filename).
	h := ingest.NewHandler(srv.Store, ingest.Config{Metrics: metrics.NewSet(), Logger: quiet()})
	var push []lokiclient.Stream
	for _, f := range files {
		ls := append(f.static.Copy(), labels.Label{Name: "filename", Value: f.path}).Sort()
		st := lokiclient.Stream{Labels: ls}
		for i, l := range f.lines {
			st.Entries = append(st.Entries, chunk.Entry{Timestamp: int64(i + 1), Line: l})
		}
		push = append(push, st)
	}
	body, err := lokiclient.EncodePush(push)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/loki/api/v1/push", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Scope-OrgID", "pushed")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}

	var agentEnts []storedEntry
	deadline := time.Now().Add(30 * time.Second)
	for {
		agentEnts = storedEntries(t, srv.Store, "t1")
		if len(agentEnts) >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(agentEnts) != total {
		t.Fatalf("%d lines stored from the agent, %d tailed", len(agentEnts), total)
	}
	pushed := storedEntries(t, srv.Store, "pushed")
	if len(pushed) != total {
		t.Fatalf("%d lines stored from the push, %d pushed", len(pushed), total)
	}

	// Both sides as multisets of (labels, line, level).
	key := func(e storedEntry) string { return e.labels.String() + "\x00" + e.line + "\x00" + e.level }
	want := map[string]int{}
	for _, e := range pushed {
		want[key(e)]++
	}
	byLevel := map[string]int{}
	mismatches := 0
	for _, e := range agentEnts {
		byLevel[e.level]++
		if e.level == "" || e.hasMD {
			t.Fatalf("tailed entry with metadata other than one detected_level: %+v", e)
		}
		if want[key(e)] == 0 {
			if mismatches++; mismatches <= 5 {
				t.Errorf("agent stored %s %q with level %q; the server's push path gives %q",
					e.labels, e.line, e.level, levels.Detect(e.labels, nil, []byte(e.line)))
			}
			continue
		}
		want[key(e)]--
	}
	if mismatches > 0 {
		t.Fatalf("%d of %d tailed lines differ from the server's discovery", mismatches, total)
	}
	// The comparison must not pass because every line is "unknown".
	if byLevel[levels.Error] == 0 || byLevel[levels.Warn] == 0 || byLevel[levels.Info] == 0 || byLevel[levels.Fatal] == 0 || byLevel[levels.Unknown] == 0 {
		t.Errorf("levels of the tailed corpus lines: %v", byLevel)
	}
	services := map[string]bool{}
	for _, e := range agentEnts {
		services[e.labels.Get("service_name")] = true
		wantSvc := "unknown_service"
		if e.labels.Get("job") == "web" {
			wantSvc = "web"
		}
		if got := e.labels.Get("service_name"); got != wantSvc {
			t.Fatalf("stream %s: service_name %q, want %q", e.labels, got, wantSvc)
		}
	}
	t.Logf("%d lines agree; levels %v; services %v", total, byLevel, services)
}

func writeFileAll(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiscoveryCanBeTurnedOff: discover_log_levels: false and an empty
// discover_service_name leave tailed lines as they were.
func TestDiscoveryCanBeTurnedOff(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server")})
	cfg := harnessConfig(dir, srv.Addr())
	cfg.DiscoverLogLevels = false
	cfg.DiscoverServiceName = []string{}
	writeFileAll(t, filepath.Join(dir, "logs", "a.log"), []byte("ERROR one\nWARN two\n"))
	stop := runAgent(t, cfg)
	defer stop()
	var ents []storedEntry
	for deadline := time.Now().Add(20 * time.Second); len(ents) < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		ents = storedEntries(t, srv.Store, "t1")
	}
	if len(ents) != 2 {
		t.Fatalf("%d entries stored", len(ents))
	}
	for _, e := range ents {
		if e.level != "" || e.labels.Has("service_name") {
			t.Errorf("discovery off, yet %s %q has level %q", e.labels, e.line, e.level)
		}
	}
}

// TestImportedStreamsAreNamedAfterTheWorkspace imports a bundle into a
// real store: streams without any of Loki's service labels take the
// workspace name as service_name, a --label app=... wins over it, and
// every entry has a detected_level.
func TestImportedStreamsAreNamedAfterTheWorkspace(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server"), Workspaces: true})
	root, _, _ := bundle(t, dir, 3, 50, 10)
	cfg := importConfig(dir, srv.Addr(), "t-imp")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		ws      string
		labels  map[string]string
		service string
	}{
		{"case-4711", nil, "case-4711"},
		{"case-4712", map[string]string{"app": "billing"}, "billing"},
	} {
		sum, err := Import(ctx, cfg, importer.Options{Paths: []string{root}, Workspace: c.ws, Labels: c.labels, Logger: quiet()}, time.Minute, quiet())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for _, e := range storedEntries(t, srv.Store, "t-imp") {
			if e.labels.Get("workspace") != c.ws {
				continue
			}
			n++
			if got := e.labels.Get("service_name"); got != c.service {
				t.Fatalf("%s: stream %s has service_name %q, want %q", c.ws, e.labels, got, c.service)
			}
			if e.level == "" {
				t.Fatalf("%s: entry %q has no detected_level", c.ws, e.line)
			}
		}
		if n == 0 || int64(n) != sum.Entries {
			t.Fatalf("%s: %d entries stored, %d imported", c.ws, n, sum.Entries)
		}
	}
}
