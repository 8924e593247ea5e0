package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/pkg/server"
)

// importsServer is a real logsift server (pkg/server's handlers, in
// process) whose event stream the test can cut and hold down.
type importsServer struct {
	t   *testing.T
	url string

	mu      sync.Mutex
	down    bool
	streams map[*http.Request]context.CancelFunc
	opened  int
	// foreign replaces the Last-Event-ID of reconnecting streams by one
	// from another epoch, as after a server restart.
	foreign bool
	resumed []string // the Last-Event-ID of each stream opened
}

func newImportsServer(t *testing.T) *importsServer {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Audit.Disabled = true
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s := &importsServer{t: t, streams: map[*http.Request]context.CancelFunc{}}
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != client.EventsPath {
			h.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		if s.down {
			s.mu.Unlock()
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		r = r.WithContext(ctx)
		s.resumed = append(s.resumed, r.Header.Get("Last-Event-ID"))
		if s.foreign && r.Header.Get("Last-Event-ID") != "" {
			r.Header.Set("Last-Event-ID", "restarted0-1")
		}
		s.streams[r] = cancel
		s.opened++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.streams, r)
			s.mu.Unlock()
			cancel()
		}()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

// cut ends every open event stream; with down set, new ones are refused
// until up is called.
func (s *importsServer) cut(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
	for _, cancel := range s.streams {
		cancel()
	}
}

func (s *importsServer) up() {
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
}

func (s *importsServer) streamsOpened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// waitStreams waits until n event streams were opened.
func (s *importsServer) waitStreams(n int) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.streamsOpened() < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("%d event streams opened, want %d", s.streamsOpened(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// call sends a workspace API request as the agent would (it speaks gRPC
// to the same service) for the test instance's tenant.
func (s *importsServer) call(path string, body any) map[string]any {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(b))
	req.Header.Set("X-Scope-OrgID", "team-a")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode/100 != 2 {
		s.t.Fatalf("%s: %d %v %v", path, resp.StatusCode, out, err)
	}
	return out
}

type counters struct {
	Files, FilesDone, Bytes, BytesDone, Lines, Chunks int64
}

func (c counters) json() map[string]int64 {
	return map[string]int64{"files": c.Files, "files_done": c.FilesDone, "bytes": c.Bytes, "bytes_done": c.BytesDone, "lines": c.Lines, "chunks": c.Chunks}
}

func (s *importsServer) start(ws string, files, bytes int64) string {
	s.t.Helper()
	return s.call("/api/v1/workspaces/"+ws+"/runs", map[string]any{"host": "laptop", "source": "bundle.zip", "files": files, "bytes": bytes})["id"].(string)
}

func (s *importsServer) progress(ws, id string, c counters) {
	s.t.Helper()
	s.call("/api/v1/workspaces/"+ws+"/runs/"+id+"/progress", map[string]any{"counters": c.json()})
}

func (s *importsServer) finish(ws, id, status string, c counters, errs ...string) {
	s.t.Helper()
	s.call("/api/v1/workspaces/"+ws+"/runs/"+id+"/finish", map[string]any{"status": status, "counters": c.json(), "errors": errs})
}

// runRow is a row of an imports frame, as the test reads it.
type runRow struct {
	RunID, Workspace, Status, Error    string
	FilesDone, Files, BytesDone, Bytes int64
	Lines, Chunks                      int64
	Percent, Throughput                float64
}

func (r runRow) String() string {
	return fmt.Sprintf("%s %s files %d/%d bytes %d/%d lines %d %.0f%% %q", r.RunID, r.Status, r.FilesDone, r.Files, r.BytesDone, r.Bytes, r.Lines, r.Percent, r.Error)
}

func runRows(t *testing.T, f *data.Frame) []runRow {
	t.Helper()
	col := func(name string) *data.Field {
		fld, idx := f.FieldByName(name)
		if idx < 0 {
			t.Fatalf("frame without %s: %v", name, f.Fields)
		}
		return fld
	}
	n, _ := f.RowLen()
	out := make([]runRow, n)
	for i := range out {
		out[i] = runRow{
			RunID: col("run_id").At(i).(string), Workspace: col("workspace").At(i).(string), Status: col("status").At(i).(string),
			Error: col("error").At(i).(string), FilesDone: col("files_done").At(i).(int64), Files: col("files_total").At(i).(int64),
			BytesDone: col("bytes_done").At(i).(int64), Bytes: col("bytes_total").At(i).(int64), Lines: col("lines").At(i).(int64), Chunks: col("chunks").At(i).(int64),
			Percent: col("percent").At(i).(float64), Throughput: col("throughput").At(i).(float64),
		}
	}
	return out
}

// importsRun runs an imports channel of the instance until the test
// ends, recording its frames.
func importsRun(t *testing.T, in *Instance, payload string) (*recordingSender, <-chan error) {
	t.Helper()
	s := newRecordingSender()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		done <- in.runImports(ctx, &backend.RunStreamRequest{Path: "imports/test", Data: json.RawMessage(payload)}, s)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Error("the imports stream did not end with its context")
		}
	})
	return s, done
}

// allRows is every row the stream sent, in order.
func allRows(t *testing.T, s *recordingSender) []runRow {
	fs, _ := s.snapshot()
	var out []runRow
	for _, f := range fs {
		out = append(out, runRows(t, f)...)
	}
	return out
}

// waitRows waits until the stream has sent a row that satisfies ok.
func waitRows(t *testing.T, s *recordingSender, what string, ok func(rows []runRow) bool) []runRow {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		rows := allRows(t, s)
		if ok(rows) {
			return rows
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("%s: not within 20s; rows: %v", what, rows)
		}
	}
}

func hasRow(id, status string, bytesDone int64) func([]runRow) bool {
	return func(rows []runRow) bool {
		for _, r := range rows {
			if r.RunID == id && r.Status == status && r.BytesDone == bytesDone {
				return true
			}
		}
		return false
	}
}

// checkNoRepeat fails when two rows of one run hold the same state, or a
// run's counters go back.
func checkNoRepeat(t *testing.T, rows []runRow) {
	t.Helper()
	last := map[string]runRow{}
	for _, r := range rows {
		if p, ok := last[r.RunID]; ok {
			if p.Status == r.Status && p.FilesDone == r.FilesDone && p.BytesDone == r.BytesDone && p.Lines == r.Lines && p.Chunks == r.Chunks && p.Error == r.Error {
				t.Errorf("state sent twice: %v", r)
			}
			if r.BytesDone < p.BytesDone || r.FilesDone < p.FilesDone || r.Lines < p.Lines || r.Chunks < p.Chunks {
				t.Errorf("run %s went back from %v to %v", r.RunID, p, r)
			}
		}
		last[r.RunID] = r
	}
}

func TestImportsStreamFollowsRuns(t *testing.T) {
	srv := newImportsServer(t)
	// Before the subscription: a run under way in the workspace, and one
	// of another workspace, which the filter keeps out.
	running := srv.start("case-1", 4, 4000)
	srv.progress("case-1", running, counters{Files: 4, FilesDone: 1, Bytes: 4000, BytesDone: 1000, Lines: 10, Chunks: 1})
	other := srv.start("case-2", 1, 10)

	in := testInstance(t, srv.url)
	s, _ := importsRun(t, in, `{"refId":"P","workspace":"case-1"}`)
	rows := waitRows(t, s, "backfill", hasRow(running, "running", 1000))
	if len(rows) != 1 || rows[0].Workspace != "case-1" || rows[0].Files != 4 || rows[0].Bytes != 4000 || rows[0].Percent != 25 || rows[0].Lines != 10 {
		t.Fatalf("backfill %v: want the running run of case-1 at 25%%", rows)
	}
	srv.waitStreams(1)

	srv.progress("case-1", running, counters{Files: 4, FilesDone: 3, Bytes: 4000, BytesDone: 3000, Lines: 30, Chunks: 3})
	second := srv.start("case-1", 1, 500)
	srv.finish("case-2", other, "completed", counters{Files: 1, FilesDone: 1, Bytes: 10, BytesDone: 10})
	srv.finish("case-1", running, "completed", counters{Files: 4, FilesDone: 4, Bytes: 4000, BytesDone: 4000, Lines: 40, Chunks: 4})
	srv.finish("case-1", second, "failed", counters{Files: 1, Bytes: 500, BytesDone: 200}, "archive.zip: unexpected EOF")
	rows = waitRows(t, s, "completion", func(rows []runRow) bool {
		return hasRow(running, "completed", 4000)(rows) && hasRow(second, "failed", 200)(rows)
	})
	var got []string
	for _, r := range rows {
		if r.Workspace != "case-1" {
			t.Errorf("row of another workspace: %v", r)
		}
		got = append(got, r.RunID+" "+r.Status+" "+itoa(r.BytesDone))
	}
	want := []string{running + " running 1000", running + " running 3000", second + " running 0", running + " completed 4000", second + " failed 200"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	last := rows[len(rows)-1]
	if last.Error != "archive.zip: unexpected EOF" || last.Percent != 40 {
		t.Errorf("failed run %v: want its error and 40%%", last)
	}
	for _, r := range rows {
		if r.RunID == running && r.Status == "completed" && (r.Percent != 100 || r.Lines != 40 || r.FilesDone != 4 || r.Throughput <= 0) {
			t.Errorf("completed run %v: want 100%%, 40 lines, 4 files and a throughput", r)
		}
	}
	_, include := s.snapshot()
	if include[0] != data.IncludeAll {
		t.Error("the first frame has no schema")
	}
	for i, inc := range include[1:] {
		if inc != data.IncludeDataOnly {
			t.Errorf("frame %d repeats the schema", i+1)
		}
	}
	fs, _ := s.snapshot()
	if fs[0].RefID != "P" || fs[0].Meta.PreferredVisualization != data.VisTypeTable {
		t.Errorf("frame refId %q meta %+v", fs[0].RefID, fs[0].Meta)
	}
	if pct, _ := fs[0].FieldByName("percent"); pct.Config.Unit != "percent" || *pct.Config.Max != 100 {
		t.Errorf("percent config %+v", pct.Config)
	}
}

// TestImportsStreamReconnects cuts the server's event stream and holds
// it down while runs move on: after the reconnect every run that changed
// has its newest state sent once, the runs that did not change are not
// sent again, and the updates after the reconnect follow as before.
// TestImportsStreamReconnects cuts the event stream while runs go on.
// The reconnection resumes from the last event id: the server replays
// every update missed, in order. When it cannot (here it answers as a
// restarted server would, with a reset), the plugin reads the runs'
// state instead and shows each changed run's latest row.
func TestImportsStreamReconnects(t *testing.T) {
	for _, foreign := range []bool{false, true} {
		name := "replay"
		if foreign {
			name = "reset"
		}
		t.Run(name, func(t *testing.T) { testImportsStreamReconnects(t, foreign) })
	}
}

func testImportsStreamReconnects(t *testing.T, foreign bool) {
	// Restored after the stream ends (cleanups run last first).
	a0, b0 := importsBackoffMin, importsBackoffMax
	t.Cleanup(func() { importsBackoffMin, importsBackoffMax = a0, b0 })
	importsBackoffMin, importsBackoffMax = 20*time.Millisecond, 50*time.Millisecond
	srv := newImportsServer(t)
	srv.foreign = foreign
	a := srv.start("case-1", 2, 2000)
	idle := srv.start("case-2", 1, 100)
	in := testInstance(t, srv.url)
	s, _ := importsRun(t, in, `{"refId":"A"}`)
	waitRows(t, s, "backfill", func(rows []runRow) bool { return len(rows) == 2 })
	srv.waitStreams(1)
	srv.progress("case-1", a, counters{Files: 2, Bytes: 2000, BytesDone: 500, Lines: 5})
	waitRows(t, s, "progress before the cut", hasRow(a, "running", 500))

	srv.cut(true)
	// While the plugin is away: a runs on and finishes, b starts and
	// progresses, the idle run stays as it was.
	srv.progress("case-1", a, counters{Files: 2, FilesDone: 1, Bytes: 2000, BytesDone: 1500, Lines: 15})
	srv.finish("case-1", a, "completed", counters{Files: 2, FilesDone: 2, Bytes: 2000, BytesDone: 2000, Lines: 20})
	b := srv.start("case-3", 3, 300)
	srv.progress("case-3", b, counters{Files: 3, FilesDone: 1, Bytes: 300, BytesDone: 100, Lines: 1})
	before := len(allRows(t, s))
	opened := srv.streamsOpened()
	srv.up()
	srv.waitStreams(opened + 1)
	rows := waitRows(t, s, "catch-up after the reconnect", func(rows []runRow) bool {
		return hasRow(a, "completed", 2000)(rows) && hasRow(b, "running", 100)(rows)
	})
	var catchUp []string
	for _, r := range rows[before:] {
		if r.RunID == idle {
			t.Errorf("a row of the idle run %s after the reconnect: %v", idle, r)
		}
		catchUp = append(catchUp, fmt.Sprintf("%s %s %d", r.RunID, r.Status, r.BytesDone))
	}
	want := []string{a + " running 1500", a + " completed 2000", b + " running 0", b + " running 100"}
	if foreign {
		want = []string{a + " completed 2000", b + " running 100"}
	}
	if strings.Join(catchUp, ", ") != strings.Join(want, ", ") {
		t.Errorf("rows after the reconnect %v, want %v", catchUp, want)
	}
	srv.mu.Lock()
	resumed := slices.Clone(srv.resumed)
	srv.mu.Unlock()
	if len(resumed) < 2 || resumed[0] != "" || resumed[len(resumed)-1] == "" {
		t.Errorf("Last-Event-ID of the streams opened %q: want none on the first, the last id seen on the reconnection", resumed)
	}
	// The stream goes on.
	srv.progress("case-3", b, counters{Files: 3, FilesDone: 2, Bytes: 300, BytesDone: 200, Lines: 2})
	srv.finish("case-3", b, "completed", counters{Files: 3, FilesDone: 3, Bytes: 300, BytesDone: 300, Lines: 3})
	rows = waitRows(t, s, "after the reconnect", hasRow(b, "completed", 300))
	checkNoRepeat(t, rows)
	finals := 0
	for _, r := range rows {
		if r.Status == "completed" {
			finals++
		}
	}
	if finals != 2 {
		t.Errorf("%d completed rows, want one per run: %v", finals, rows)
	}
	_, include := s.snapshot()
	for i, inc := range include[1:] {
		if inc != data.IncludeDataOnly {
			t.Errorf("frame %d after a reconnect repeats the schema", i+1)
		}
	}
}

// TestImportRowOrder covers the cases a live server makes hard to time:
// an event that arrives after a backfill that already read a later state,
// and a cancellation requested on the server, then confirmed by the agent.
func TestImportRowOrder(t *testing.T) {
	in := testInstance(t, "http://127.0.0.1:1")
	s := &importsStream{in: in, sender: newRecordingSender(), sent: map[string]importRow{}}
	ev := func(typ string, u client.ImportUpdate) importRow {
		u.RunID = "r"
		return rowOfEvent(client.ImportEvent{Type: typ, Import: u})
	}
	s.accept(rowOfRun(client.ImportRun{ID: "r", Status: "running", Counters: client.RunCounters{Files: 2, Bytes: 200, BytesDone: 150}}))
	s.accept(ev("import.progress", client.ImportUpdate{Status: "running", Files: 2, Bytes: 200, BytesDone: 100})) // older: dropped
	s.accept(ev("import.progress", client.ImportUpdate{Status: "running", Files: 2, Bytes: 200, BytesDone: 150})) // same: dropped
	s.accept(ev("import.cancelled", client.ImportUpdate{Status: "cancelled", Files: 2, Bytes: 200, BytesDone: 150, Error: "cancel requested"}))
	s.accept(ev("import.progress", client.ImportUpdate{Status: "running", Files: 2, Bytes: 200, BytesDone: 160})) // before the cancel: dropped
	s.accept(ev("import.cancelled", client.ImportUpdate{Status: "cancelled", Files: 2, FilesDone: 1, Bytes: 200, BytesDone: 170}))
	s.accept(rowOfRun(client.ImportRun{ID: "r", Status: "cancelled", CancelRequested: time.Now(), Counters: client.RunCounters{Files: 2, Bytes: 200, BytesDone: 150}})) // a stale read
	var got []string
	for _, r := range s.pending {
		got = append(got, fmt.Sprintf("%s %d %q", r.Status, r.BytesDone, r.Error))
	}
	want := []string{`running 150 ""`, `cancelled 150 "cancel requested"`, `cancelled 170 ""`}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("states %v, want %v", got, want)
	}
	if p := (&importRow{Status: "running", Files: 4, FilesDone: 1}).percent(); p != 25 {
		t.Errorf("percent by files %v", p)
	}
	if r := (&importRow{BytesDone: 3000, DurationMS: 1500}).throughput(); r != 2000 {
		t.Errorf("throughput %v", r)
	}
}

// TestImportsStreamIdle: a connection that sends nothing, not even the
// server's heartbeats, is given up and opened again.
func TestImportsStreamIdle(t *testing.T) {
	a0, b0, c0 := importsIdleTimeout, importsBackoffMin, importsBackoffMax
	t.Cleanup(func() { importsIdleTimeout, importsBackoffMin, importsBackoffMax = a0, b0, c0 })
	importsIdleTimeout, importsBackoffMin, importsBackoffMax = 200*time.Millisecond, 10*time.Millisecond, 20*time.Millisecond
	f := newFakeServer(t)
	f.answer("/api/v1/workspaces", 200, `{"workspaces":[]}`)
	f.handle(client.EventsPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent: a dead proxy
	})
	in := testInstance(t, f.srv.URL)
	s, _ := importsRun(t, in, `{}`)
	deadline := time.Now().Add(20 * time.Second)
	for f.count(client.EventsPath) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections: a silent connection was not given up", f.count(client.EventsPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := f.last(client.EventsPath); r.params.Get("types") != "import.*" || r.header.Get("X-Scope-OrgID") != "team-a" || r.header.Get("Authorization") != "Bearer s3cret" {
		t.Errorf("event stream request %v %v", r.params, r.header)
	}
	// With no run, the schema still went out once.
	fs, include := s.snapshot()
	if len(fs) != 1 || include[0] != data.IncludeAll {
		t.Errorf("%d frames: want one empty frame with the schema", len(fs))
	}
}

// TestImportsErrors: refusals end the stream with what to change; a
// server without the API says so.
func TestImportsErrors(t *testing.T) {
	f := newFakeServer(t)
	refuse := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid API token"}`)
	}
	f.handle(client.EventsPath, refuse)
	f.handle("/api/v1/workspaces", refuse)
	in := testInstance(t, f.srv.URL)
	_, done := importsRun(t, in, `{}`)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "refused the API token (HTTP 401)") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("bad token: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a refused token did not end the stream")
	}
	sub, err := in.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: "imports/x", Data: json.RawMessage(`{}`)})
	if err != nil || sub.Status != backend.SubscribeStreamStatusPermissionDenied {
		t.Errorf("subscribe with a bad token: %v %v", sub, err)
	}
	res := in.query(context.Background(), backend.DataQuery{RefID: "A", JSON: []byte(`{"queryType":"imports"}`),
		TimeRange: backend.TimeRange{From: time.Now().Add(-time.Hour), To: time.Now()}}, false)
	if res.Status != backend.StatusUnauthorized || !strings.Contains(res.Error.Error(), "invalid API token") {
		t.Errorf("query with a bad token: %v %v", res.Status, res.Error)
	}

	loki := newFakeServer(t)
	in = testInstance(t, loki.srv.URL)
	_, done = importsRun(t, in, `{"workspace":"case-1"}`)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "needs a logsift server") {
			t.Errorf("Loki: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a server without the event stream did not end the stream")
	}
	if _, err := in.importsChannelQuery(json.RawMessage(`{"workspace":"a\u0001b"}`)); err == nil {
		t.Error("a workspace with a control character was accepted")
	}
	if _, err := in.importsChannelQuery(json.RawMessage(`[1]`)); err == nil || !strings.Contains(err.Error(), "not an import progress query") {
		t.Errorf("bad channel data: %v", err)
	}
}

// TestImportsQueryAndInitialData: QueryData and a new subscriber get the
// runs' state now, one row per run: those running and those updated in
// the range.
func TestImportsQueryAndInitialData(t *testing.T) {
	srv := newImportsServer(t)
	old := srv.start("case-1", 1, 10)
	srv.finish("case-1", old, "completed", counters{Files: 1, FilesDone: 1, Bytes: 10, BytesDone: 10})
	time.Sleep(20 * time.Millisecond)
	from := time.Now()
	time.Sleep(20 * time.Millisecond)
	a := srv.start("case-1", 2, 200)
	srv.progress("case-1", a, counters{Files: 2, Bytes: 200, BytesDone: 50})
	srv.progress("case-1", a, counters{Files: 2, Bytes: 200, BytesDone: 80})
	b := srv.start("case-2", 1, 100)
	srv.finish("case-2", b, "failed", counters{Files: 1, Bytes: 100}, "bundle.zip: not a zip file")
	in := testInstance(t, srv.url)

	query := func(model string) []runRow {
		t.Helper()
		resp, err := in.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{
			RefID: "A", JSON: []byte(model), TimeRange: backend.TimeRange{From: from, To: time.Now()},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Responses["A"]
		if r.Error != nil || len(r.Frames) != 1 {
			t.Fatalf("%s: %v, %d frames", model, r.Error, len(r.Frames))
		}
		return runRows(t, r.Frames[0])
	}
	rows := query(`{"refId":"A","queryType":"imports"}`)
	if len(rows) != 2 || rows[0].RunID != a || rows[0].BytesDone != 80 || rows[1].RunID != b || rows[1].Error != "bundle.zip: not a zip file" {
		t.Errorf("all workspaces: %v; want a at 80 bytes and b failed, not the run finished before the range", rows)
	}
	rows = query(`{"refId":"A","queryType":"imports","workspace":"case-2"}`)
	if len(rows) != 1 || rows[0].RunID != b || rows[0].Status != "failed" {
		t.Errorf("workspace case-2: %v", rows)
	}
	if rows := query(`{"refId":"A","queryType":"imports","workspace":"not-yet"}`); len(rows) != 0 {
		t.Errorf("a workspace that does not exist yet: %v", rows)
	}

	sub, err := in.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: "imports/x",
		Data: json.RawMessage(fmt.Sprintf(`{"refId":"B","from":%d}`, from.UnixMilli()))})
	if err != nil || sub.Status != backend.SubscribeStreamStatusOK || sub.InitialData == nil {
		t.Fatalf("subscribe: %+v %v", sub, err)
	}
	f := new(data.Frame)
	if err := json.Unmarshal(sub.InitialData.Data(), f); err != nil {
		t.Fatalf("initial data: %v", err)
	}
	if rows := runRows(t, f); len(rows) != 2 || f.RefID != "B" {
		t.Errorf("initial data %v (refId %q)", rows, f.RefID)
	}
}
