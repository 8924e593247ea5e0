package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/tenant"
	"github.com/logsift/logsift/pkg/workspace"
)

type recordingDeleter struct {
	mu     sync.Mutex
	tenant string
	ms     []*labels.Matcher
}

func (d *recordingDeleter) DeleteStreams(_ context.Context, t string, ms []*labels.Matcher) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tenant, d.ms = t, ms
	return 2, nil
}

// workspaceServer serves the workspace API in process, as the server
// mounts it, and records the headers the CLI sends.
func workspaceServer(t *testing.T) (*httptest.Server, *workspace.Service, *recordingDeleter, *http.Header) {
	t.Helper()
	del := &recordingDeleter{}
	svc, err := workspace.Open(t.TempDir(), workspace.Options{Data: del})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	mux := http.NewServeMux()
	(&workspace.HTTP{Service: svc, Tenants: tenant.Resolver{}}).Register(mux)
	var mu sync.Mutex
	last := &http.Header{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*last = r.Header.Clone()
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, svc, del, last
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := workspaceCommand(context.Background(), args, &out)
	return out.String(), err
}

func TestWorkspaceCLI(t *testing.T) {
	srv, svc, del, hdr := workspaceServer(t)
	flags := []string{"-server", srv.URL, "-tenant", "acme", "-token", "s3cret"}
	cli := func(args ...string) (string, error) {
		t.Helper()
		return runCLI(t, append(args, flags...)...)
	}

	out, err := cli("ls")
	if err != nil || !strings.Contains(out, "no workspaces") {
		t.Fatalf("empty ls: %q %v", out, err)
	}
	if (*hdr).Get("X-Scope-OrgID") != "acme" || (*hdr).Get("Authorization") != "Bearer s3cret" {
		t.Fatalf("headers sent: %v", *hdr)
	}
	if out, err = cli("create", "case-4711", "-description", "customer bundle"); err != nil || out != "created workspace case-4711\n" {
		t.Fatalf("create: %q %v", out, err)
	}
	if _, err = cli("create", "case-4711"); err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "409") {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err = cli("create", "bad name"); err == nil || !strings.Contains(err.Error(), "unsupported character") {
		t.Fatalf("bad name: %v", err)
	}

	// An import run with progress and an error, as an agent would leave it.
	ctx := context.Background()
	run, err := svc.StartRun(ctx, "acme", workspace.StartRunRequest{Workspace: "case-4711", Host: "laptop", Source: "bundle.zip", Files: 3, Bytes: 3 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ReportProgress(ctx, "acme", run.ID, workspace.Counters{FilesDone: 1, BytesDone: 1 << 20, Lines: 1234, Chunks: 2}, []string{"app.log.gz: unexpected EOF"}); err != nil {
		t.Fatal(err)
	}

	out, err = cli("ls")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "case-4711") ||
		!strings.Contains(lines[1], "running") {
		t.Fatalf("ls table:\n%s", out)
	}
	if fields := strings.Fields(lines[1]); fields[1] != "1" || fields[2] != "1" {
		t.Fatalf("ls counts (sources, runs): %v", fields)
	}

	out, err = cli("show", "case-4711")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Name:", "case-4711", "Tenant:", "acme", "customer bundle", "Sources (1):", "import", "bundle.zip",
		"Import runs (1):", run.ID, "running", "1/3", "1.0MiB/3.0MiB", "1234", "laptop", "app.log.gz: unexpected EOF"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}

	// Cancel the run from the CLI; the server side sees it.
	if out, err = cli("cancel", "case-4711", run.ID); err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %q %v", out, err)
	}
	if !svc.IsCancelled(run.ID) {
		t.Fatal("run not cancelled on the server")
	}

	if out, err = cli("rename", "case-4711", "case-4712"); err != nil || !strings.Contains(out, "case-4712") || !strings.Contains(out, "case-4711") {
		t.Fatalf("rename: %q %v", out, err)
	}

	// -json prints the server's answer.
	out, err = cli("show", "case-4712", "-json")
	var w workspace.Workspace
	if err != nil || json.Unmarshal([]byte(out), &w) != nil || w.Name != "case-4712" || len(w.Runs) != 1 {
		t.Fatalf("show -json: %q %v", out, err)
	}

	// rm needs --yes; with it the data goes too.
	if _, err = cli("rm", "case-4712"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("rm without --yes: %v", err)
	}
	if del.ms != nil {
		t.Fatal("data deleted without --yes")
	}
	if out, err = cli("rm", "case-4712", "--yes"); err != nil || !strings.Contains(out, "deleted workspace case-4712") || !strings.Contains(out, "2 streams") {
		t.Fatalf("rm: %q %v", out, err)
	}
	if del.tenant != "acme" || len(del.ms) != 1 || !del.ms[0].Matches("case-4711") || !del.ms[0].Matches("case-4712") {
		t.Fatalf("data deletion: tenant %q matchers %v", del.tenant, del.ms)
	}
	if _, err = cli("show", "case-4712"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("show after rm: %v", err)
	}

	// Usage errors.
	for _, args := range [][]string{{"frobnicate"}, {"create"}, {"rm", "a", "b"}, {"ls", "-nope"}} {
		if _, err := cli(args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := runCLI(t, "ls", "-server", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "talk to the logsift server") {
		t.Fatalf("unreachable server: %v", err)
	}
}
