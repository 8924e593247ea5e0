package track

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/logsift/logsift/agent/internal/receiver"
	"github.com/logsift/logsift/agent/ship"
	"github.com/logsift/logsift/pkg/workspace"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func serve(t *testing.T, addr string) *receiver.Server {
	t.Helper()
	srv, err := receiver.Start(receiver.Options{Dir: t.TempDir(), Addr: addr, Workspaces: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func options(conn *grpc.ClientConn, ws string) Options {
	return Options{Conn: conn, Tenant: "t1", Workspace: ws, Host: "h", Source: "/tmp/b.zip", Interval: 10 * time.Millisecond,
		Backoff: ship.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}, Logger: quiet()}
}

// TestWatchEndsWhenWorkspaceDeleted: deleting the workspace cancels its
// running import, which the next report learns.
func TestWatchEndsWhenWorkspaceDeleted(t *testing.T) {
	srv := serve(t, "")
	opts := options(dial(t, srv.Addr()), "case-1")
	opts.Counters = func() Counters { return Counters{Lines: 7} }
	run, err := Start(context.Background(), opts, 3, 300)
	if err != nil || run == nil {
		t.Fatalf("start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Watch(context.Background()) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := srv.Workspaces.GetRun(context.Background(), "t1", run.ID())
		if err != nil {
			t.Fatal(err)
		}
		if r.Counters.Lines == 7 && r.Counters.Files == 3 && r.Counters.Bytes == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress never arrived: %+v", r.Counters)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := srv.Workspaces.Delete(context.Background(), "t1", "case-1", "case-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !IsCancelled(err) {
			t.Fatalf("Watch returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not notice the deletion")
	}
}

// TestErrorsAreSentInShares: many errors reach the server across calls,
// each once, cut to the server's length.
func TestErrorsAreSentInShares(t *testing.T) {
	srv := serve(t, "")
	opts := options(dial(t, srv.Addr()), "case-2")
	var errs []string
	for i := range 1234 {
		errs = append(errs, fmt.Sprintf("skipped f%04d: binary file %s", i, strings.Repeat("x", 2000)))
	}
	opts.Errors = func(from int) []string {
		if from >= len(errs) {
			return nil
		}
		return errs[from:]
	}
	run, err := Start(context.Background(), opts, 0, 0)
	if err != nil || run == nil {
		t.Fatalf("start: %v", err)
	}
	st, err := run.Finish(context.Background(), Failed, Counters{Files: 1}, "import not fully acknowledged")
	if err != nil || st.String() != "RUN_STATUS_FAILED" {
		t.Fatalf("finish: %v %v", st, err)
	}
	r, err := srv.Workspaces.GetRun(context.Background(), "t1", run.ID())
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorCount != 1235 || len(r.Errors) != workspace.MaxRunErrors || !strings.HasPrefix(r.Errors[99], "skipped f0099: binary file xxx") ||
		len(r.Errors[0]) > workspace.MaxErrorLength+len("…") {
		t.Fatalf("errors: count %d, kept %d, first %d bytes, last kept %.40q", r.ErrorCount, len(r.Errors), len(r.Errors[0]), r.Errors[len(r.Errors)-1])
	}
}

// TestStartWaitsForTheServer: StartRun is retried until the server
// listens.
func TestStartWaitsForTheServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conn := dial(t, addr)
	dir := t.TempDir()
	started := make(chan *receiver.Server, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		srv, err := receiver.Start(receiver.Options{Dir: dir, Addr: addr, Workspaces: true})
		if err != nil {
			t.Error(err)
		}
		started <- srv
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := Start(ctx, options(conn, "case-3"), 1, 1)
	if srv := <-started; srv != nil {
		defer srv.Close()
	}
	if err != nil || run == nil {
		t.Fatalf("start: %v", err)
	}
}

func TestStartRefusesAnInvalidWorkspace(t *testing.T) {
	srv := serve(t, "")
	_, err := Start(context.Background(), options(dial(t, srv.Addr()), "no spaces please"), 0, 0)
	if err == nil || !strings.Contains(err.Error(), `the server refused to start an import run in workspace "no spaces please": `) {
		t.Fatalf("err %v", err)
	}
}

// TestFinishAfterServerCancelStaysCancelled: the agent reports
// completed, the server keeps cancelled and says so.
func TestFinishAfterServerCancelStaysCancelled(t *testing.T) {
	srv := serve(t, "")
	run, err := Start(context.Background(), options(dial(t, srv.Addr()), "case-4"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Workspaces.CancelRun(context.Background(), "t1", run.ID()); err != nil {
		t.Fatal(err)
	}
	st, err := run.Finish(context.Background(), Completed, Counters{Lines: 5})
	if err != nil || st.String() != "RUN_STATUS_CANCELLED" {
		t.Fatalf("finish: %v %v", st, err)
	}
}
