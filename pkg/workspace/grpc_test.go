package workspace

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/events/stream"
	"github.com/logsift/logsift/pkg/tenant"
)

func startGRPC(t *testing.T, f *fixture, resolver tenant.Resolver) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	RegisterGRPC(srv, f.svc, resolver)
	stream.RegisterGRPC(srv, stream.Options{Bus: f.bus, Tenants: resolver, Aliases: f.svc.Aliases})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func asTenant(t string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "x-scope-orgid", t)
}

func wantCode(t *testing.T, err error, code codes.Code, what string) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

func TestGRPCWorkspaceServiceAndEventStream(t *testing.T) {
	f := newFixture(t)
	conn := startGRPC(t, f, tenant.Resolver{})
	ws := api.NewWorkspaceServiceClient(conn)
	ev := api.NewEventServiceClient(conn)
	ctx := asTenant("t1")

	// A live subscription to the workspace's import events.
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := ev.Subscribe(subCtx, &api.SubscribeRequest{Types: []string{"import.*"}, Workspace: "case-7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Header(); err != nil {
		t.Fatal(err)
	}

	w, err := ws.Create(ctx, &api.CreateWorkspaceRequest{Name: "case-7", Labels: map[string]string{"team": "x"}})
	if err != nil || w.GetName() != "case-7" || w.GetTenant() != "t1" || w.GetCreatedUnixNano() == 0 {
		t.Fatalf("create: %v %v", w, err)
	}
	_, err = ws.Create(ctx, &api.CreateWorkspaceRequest{Name: "case-7"})
	wantCode(t, err, codes.AlreadyExists, "duplicate create")
	_, err = ws.Create(ctx, &api.CreateWorkspaceRequest{Name: "no way"})
	wantCode(t, err, codes.InvalidArgument, "bad name")

	run, err := ws.StartRun(ctx, &api.StartRunRequest{Workspace: "case-7", Host: "h", Source: "b.tar.gz", Files: 2, Bytes: 20})
	if err != nil || run.GetStatus() != api.RunStatus_RUN_STATUS_RUNNING {
		t.Fatalf("start run: %v %v", run, err)
	}
	// Another tenant's subscription or call sees nothing of it.
	_, err = ws.GetRun(asTenant("t2"), &api.GetRunRequest{RunId: run.GetId()})
	wantCode(t, err, codes.NotFound, "other tenant's run")
	_, err = ws.Get(asTenant("t2"), &api.GetWorkspaceRequest{Name: "case-7"})
	wantCode(t, err, codes.NotFound, "other tenant's workspace")

	if _, err := ws.CancelRun(ctx, &api.CancelRunRequest{RunId: run.GetId()}); err != nil {
		t.Fatal(err)
	}
	// The agent's next report answers CANCELLED.
	got, err := ws.ReportProgress(ctx, &api.ReportProgressRequest{RunId: run.GetId(), Counters: &api.RunCounters{FilesDone: 1}})
	if err != nil || got.GetStatus() != api.RunStatus_RUN_STATUS_CANCELLED || got.GetCounters().GetFilesDone() != 1 || got.GetCounters().GetFiles() != 2 {
		t.Fatalf("report after cancel: %v %v", got, err)
	}
	_, err = ws.FinishRun(ctx, &api.FinishRunRequest{RunId: run.GetId(), Status: api.RunStatus_RUN_STATUS_RUNNING})
	wantCode(t, err, codes.InvalidArgument, "finish as running")
	got, err = ws.FinishRun(ctx, &api.FinishRunRequest{RunId: run.GetId(), Status: api.RunStatus_RUN_STATUS_CANCELLED})
	if err != nil || got.GetFinishedUnixNano() == 0 {
		t.Fatalf("finish: %v %v", got, err)
	}
	_, err = ws.ReportProgress(ctx, &api.ReportProgressRequest{RunId: run.GetId()})
	wantCode(t, err, codes.FailedPrecondition, "report after finish")

	// The stream delivered the run's events in order: no progress event
	// for the report on a cancelled run, the cancellation request, then
	// the agent's confirmation.
	want := []struct{ typ, msg string }{{"import.started", ""}, {"import.cancelled", "cancel requested"}, {"import.cancelled", ""}}
	for i, w := range want {
		e, err := events.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetType() != w.typ || e.GetImport().GetError() != w.msg || e.GetTenant() != "t1" || e.GetImport().GetRunId() != run.GetId() {
			t.Fatalf("event %d: %v, want %s %q", i, e, w.typ, w.msg)
		}
	}

	renamed, err := ws.Rename(ctx, &api.RenameWorkspaceRequest{Name: "case-7", NewName: "case-8"})
	if err != nil || renamed.GetName() != "case-8" || len(renamed.GetAliases()) != 1 || len(renamed.GetRuns()) != 1 {
		t.Fatalf("rename: %v %v", renamed, err)
	}
	list, err := ws.List(ctx, &api.ListWorkspacesRequest{})
	if err != nil || len(list.GetWorkspaces()) != 1 || list.GetWorkspaces()[0].GetRuns()[0].GetId() != run.GetId() {
		t.Fatalf("list: %v %v", list, err)
	}
	_, err = ws.Delete(ctx, &api.DeleteWorkspaceRequest{Name: "case-8"})
	wantCode(t, err, codes.InvalidArgument, "delete without confirmation")
	del, err := ws.Delete(ctx, &api.DeleteWorkspaceRequest{Name: "case-8", Confirm: "case-8"})
	if err != nil || del.GetDeletedStreams() != 3 {
		t.Fatalf("delete: %v %v", del, err)
	}

	// Required tenant header.
	strict := api.NewWorkspaceServiceClient(startGRPC(t, newFixture(t), tenant.Resolver{Required: true}))
	_, err = strict.List(context.Background(), &api.ListWorkspacesRequest{})
	wantCode(t, err, codes.Unauthenticated, "no tenant")
	_, err = strict.List(asTenant("a|b"), &api.ListWorkspacesRequest{})
	wantCode(t, err, codes.InvalidArgument, "two tenants on a write service")
}

func TestGRPCEventStreamRejectsBadFilters(t *testing.T) {
	f := newFixture(t)
	conn := startGRPC(t, f, tenant.Resolver{})
	ev := api.NewEventServiceClient(conn)
	ctx, cancel := context.WithTimeout(asTenant("t1"), 10*time.Second)
	defer cancel()
	s, err := ev.Subscribe(ctx, &api.SubscribeRequest{Types: []string{"no.such.type"}})
	if err == nil {
		_, err = s.Recv()
	}
	wantCode(t, err, codes.InvalidArgument, "unknown event type")
}
