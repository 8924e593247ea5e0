// Package stream serves the event bus to clients as it happens: server-sent
// events over HTTP (/api/v1/events) and logsift.v1.EventService/Subscribe
// over gRPC. The Grafana plugin uses them to show import progress live.
// Every client sees only its own tenant's events.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/tenant"
)

// Path is where the SSE handler is mounted.
const Path = "/api/v1/events"

// maxWorkspaceParam bounds the workspace filter; names are at most 128.
const maxWorkspaceParam = 128

// Options are shared by the SSE and gRPC endpoints.
type Options struct {
	Bus     events.Bus
	Tenants tenant.Resolver
	// Aliases expands a workspace name to every name its data and events
	// may carry (workspace.Service.Aliases); nil uses the name alone.
	Aliases func(tenant, name string) []string
	// Heartbeat is the interval of SSE comment lines that keep proxies
	// from closing an idle stream (default 15s).
	Heartbeat time.Duration
	Log       *slog.Logger
	// Done ends every open stream when it is closed. http.Server.Shutdown
	// and grpc.Server.GracefulStop wait for handlers to return, and a
	// stream otherwise returns only when its client goes: close Done
	// first (e.g. from http.Server.RegisterOnShutdown).
	Done <-chan struct{}
}

func (o *Options) heartbeat() time.Duration {
	if o.Heartbeat <= 0 {
		return 15 * time.Second
	}
	return o.Heartbeat
}

func (o *Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.Default()
	}
	return o.Log
}

// filter builds the client's filter from its tenants and parameters.
func (o *Options) filter(tenants []string, types []string, workspace string) (*events.Filter, error) {
	ts, err := events.ParseTypes(strings.Join(types, ","))
	if err != nil {
		return nil, err
	}
	f := &events.Filter{Tenants: tenants, Types: ts}
	if workspace != "" {
		if len(workspace) > maxWorkspaceParam {
			return nil, fmt.Errorf("workspace parameter is longer than %d bytes", maxWorkspaceParam)
		}
		names := []string{workspace}
		if o.Aliases != nil {
			for _, t := range tenants {
				names = append(names, o.Aliases(t, workspace)...)
			}
		}
		f.Workspace = names
	}
	return f, nil
}

// SSE serves server-sent events. Parameters: types (comma-separated or
// repeated; "import.*" names a group) and workspace. Each event is
//
//	id: <n>
//	event: <type>
//	data: <event JSON, as events.Event.Marshal>
//
// A comment line ": heartbeat" goes out every Heartbeat, and an
// "event: dropped" with {"dropped": n} when the stream lost events
// because the client read too slowly.
type SSE struct {
	Options
}

// NewSSE returns the SSE handler; mount it at Path.
func NewSSE(o Options) *SSE { return &SSE{Options: o} }

func (h *SSE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeJSONError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	tenants, err := h.Tenants.Multi(r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, tenant.ErrNoOrgID) {
			code = http.StatusUnauthorized
		}
		writeJSONError(w, code, err.Error())
		return
	}
	q := r.URL.Query()
	f, err := h.filter(tenants, q["types"], q.Get("workspace"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	rc := http.NewResponseController(w)
	// A server-wide write timeout would cut every stream; this one has
	// none of its own.
	_ = rc.SetWriteDeadline(time.Time{})
	ctx := r.Context()
	sub, err := h.Bus.Subscribe(ctx, f.Types...)
	if err != nil {
		h.log().Error("event stream: subscribe", "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "event bus unavailable: "+err.Error())
		return
	}
	defer sub.Close()

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	w.WriteHeader(http.StatusOK)
	// The first bytes tell the client the stream is open.
	if _, err := fmt.Fprint(w, "retry: 3000\n: connected\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		h.log().Error("event stream: the response writer cannot flush; SSE needs it (wrap writers with Unwrap)", "err", err)
		return
	}
	tick := time.NewTicker(h.heartbeat())
	defer tick.Stop()
	var seq, reported int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.Done:
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			if !f.Match(e) {
				continue
			}
			if d := sub.Dropped(); d > reported {
				reported = d
				if _, err := fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", d); err != nil {
					return
				}
			}
			b, err := e.Marshal()
			if err != nil {
				continue
			}
			seq++
			// JSON has no raw newlines, so the payload is one data line.
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", seq, e.Type, b); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// GRPC serves logsift.v1.EventService.
type GRPC struct {
	api.UnimplementedEventServiceServer
	Options
}

// RegisterGRPC registers the event service on s.
func RegisterGRPC(s grpc.ServiceRegistrar, o Options) {
	api.RegisterEventServiceServer(s, &GRPC{Options: o})
}

// Subscribe streams the caller's tenant's events until the client goes.
func (g *GRPC) Subscribe(req *api.SubscribeRequest, srv api.EventService_SubscribeServer) error {
	ctx := srv.Context()
	tenants, err := tenantsFromGRPC(ctx, g.Tenants)
	if err != nil {
		return err
	}
	f, err := g.filter(tenants, req.GetTypes(), req.GetWorkspace())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	sub, err := g.Bus.Subscribe(ctx, f.Types...)
	if err != nil {
		return status.Errorf(codes.Unavailable, "event bus: %v", err)
	}
	defer sub.Close()
	// Headers go out now, so that the client knows it is subscribed
	// before the first event.
	if err := srv.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.Done:
			return status.Error(codes.Unavailable, "server shutting down")
		case e, ok := <-sub.C:
			if !ok {
				return status.Error(codes.Unavailable, "event bus closed")
			}
			if !f.Match(e) {
				continue
			}
			pe := ToProto(e)
			pe.Dropped = sub.Dropped()
			if err := srv.Send(pe); err != nil {
				return err
			}
		}
	}
}

// tenantsFromGRPC reads "x-scope-orgid" like tenant.Resolver.Multi reads
// the header ("a|b" allowed: the stream is read-only).
func tenantsFromGRPC(ctx context.Context, r tenant.Resolver) ([]string, error) {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(strings.ToLower(tenant.Header)); len(v) > 0 {
			id = strings.TrimSpace(v[0])
		}
	}
	if id == "" {
		if r.Required {
			return nil, status.Error(codes.Unauthenticated, tenant.ErrNoOrgID.Error())
		}
		id = r.Default
		if id == "" {
			id = tenant.DefaultID
		}
	}
	ids, err := tenant.ParseQueryIDs(id)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return ids, nil
}

// ToProto converts an event for the wire.
func ToProto(e *events.Event) *api.Event {
	out := &api.Event{Type: string(e.Type), Tenant: e.Tenant, Origin: e.Origin, Actor: e.Actor}
	if !e.Time.IsZero() {
		out.TimeUnixNano = e.Time.UnixNano()
	}
	switch {
	case e.Search != nil:
		s := e.Search
		out.Payload = &api.Event_Search{Search: &api.SearchEvent{QueryId: s.QueryID, Query: s.Query,
			DurationNs: int64(s.Duration), Results: int64(s.Results), Bytes: s.Bytes, Error: s.Error}}
	case e.Import != nil:
		i := e.Import
		out.Payload = &api.Event_Import{Import: &api.ImportEvent{Workspace: i.Workspace, RunId: i.RunID, Host: i.Host,
			Status: i.Status, Error: i.Error, DurationMs: i.DurationMS, Counters: &api.RunCounters{
				Files: int64(i.Files), FilesDone: int64(i.FilesDone), Bytes: i.Bytes, BytesDone: i.BytesDone,
				Lines: i.Lines, Chunks: int64(i.Chunks)}}}
	case e.Cache != nil:
		out.Payload = &api.Event_Cache{Cache: &api.CacheEvent{Key: e.Cache.Key, Level: e.Cache.Level, Reason: e.Cache.Reason}}
	case e.Workspace != nil:
		out.Payload = &api.Event_Workspace{Workspace: &api.WorkspaceEvent{Name: e.Workspace.Name, OldName: e.Workspace.OldName,
			DeletedStreams: int64(e.Workspace.DeletedStreams)}}
	case e.Range != nil:
		out.Payload = &api.Event_Range{Range: &api.RangeEvent{MinTime: e.Range.MinTime, MaxTime: e.Range.MaxTime}}
	}
	return out
}
