//go:build unix

package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/importer"
	rcv "github.com/logsift/logsift/agent/internal/receiver"
	"github.com/logsift/logsift/agent/ship"
	"github.com/logsift/logsift/agent/track"
	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/workspace"
)

// bundle writes files*linesPer numbered lines (one record each, with a
// timestamp) into dir/bundle and returns the folder, its size and its
// lines.
func bundle(t *testing.T, dir string, files, linesPer, pad int) (string, int64, []string) {
	t.Helper()
	root := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 5, 3, 10, 0, 0, 0, time.UTC)
	var size int64
	var all []string
	filler := strings.Repeat("abcdefghij", pad/10+1)[:pad]
	for f := range files {
		var b bytes.Buffer
		for i := range linesPer {
			line := fmt.Sprintf("%s INFO file=%03d line=%07d %s", base.Add(time.Duration(f*linesPer+i)*time.Millisecond).Format("2006-01-02 15:04:05.000"), f, i, filler)
			b.WriteString(line)
			b.WriteByte('\n')
			all = append(all, line)
		}
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("host-%03d.log", f)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		size += int64(b.Len())
	}
	return root, size, all
}

func importConfig(dir, addr, tenantID string) *config.Config {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "agent")
	cfg.Output.URL = addr
	cfg.Output.Tenant = tenantID
	cfg.Output.MinBackoff = 20 * time.Millisecond
	cfg.Output.MaxBackoff = 200 * time.Millisecond
	cfg.Files = []config.FileGroup{{Paths: []string{filepath.Join(dir, "unused", "*.log")}}}
	cfg.Metrics.ListenAddress = ""
	return &cfg
}

// newToken writes a tokens file with one token and returns the file and
// the token's secret.
func newToken(t *testing.T, dir, tenantID string, scopes ...auth.Scope) (path, secret string) {
	t.Helper()
	path = filepath.Join(dir, "tokens.json")
	tf, err := auth.OpenTokenFile(path, auth.TokenFileOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	secret, _, err = tf.Create(auth.TokenSpec{Name: "agent", Tenant: tenantID, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return path, secret
}

func writeSecret(t *testing.T, dir, secret string) string {
	t.Helper()
	p := filepath.Join(dir, "agent.token")
	// A trailing newline, as an editor or `echo` leaves it.
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startServer(t *testing.T, opts rcv.Options) *rcv.Server {
	t.Helper()
	s, err := rcv.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// TestImportRunTracked imports a folder through a server whose calls need
// a token (pkg/auth's Guard), and checks that the run is registered and
// completed with counters that match what the store holds.
func TestImportRunTracked(t *testing.T) {
	dir := t.TempDir()
	tokens, secret := newToken(t, dir, "acme", auth.ScopePush)
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server"), Workspaces: true, TokensFile: tokens})
	root, size, lines := bundle(t, dir, 5, 3000, 60)

	cfg := importConfig(dir, srv.Addr(), "acme")
	cfg.Output.TokenFile = writeSecret(t, dir, secret)
	var logs logBuffer
	res, err := ImportRun(context.Background(), cfg, ImportOptions{
		Options:        importer.Options{Paths: []string{root}, Workspace: "case-4711", ChunkBytes: 32 << 10},
		ReportInterval: 20 * time.Millisecond,
		RunHost:        "laptop-1",
	}, logs.logger())
	if err != nil {
		t.Fatalf("import: %v\n%s", err, logs.String())
	}
	if res.RunID == "" || res.RunStatus.String() != "RUN_STATUS_COMPLETED" {
		t.Fatalf("run %q status %v\n%s", res.RunID, res.RunStatus, logs.String())
	}
	if strings.Contains(logs.String(), "without TLS") {
		t.Error("warned about a plaintext token to a loopback address")
	}
	run, err := srv.Workspaces.GetRun(context.Background(), "acme", res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := srv.Stats("acme", "case-4711")
	if err != nil {
		t.Fatal(err)
	}
	c := run.Counters
	if run.Status != workspace.StatusCompleted || run.Finished.IsZero() || run.Workspace != "case-4711" || run.Host != "laptop-1" || run.Source != root {
		t.Errorf("run %+v", run)
	}
	if c.Files != 5 || c.FilesDone != 5 || c.Bytes != size || c.BytesDone != size || c.Lines != int64(len(lines)) {
		t.Errorf("counters %+v; want 5 files, %d bytes, %d lines", c, size, len(lines))
	}
	if st.Chunks < 10 || c.Chunks != int64(st.Chunks) || st.Entries != int64(len(lines)) || st.Streams != 5 {
		t.Errorf("run counted %d chunks; the store holds %d chunks, %d entries in %d streams (want %d entries in 5)",
			c.Chunks, st.Chunks, st.Entries, st.Streams, len(lines))
	}
	if run.ErrorCount != 0 {
		t.Errorf("errors: %v", run.Errors)
	}
	stored := map[string]int{}
	for _, l := range st.Lines {
		stored[l]++
	}
	for _, l := range lines {
		if stored[l] != 1 {
			t.Fatalf("line stored %d times: %q", stored[l], l)
		}
	}
	// Every stream carries the workspace label the run belongs to.
	ws, err := srv.Workspaces.Get(context.Background(), "acme", "case-4711")
	if err != nil || len(ws.Sources) != 1 || ws.Sources[0].Path != root {
		t.Errorf("workspace %+v, %v", ws, err)
	}
}

// TestImportCancelledByServer cancels a run from the server while the
// import is under way (the server acknowledges slowly, the spool is small,
// so reading waits on the server): the agent stops reading, sends nothing
// more, and the run ends cancelled with the counters of what was stored.
func TestImportCancelledByServer(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server"), Workspaces: true, AckDelay: 15 * time.Millisecond})
	root, size, lines := bundle(t, dir, 16, 20000, 100) // about 40 MiB
	cfg := importConfig(dir, srv.Addr(), "t1")
	cfg.Spool.SegmentBytes = 256 << 10
	cfg.Spool.MaxBytes = 1 << 20

	type result struct {
		res *ImportResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := ImportRun(context.Background(), cfg, ImportOptions{
			Options:        importer.Options{Paths: []string{root}, Workspace: "case-9", ChunkBytes: 64 << 10},
			ReportInterval: 50 * time.Millisecond,
		}, quiet())
		done <- result{res, err}
	}()

	runID := waitForRun(t, srv, "t1", "case-9", func(r workspace.Run) bool { return r.Counters.Chunks >= 20 })
	before, err := srv.Workspaces.GetRun(context.Background(), "t1", runID)
	if err != nil {
		t.Fatal(err)
	}
	if before.Counters.Bytes != size || before.Counters.Files != 16 {
		t.Errorf("planned totals not reported: %+v", before.Counters)
	}
	if _, err := srv.Workspaces.CancelRun(context.Background(), "t1", runID); err != nil {
		t.Fatal(err)
	}
	cancelled := time.Now()
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the import did not stop after the cancellation")
	}
	stopped := time.Since(cancelled)
	if !errors.Is(r.err, ErrCancelledByServer) || !track.IsCancelled(r.err) {
		t.Fatalf("import returned %v, want a cancellation by the server", r.err)
	}
	if r.res.RunID != runID || r.res.RunStatus.String() != "RUN_STATUS_CANCELLED" {
		t.Errorf("result %+v", r.res)
	}
	run, err := srv.Workspaces.GetRun(context.Background(), "t1", runID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := srv.Stats("t1", "case-9")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped %s after the cancel: %d of %d bytes read, %d chunks stored (%d at the cancel), %d discarded unsent",
		stopped.Round(time.Millisecond), run.Counters.BytesDone, size, st.Chunks, before.Counters.Chunks, r.res.Dropped)
	if run.Status != workspace.StatusCancelled || run.Finished.IsZero() {
		t.Errorf("run status %s, finished %v", run.Status, run.Finished)
	}
	// Reading stopped well before the end: the server acknowledges about
	// 130 chunks a second and the data makes about 650.
	if run.Counters.BytesDone >= size || st.Entries >= int64(len(lines)) {
		t.Errorf("the import read %d of %d bytes and stored %d of %d lines; it did not stop", run.Counters.BytesDone, size, st.Entries, len(lines))
	}
	// Every chunk the agent counted as acknowledged is in the store, and
	// nothing else: what was not yet sent was discarded, not sent later.
	if run.Counters.Chunks != int64(st.Chunks) || run.Counters.Chunks < before.Counters.Chunks {
		t.Errorf("run counted %d chunks (%d before the cancel), the store holds %d", run.Counters.Chunks, before.Counters.Chunks, st.Chunks)
	}
	segs, _ := filepath.Glob(filepath.Join(cfg.DataDir, "import-spool", "*.seg"))
	if len(segs) != 0 {
		t.Errorf("the import spool keeps %d segments after the cancellation; they would be sent by the next import", len(segs))
	}
	time.Sleep(200 * time.Millisecond)
	if again, _ := srv.Stats("t1", "case-9"); again.Chunks != st.Chunks {
		t.Errorf("chunks kept arriving after the import returned: %d, then %d", st.Chunks, again.Chunks)
	}
}

// waitForRun waits for the one run of a workspace to satisfy ok and
// returns its ID.
func waitForRun(t *testing.T, srv *rcv.Server, tenantID, ws string, ok func(workspace.Run) bool) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		runs, err := srv.Workspaces.ListRuns(context.Background(), tenantID, ws, 0)
		if err == nil && len(runs) == 1 && ok(runs[0]) {
			return runs[0].ID
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the run never got there")
	return ""
}

// TestImportInterruptedThenResumed interrupts an import on the agent (its
// context ends, as on Ctrl-C): the run is recorded as cancelled with the
// reason; running the same import again completes it, and every line is
// stored once.
func TestImportInterruptedThenResumed(t *testing.T) {
	dir := t.TempDir()
	srvDir := filepath.Join(dir, "server")
	srv := startServer(t, rcv.Options{Dir: srvDir, Workspaces: true, AckDelay: 15 * time.Millisecond})
	root, _, lines := bundle(t, dir, 6, 10000, 100)
	cfg := importConfig(dir, srv.Addr(), "t1")
	cfg.Spool.SegmentBytes = 256 << 10
	cfg.Spool.MaxBytes = 1 << 20
	opts := ImportOptions{
		Options:        importer.Options{Paths: []string{root}, Workspace: "case-5", ChunkBytes: 64 << 10, StateDir: filepath.Join(dir, "state")},
		ReportInterval: 50 * time.Millisecond,
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	var first *ImportResult
	go func() {
		res, err := ImportRun(ctx, cfg, opts, quiet())
		first = res
		done <- err
	}()
	runID := waitForRun(t, srv, "t1", "case-5", func(r workspace.Run) bool { return r.Counters.Chunks >= 10 })
	cancel(errors.New("interrupt signal received"))
	if err := <-done; err == nil || ctx.Err() == nil {
		t.Fatalf("interrupted import returned %v", err)
	}
	run, err := srv.Workspaces.GetRun(context.Background(), "t1", runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != workspace.StatusCancelled || run.Finished.IsZero() || len(run.Errors) != 1 ||
		!strings.Contains(run.Errors[0], "interrupted on the agent (interrupt signal received)") {
		t.Fatalf("run %s finished %v errors %q", run.Status, run.Finished, run.Errors)
	}
	if first.RunStatus.String() != "RUN_STATUS_CANCELLED" {
		t.Errorf("result %+v", first)
	}

	// Resume against a server that acknowledges at once.
	addr := srv.Addr()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, rcv.Options{Dir: srvDir, Addr: addr, Workspaces: true})
	res, err := ImportRun(context.Background(), cfg, opts, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if res.RunID == runID || res.RunStatus.String() != "RUN_STATUS_COMPLETED" {
		t.Errorf("second run %+v", res)
	}
	st, err := srv.Stats("t1", "case-5")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for _, l := range st.Lines {
		stored[l]++
	}
	if len(stored) != len(lines) {
		t.Errorf("%d distinct lines stored, want %d", len(stored), len(lines))
	}
	for _, l := range lines {
		if stored[l] != 1 {
			t.Fatalf("line stored %d times: %q", stored[l], l)
		}
	}
}

// TestImportWithoutWorkspaceService imports into a server that only has
// the chunk service: the import works, untracked, and says so once.
func TestImportWithoutWorkspaceService(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server")})
	root, _, lines := bundle(t, dir, 2, 1000, 20)
	var logs logBuffer
	res, err := ImportRun(context.Background(), importConfig(dir, srv.Addr(), "t1"), ImportOptions{
		Options:        importer.Options{Paths: []string{root}, Workspace: "old-server"},
		ReportInterval: 10 * time.Millisecond,
	}, logs.logger())
	if err != nil {
		t.Fatalf("import: %v\n%s", err, logs.String())
	}
	if res.RunID != "" || res.Summary.Lines != int64(len(lines)) {
		t.Errorf("result %+v, summary %+v", res, res.Summary)
	}
	if n := strings.Count(logs.String(), "no workspace service"); n != 1 {
		t.Errorf("said %d times that the server has no workspace service:\n%s", n, logs.String())
	}
	st, err := srv.Stats("t1", "old-server")
	if err != nil || st.Entries != int64(len(lines)) {
		t.Errorf("stored %d entries, want %d (%v)", st.Entries, len(lines), err)
	}
}

// TestImportTokenRefused checks the messages for a wrong token and for no
// token, and that neither imports anything.
func TestImportTokenRefused(t *testing.T) {
	dir := t.TempDir()
	tokens, _ := newToken(t, dir, "acme", auth.ScopePush)
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server"), Workspaces: true, TokensFile: tokens})
	root, _, _ := bundle(t, dir, 1, 100, 10)
	for _, c := range []struct{ token, want string }{
		{"lsk_" + strings.Repeat("x", 43), "the server refused the token (401/Unauthenticated: unauthenticated: the API token is invalid, unknown or revoked)"},
		{"", "the server requires an API token and none was sent"},
	} {
		cfg := importConfig(dir, srv.Addr(), "acme")
		cfg.Output.Token = c.token
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := ImportRun(ctx, cfg, ImportOptions{Options: importer.Options{Paths: []string{root}, Workspace: "w"}}, quiet())
		cancel()
		var re *ship.RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("token %q: error %v, want %q", c.token, err, c.want)
		}
	}
	if st, _ := srv.Stats("acme", ""); st.Chunks != 0 {
		t.Errorf("%d chunks stored without a valid token", st.Chunks)
	}
}

// TestImportTokenWithoutRunScope runs against a server whose rules keep
// the workspace service to admin tokens (pkg/auth before it had rules for
// it): a push token imports untracked, with a warning.
func TestImportTokenWithoutRunScope(t *testing.T) {
	dir := t.TempDir()
	tokens, secret := newToken(t, dir, "acme", auth.ScopePush)
	var routes []auth.Route
	for _, r := range auth.DefaultGRPCRoutes() {
		if !strings.HasPrefix(r.Path, "/logsift.v1.WorkspaceService/") {
			routes = append(routes, r)
		}
	}
	routes = append(routes, auth.Route{Path: "/logsift.v1.WorkspaceService/", Scope: auth.ScopeAdmin})
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server"), Workspaces: true, TokensFile: tokens, GRPCRoutes: routes})
	root, _, lines := bundle(t, dir, 1, 500, 10)
	cfg := importConfig(dir, srv.Addr(), "acme")
	cfg.Output.Token = secret
	var logs logBuffer
	res, err := ImportRun(context.Background(), cfg, ImportOptions{Options: importer.Options{Paths: []string{root}, Workspace: "w"}}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	if res.RunID != "" || !strings.Contains(logs.String(), "does not let this token track import runs") {
		t.Errorf("run %q; log:\n%s", res.RunID, logs.String())
	}
	if st, _ := srv.Stats("acme", "w"); st.Entries != int64(len(lines)) {
		t.Errorf("stored %d entries, want %d", st.Entries, len(lines))
	}
}

// TestPlaintextTokenWarning warns once when a token goes to a
// non-loopback address without TLS, and not otherwise.
func TestPlaintextTokenWarning(t *testing.T) {
	for _, c := range []struct {
		typ, url string
		tls      bool
		warn     bool
	}{
		{"logsift", "logs.example.com:9095", false, true},
		{"logsift", "logs.example.com:9095", true, false},
		{"logsift", "127.0.0.1:9095", false, false},
		{"logsift", "[::1]:9095", false, false},
		{"logsift", "localhost:9095", false, false},
		{"loki", "http://10.0.0.5:3100", false, true},
		{"loki", "https://loki.example.com", false, false},
		{"loki", "http://localhost:3100", false, false},
	} {
		cfg := config.Default()
		cfg.Output.Type, cfg.Output.URL, cfg.Output.TLS.Enabled, cfg.Output.Token = c.typ, c.url, c.tls, "lsk_secret"
		var logs logBuffer
		if _, err := NewOutput(&cfg, logs.logger()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(logs.String(), "without TLS"); got != map[bool]int{true: 1, false: 0}[c.warn] {
			t.Errorf("%s %s tls=%v: %d warnings:\n%s", c.typ, c.url, c.tls, got, logs.String())
		}
		if strings.Contains(logs.String(), "lsk_secret") {
			t.Errorf("the token is in the log: %s", logs.String())
		}
	}
}

// TestImportThroughLokiOutput: the Loki output imports without run
// tracking, sends the token as a bearer token, and a 401 stops the import
// with the refusal.
func TestImportThroughLokiOutput(t *testing.T) {
	var pushes atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer lsk_good" {
			http.Error(w, "unauthenticated: the API token is invalid, unknown or revoked", http.StatusUnauthorized)
			return
		}
		pushes.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hs.Close()
	dir := t.TempDir()
	root, _, _ := bundle(t, dir, 2, 200, 10)
	cfg := importConfig(dir, hs.URL, "t1")
	cfg.Output.Type = "loki"

	cfg.Output.Token = "lsk_good"
	var logs logBuffer
	res, err := ImportRun(context.Background(), cfg, ImportOptions{Options: importer.Options{Paths: []string{root}, Workspace: "w"}}, logs.logger())
	if err != nil || res.RunID != "" || pushes.Load() == 0 || !strings.Contains(logs.String(), "run tracking needs the logsift output") {
		t.Fatalf("import: %v, run %q, %d pushes\n%s", err, res.RunID, pushes.Load(), logs.String())
	}

	cfg.Output.Token = "lsk_bad"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = ImportRun(ctx, cfg, ImportOptions{Options: importer.Options{Paths: []string{root}, Workspace: "w2"}}, quiet())
	var re *ship.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "the server refused the token (401/Unauthenticated") {
		t.Fatalf("import with a bad token: %v", err)
	}
	if dl, _ := filepath.Glob(filepath.Join(cfg.DataDir, "dead-letter", "*")); len(dl) != 0 {
		t.Errorf("refused chunks were dead-lettered: %q", dl)
	}
}

// TestImportRunFailsOnTruncatedFile: a truncated .gz among good files is
// imported as far as it can be read, and the run ends failed on the
// server, naming the file, as the agent's exit status does.
func TestImportRunFailsOnTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, rcv.Options{Dir: filepath.Join(dir, "server"), Workspaces: true})
	root, _, _ := bundle(t, dir, 2, 2000, 60)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	for i := range 20000 {
		fmt.Fprintf(zw, "2024-05-03 11:00:%02d.000 ERROR cut line=%07d %s\n", i%60, i, strings.Repeat("x", 80))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cut.log.gz"), gz.Bytes()[:gz.Len()/2], 0o644); err != nil {
		t.Fatal(err)
	}

	var logs logBuffer
	res, err := ImportRun(context.Background(), importConfig(dir, srv.Addr(), "acme"), ImportOptions{
		Options:        importer.Options{Paths: []string{root}, Workspace: "cut", ChunkBytes: 32 << 10},
		ReportInterval: 20 * time.Millisecond,
	}, logs.logger())
	if err != nil {
		t.Fatalf("import: %v\n%s", err, logs.String())
	}
	if res.Summary == nil || res.Summary.Failed != 1 || res.RunStatus.String() != "RUN_STATUS_FAILED" {
		t.Fatalf("summary %+v, run status %v; want one failed file and a failed run\n%s", res.Summary, res.RunStatus, logs.String())
	}
	run, err := srv.Workspaces.GetRun(context.Background(), "acme", res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != workspace.StatusFailed || len(run.Errors) == 0 || !strings.Contains(strings.Join(run.Errors, "\n"), "cut.log.gz") {
		t.Errorf("run %s with errors %q; want failed, naming cut.log.gz", run.Status, run.Errors)
	}
	// The good files and the readable part of the cut one are stored.
	st, err := srv.Stats("acme", "cut")
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries <= 4000 {
		t.Errorf("%d entries stored; want the 4000 good lines and part of the cut file", st.Entries)
	}
}
