package workspace

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/tenant"
)

// GRPC serves logsift.v1.WorkspaceService. The tenant comes from the
// request metadata "x-scope-orgid" under the same rules as the HTTP
// header.
type GRPC struct {
	api.UnimplementedWorkspaceServiceServer
	Service *Service
	Tenants tenant.Resolver
}

// RegisterGRPC registers the workspace service on s.
func RegisterGRPC(s grpc.ServiceRegistrar, svc *Service, tenants tenant.Resolver) {
	api.RegisterWorkspaceServiceServer(s, &GRPC{Service: svc, Tenants: tenants})
}

// call resolves the tenant and the actor for one request.
func (g *GRPC) call(ctx context.Context) (context.Context, string, error) {
	t, err := g.Tenants.SingleGRPC(ctx)
	if err != nil {
		return ctx, "", err
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil && events.ActorFromContext(ctx) == "" {
		ctx = events.WithActor(ctx, p.Addr.String())
	}
	return ctx, t, nil
}

func grpcError(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, ErrConflict):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrUnavailable):
		code = codes.Unimplemented
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

func (g *GRPC) List(ctx context.Context, _ *api.ListWorkspacesRequest) (*api.ListWorkspacesResponse, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := g.Service.List(ctx, t)
	if err != nil {
		return nil, grpcError(err)
	}
	out := &api.ListWorkspacesResponse{Workspaces: make([]*api.Workspace, len(ws))}
	for i := range ws {
		out.Workspaces[i] = workspaceToProto(&ws[i])
	}
	return out, nil
}

func (g *GRPC) Get(ctx context.Context, req *api.GetWorkspaceRequest) (*api.Workspace, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	w, err := g.Service.Get(ctx, t, req.GetName())
	if err != nil {
		return nil, grpcError(err)
	}
	return workspaceToProto(w), nil
}

func (g *GRPC) Create(ctx context.Context, req *api.CreateWorkspaceRequest) (*api.Workspace, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	w, err := g.Service.Create(ctx, t, CreateRequest{Name: req.GetName(), Description: req.GetDescription(), Labels: req.GetLabels()})
	if err != nil {
		return nil, grpcError(err)
	}
	return workspaceToProto(w), nil
}

func (g *GRPC) Rename(ctx context.Context, req *api.RenameWorkspaceRequest) (*api.Workspace, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	w, err := g.Service.Rename(ctx, t, req.GetName(), req.GetNewName())
	if err != nil {
		return nil, grpcError(err)
	}
	return workspaceToProto(w), nil
}

func (g *GRPC) Delete(ctx context.Context, req *api.DeleteWorkspaceRequest) (*api.DeleteWorkspaceResponse, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	n, err := g.Service.Delete(ctx, t, req.GetName(), req.GetConfirm())
	if err != nil {
		return nil, grpcError(err)
	}
	return &api.DeleteWorkspaceResponse{Name: req.GetName(), DeletedStreams: int64(n)}, nil
}

func (g *GRPC) AddSource(ctx context.Context, req *api.AddSourceRequest) (*api.Workspace, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	src := req.GetSource()
	w, err := g.Service.AddSource(ctx, t, req.GetWorkspace(), Source{Kind: SourceKind(src.GetKind()), Path: src.GetPath(), Host: src.GetHost()})
	if err != nil {
		return nil, grpcError(err)
	}
	return workspaceToProto(w), nil
}

func (g *GRPC) StartRun(ctx context.Context, req *api.StartRunRequest) (*api.ImportRun, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	r, err := g.Service.StartRun(ctx, t, StartRunRequest{Workspace: req.GetWorkspace(), Host: req.GetHost(),
		Source: req.GetSource(), Files: req.GetFiles(), Bytes: req.GetBytes()})
	if err != nil {
		return nil, grpcError(err)
	}
	return runToProto(r), nil
}

func (g *GRPC) ReportProgress(ctx context.Context, req *api.ReportProgressRequest) (*api.ImportRun, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	r, err := g.Service.ReportProgress(ctx, t, req.GetRunId(), countersFromProto(req.GetCounters()), req.GetErrors())
	if err != nil {
		return nil, grpcError(err)
	}
	return runToProto(r), nil
}

func (g *GRPC) FinishRun(ctx context.Context, req *api.FinishRunRequest) (*api.ImportRun, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	st, ok := statusFromProto[req.GetStatus()]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "a run finishes as COMPLETED, FAILED or CANCELLED, not %s", req.GetStatus())
	}
	r, err := g.Service.FinishRun(ctx, t, req.GetRunId(), st, countersFromProto(req.GetCounters()), req.GetErrors())
	if err != nil {
		return nil, grpcError(err)
	}
	return runToProto(r), nil
}

func (g *GRPC) CancelRun(ctx context.Context, req *api.CancelRunRequest) (*api.ImportRun, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	r, err := g.Service.CancelRun(ctx, t, req.GetRunId())
	if err != nil {
		return nil, grpcError(err)
	}
	return runToProto(r), nil
}

func (g *GRPC) GetRun(ctx context.Context, req *api.GetRunRequest) (*api.ImportRun, error) {
	ctx, t, err := g.call(ctx)
	if err != nil {
		return nil, err
	}
	r, err := g.Service.GetRun(ctx, t, req.GetRunId())
	if err != nil {
		return nil, grpcError(err)
	}
	return runToProto(r), nil
}

var statusToProto = map[Status]api.RunStatus{
	StatusRunning:   api.RunStatus_RUN_STATUS_RUNNING,
	StatusCompleted: api.RunStatus_RUN_STATUS_COMPLETED,
	StatusFailed:    api.RunStatus_RUN_STATUS_FAILED,
	StatusCancelled: api.RunStatus_RUN_STATUS_CANCELLED,
}

// statusFromProto has the statuses a run may finish with.
var statusFromProto = map[api.RunStatus]Status{
	api.RunStatus_RUN_STATUS_COMPLETED: StatusCompleted,
	api.RunStatus_RUN_STATUS_FAILED:    StatusFailed,
	api.RunStatus_RUN_STATUS_CANCELLED: StatusCancelled,
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func workspaceToProto(w *Workspace) *api.Workspace {
	out := &api.Workspace{
		Name: w.Name, Tenant: w.Tenant, CreatedUnixNano: unixNano(w.Created), Description: w.Description,
		Labels: w.Labels, Aliases: w.Aliases,
	}
	for _, s := range w.Sources {
		out.Sources = append(out.Sources, &api.Source{Kind: string(s.Kind), Path: s.Path, Host: s.Host, AddedUnixNano: unixNano(s.Added)})
	}
	for i := range w.Runs {
		out.Runs = append(out.Runs, runToProto(&w.Runs[i]))
	}
	if len(w.Runs) == 0 && w.LastRun != nil {
		out.Runs = []*api.ImportRun{runToProto(w.LastRun)}
	}
	return out
}

func runToProto(r *Run) *api.ImportRun {
	return &api.ImportRun{
		Id: r.ID, Workspace: r.Workspace, Host: r.Host, Source: r.Source, Status: statusToProto[r.Status],
		StartedUnixNano: unixNano(r.Started), UpdatedUnixNano: unixNano(r.Updated), FinishedUnixNano: unixNano(r.Finished),
		Counters: CountersToProto(r.Counters), Errors: r.Errors, ErrorCount: r.ErrorCount,
		CancelRequestedUnixNano: unixNano(r.CancelRequested),
	}
}

// CountersToProto converts run counters for the wire.
func CountersToProto(c Counters) *api.RunCounters {
	return &api.RunCounters{Files: c.Files, FilesDone: c.FilesDone, Bytes: c.Bytes, BytesDone: c.BytesDone, Lines: c.Lines, Chunks: c.Chunks}
}

func countersFromProto(c *api.RunCounters) Counters {
	return Counters{Files: c.GetFiles(), FilesDone: c.GetFilesDone(), Bytes: c.GetBytes(), BytesDone: c.GetBytesDone(), Lines: c.GetLines(), Chunks: c.GetChunks()}
}
