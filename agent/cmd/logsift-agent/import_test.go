//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/internal/receiver"
	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/workspace"
)

// importSetup starts a receiver with the workspace service and pkg/auth's
// Guard (one push token for tenant acme), writes a bundle of numbered
// lines and an agent configuration, and returns them.
type importSetup struct {
	srv    *receiver.Server
	secret string
	root   string
	cfg    string
	lines  int
	dir    string
}

func newImportSetup(t *testing.T, files, linesPer int, ackDelay time.Duration, spoolYAML string) *importSetup {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	tf, err := auth.OpenTokenFile(tokens, auth.TokenFileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := tf.Create(auth.TokenSpec{Tenant: "acme", Scopes: []auth.Scope{auth.ScopePush}})
	tf.Close()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := receiver.Start(receiver.Options{Dir: filepath.Join(dir, "server"), Workspaces: true, TokensFile: tokens, AckDelay: ackDelay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing the receiver: %v", err)
		}
	})
	root := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("p", 100)
	for f := range files {
		var b bytes.Buffer
		for i := range linesPer {
			fmt.Fprintf(&b, "2024-05-03 10:%02d:%02d.%03d ERROR f=%d n=%d %s\n", i/60000%60, i/1000%60, i%1000, f, i, pad)
		}
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("app-%d.log", f)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "agent.yaml")
	yaml := fmt.Sprintf(`
data_dir: agent-data
output: {type: logsift, url: %q, tenant: acme, min_backoff: 20ms, max_backoff: 200ms}
files: [{paths: [unused/*.log]}]
metrics: {listen_address: ""}
%s`, srv.Addr(), spoolYAML)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return &importSetup{srv: srv, secret: secret, root: root, cfg: cfg, lines: files * linesPer, dir: dir}
}

func (s *importSetup) run(extra ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	args := append([]string{"import", s.root, "--workspace", "case-7", "--config", s.cfg, "--state-dir", ""}, extra...)
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestImportCommandTrackedWithEnvToken imports with the token from
// LOGSIFT_TOKEN and prints the run's end.
func TestImportCommandTrackedWithEnvToken(t *testing.T) {
	s := newImportSetup(t, 2, 2000, 0, "")
	t.Setenv(tokenEnv, s.secret)
	code, stdout, stderr := s.run()
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	runs, err := s.srv.Workspaces.ListRuns(context.Background(), "acme", "case-7", 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	if want := fmt.Sprintf("import run %s of workspace case-7: completed", runs[0].ID); !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout)
	}
	if !strings.Contains(stderr, "logsift workspace cancel case-7 "+runs[0].ID) {
		t.Errorf("stderr does not say how to cancel the run:\n%s", stderr)
	}
	if runs[0].Status != workspace.StatusCompleted || runs[0].Counters.Lines != int64(s.lines) {
		t.Errorf("run %+v", runs[0])
	}
	if st, _ := s.srv.Stats("acme", "case-7"); st.Entries != int64(s.lines) {
		t.Errorf("stored %d entries, want %d", st.Entries, s.lines)
	}
}

// TestImportCommandCancelledByServer cancels the run from the server and
// expects the distinct exit code and message.
func TestImportCommandCancelledByServer(t *testing.T) {
	s := newImportSetup(t, 8, 40000, 400*time.Millisecond, "spool: {segment_bytes: 256KiB, max_bytes: 1MiB}\n")
	go func() {
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			runs, err := s.srv.Workspaces.ListRuns(context.Background(), "acme", "case-7", 0)
			// Progress is reported once a second; cancel after the first. Chunks
			// are 2 MiB of lines (about 24 here), each held 400 ms by the server.
			if err == nil && len(runs) == 1 && runs[0].Counters.BytesDone > 0 {
				_, _ = s.srv.Workspaces.CancelRun(context.Background(), "acme", runs[0].ID)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	code, stdout, stderr := s.run("--token", s.secret)
	if code != exitCancelled {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitCancelled, stdout, stderr)
	}
	if !strings.Contains(stderr, "import cancelled by the server (cancelled on the server)") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if !strings.Contains(stdout, ": cancelled") {
		t.Errorf("stdout does not report the cancelled run:\n%s", stdout)
	}
	runs, _ := s.srv.Workspaces.ListRuns(context.Background(), "acme", "case-7", 0)
	if len(runs) != 1 || runs[0].Status != workspace.StatusCancelled || runs[0].Finished.IsZero() {
		t.Fatalf("runs %+v", runs)
	}
	// What was not sent when the cancellation arrived never reaches the
	// server; what was acknowledged is counted.
	st, err := s.srv.Stats("acme", "case-7")
	if err != nil || st.Entries >= int64(s.lines) || int64(st.Chunks) != runs[0].Counters.Chunks {
		t.Errorf("stored %d of %d lines in %d chunks, run counted %d chunks (%v)", st.Entries, s.lines, st.Chunks, runs[0].Counters.Chunks, err)
	}
}

// TestImportCommandWrongToken names the problem and exits 1.
func TestImportCommandWrongToken(t *testing.T) {
	s := newImportSetup(t, 1, 10, 0, "")
	bad := filepath.Join(s.dir, "bad.token")
	if err := os.WriteFile(bad, []byte("lsk_"+strings.Repeat("0", 43)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := s.run("--token-file", bad)
	if code != 1 || !strings.Contains(stderr, "logsift-agent import: the server refused the token (401/Unauthenticated") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestImportCommandTokenFlags(t *testing.T) {
	s := newImportSetup(t, 1, 10, 0, "")
	if code, _, stderr := s.run("--token", "a", "--token-file", "b"); code != 2 || !strings.Contains(stderr, "mutually exclusive") {
		t.Errorf("both flags: exit %d %s", code, stderr)
	}
	if code, _, stderr := s.run("--token-file", filepath.Join(s.dir, "missing")); code != 1 || !strings.Contains(stderr, "--token-file: read token file") {
		t.Errorf("missing file: exit %d %s", code, stderr)
	}
	if code, _, stderr := s.run("--token", "two words"); code != 1 || !strings.Contains(stderr, "--token: the token has a space") {
		t.Errorf("bad token: exit %d %s", code, stderr)
	}
}

// TestApplyTokenFlags: --token, then --token-file, then the environment,
// each over the configuration file.
func TestApplyTokenFlags(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "t")
	if err := os.WriteFile(f, []byte("  lsk_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flag, file, env  string
		token, tokenFile string
	}{
		{"", "", "", "cfg", ""},
		{"", "", "lsk_env", "lsk_env", ""},
		{"", f, "lsk_env", "", f},
		{"lsk_flag", "", "lsk_env", "lsk_flag", ""},
	} {
		o := config.Output{Token: "cfg"}
		if err := applyTokenFlags(&o, c.flag, c.file, c.env); err != nil {
			t.Fatal(err)
		}
		if o.Token != c.token || o.TokenFile != c.tokenFile {
			t.Errorf("%+v: got token %q file %q", c, o.Token, o.TokenFile)
		}
		if got, err := o.ResolveToken(); err != nil || (c.tokenFile != "" && got != "lsk_file") {
			t.Errorf("%+v: resolved %q, %v", c, got, err)
		}
	}
}

// TestImportCommandInterrupted sends SIGINT to a running import (the
// built binary): it exits 130 and the run is recorded as cancelled on
// the agent's side.
func TestImportCommandInterrupted(t *testing.T) {
	s := newImportSetup(t, 8, 40000, 400*time.Millisecond, "spool: {segment_bytes: 256KiB, max_bytes: 1MiB}\n")
	bin := filepath.Join(t.TempDir(), "logsift-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "import", s.root, "--workspace", "case-7", "--config", s.cfg, "--state-dir", "", "--token", s.secret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(time.Minute)
	var runID string
	for runID == "" && time.Now().Before(deadline) {
		runs, err := s.srv.Workspaces.ListRuns(context.Background(), "acme", "case-7", 0)
		if err == nil && len(runs) == 1 && runs[0].Counters.BytesDone > 0 {
			runID = runs[0].ID
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if runID == "" {
		t.Fatalf("no run reported progress\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d\n%s\n%s", err, exitInterrupted, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "import interrupted; run the same command again to resume it") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	run, err := s.srv.Workspaces.GetRun(context.Background(), "acme", runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != workspace.StatusCancelled || run.Finished.IsZero() || len(run.Errors) != 1 ||
		!strings.HasPrefix(run.Errors[0], "interrupted on the agent (interrupt signal received)") {
		t.Errorf("run %s, finished %v, errors %q", run.Status, run.Finished, run.Errors)
	}
}
