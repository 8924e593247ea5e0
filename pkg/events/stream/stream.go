// Package stream serves the event bus to clients as it happens: server-sent
// events over HTTP (/api/v1/events), with replay after a reconnect from a
// server-wide journal of recent events, and logsift.v1.EventService/
// Subscribe over gRPC (live only). The Grafana plugin uses them to show
// import progress live. Every client sees only its own tenant's events.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
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
	// Bus feeds the gRPC stream; Journal the SSE stream, which replays
	// from it (StartJournal on the same bus).
	Bus     events.Bus
	Journal *Journal
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

// SSE serves server-sent events from the journal. Parameters: types
// (comma-separated or repeated; "import.*" names a group), workspace and
// lastEventId (for clients that cannot set the Last-Event-ID header; the
// header wins). Each event is
//
//	id: <epoch>-<seq>
//	event: <type>
//	data: <event JSON, as events.Event.Marshal>
//
// with the journal's server-wide ID. A client that reconnects with the ID
// of the last event it got receives the retained events after it that
// pass its filter, then live ones. An ID the journal cannot resume from
// (another epoch: the server restarted or is another one; older than the
// journal holds; malformed) gets an "event: reset" before the live
// events, telling the client to re-read the state it follows.
//
// A comment line ": heartbeat" goes out every Heartbeat, with the ID the
// stream has read up to (so that a client whose filter passed nothing
// for a while still resumes where it was), and an "event: dropped" with
// {"dropped": n} when the stream lost events because the client read too
// slowly: the journal moved past them.
type SSE struct {
	Options
}

// NewSSE returns the SSE handler; mount it at Path. o.Journal must be
// set.
func NewSSE(o Options) *SSE { return &SSE{Options: o} }

// LastEventIDParam is the query parameter that stands in for the
// Last-Event-ID header.
const LastEventIDParam = "lastEventId"

// sseBatch is how many journal entries a stream copies per lock.
const sseBatch = 256

// Reset is the data of an "event: reset".
type Reset struct {
	// Reason is "epoch" (the ID is of another journal: a restart or
	// another server), "expired" (older than the journal holds),
	// "ahead" (beyond the newest event) or "invalid" (not an event ID).
	Reason string `json:"reason"`
	// LastEventID is the ID the client sent.
	LastEventID string `json:"last_event_id"`
	// Missed, for "expired", is at most how many events (of all
	// tenants and types) the journal no longer holds after the ID;
	// otherwise unknown and 0.
	Missed  uint64 `json:"missed,omitempty"`
	Message string `json:"message"`
}

// resume finds where a stream that sent lastID starts: after lastID when
// the journal holds what follows it, else at the newest event with a
// reset to send.
func (j *Journal) resume(lastID string) (uint64, *Reset) {
	// One look at the journal: the position and its oldest event.
	j.mu.Lock()
	pos, first := j.next-1, j.next-uint64(j.count)
	j.mu.Unlock()
	if lastID == "" {
		return pos, nil
	}
	id, err := ParseID(lastID)
	if len(lastID) > 64 {
		// Echoed back in the reset; a long one need not be.
		lastID = lastID[:64] + "…"
	}
	switch {
	case err != nil:
		return pos, &Reset{Reason: "invalid", LastEventID: lastID, Message: err.Error() + "; events may be missing, re-read the state"}
	case id.Epoch != j.epoch:
		return pos, &Reset{Reason: "epoch", LastEventID: lastID, Message: "the event ID is from another server run; events may be missing, re-read the state"}
	case id.Seq > pos:
		return pos, &Reset{Reason: "ahead", LastEventID: lastID, Message: "the event ID is beyond the newest event; events may be missing, re-read the state"}
	}
	if id.Seq+1 < first {
		missed := first - (id.Seq + 1)
		return pos, &Reset{Reason: "expired", LastEventID: lastID, Missed: missed,
			Message: fmt.Sprintf("the server no longer holds up to %d events after this ID; re-read the state", missed)}
	}
	return id.Seq, nil
}

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
	j := h.Journal
	if j == nil {
		h.log().Error("event stream: no journal configured")
		writeJSONError(w, http.StatusServiceUnavailable, "event stream unavailable: no journal")
		return
	}
	select {
	case <-j.Done():
		writeJSONError(w, http.StatusServiceUnavailable, "event stream unavailable: the event bus closed")
		return
	default:
	}
	// The browser's EventSource sends the header on a reconnect, with the
	// newest ID, while a lastEventId in its URL stays what it was when
	// the page made it: the header wins.
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = q.Get(LastEventIDParam)
	}
	// The position is taken before the headers go out: every event
	// published after the client has them is after it.
	cursor, reset := j.resume(lastID)

	rc := http.NewResponseController(w)
	// A server-wide write timeout would cut every stream; this one has
	// none of its own.
	_ = rc.SetWriteDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	w.WriteHeader(http.StatusOK)
	id := ID{Epoch: j.epoch, Seq: cursor}
	// The first bytes tell the client the stream is open, and where it
	// is: a client that reconnects before any event resumes from here.
	buf := fmt.Appendf(nil, "retry: 3000\nid: %s\n: connected\n\n", id)
	if reset != nil {
		data, _ := json.Marshal(reset)
		buf = fmt.Appendf(buf, "id: %s\nevent: reset\ndata: %s\n\n", id, data)
	}
	if _, err := w.Write(buf); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		h.log().Error("event stream: the response writer cannot flush; SSE needs it (wrap writers with Unwrap)", "err", err)
		return
	}
	(&sseStream{w: w, rc: rc, j: j, f: f, cursor: cursor, sentID: cursor, done: h.Done}).run(r.Context(), h.heartbeat())
}

// sseStream is one client's read position in the journal.
type sseStream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	j    *Journal
	f    *events.Filter
	done <-chan struct{}
	// cursor is the sequence of the last journal event the stream
	// passed (sent or filtered out); sentID the last ID the client got.
	cursor, sentID uint64
	// dropped counts the events lost to this client so far.
	dropped uint64
	buf     []byte
}

func (s *sseStream) run(ctx context.Context, heartbeat time.Duration) {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	batch := make([]entry, 0, sseBatch)
	for {
		// A stream that always has events to send still ends when it
		// should and still beats.
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-tick.C:
			if !s.heartbeat() {
				return
			}
		default:
		}
		var skipped uint64
		var wake <-chan struct{}
		batch, skipped, wake = s.j.read(s.cursor, batch)
		if skipped > 0 {
			s.cursor += skipped
			if !s.reportDropped(skipped) {
				return
			}
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case <-s.j.Done():
				// Events appended before the journal stopped are sent.
				if s.j.position() > s.cursor {
					continue
				}
				return
			case <-tick.C:
				if !s.heartbeat() {
					return
				}
			case <-wake:
			}
			continue
		}
		s.buf = s.buf[:0]
		for i := range batch {
			e := &batch[i]
			s.cursor = e.seq
			if e.lost > 0 {
				// Lost by the journal itself: reported to every reader,
				// as they may have been its own.
				s.appendDropped(uint64(e.lost))
			}
			if !s.f.Match(e.key) {
				continue
			}
			s.buf = append(s.buf, "id: "...)
			s.buf = append(s.buf, s.j.epoch...)
			s.buf = append(s.buf, '-')
			s.buf = strconv.AppendUint(s.buf, e.seq, 10)
			s.buf = append(s.buf, "\nevent: "...)
			s.buf = append(s.buf, e.typ...)
			// JSON has no raw newlines, so the payload is one data line.
			s.buf = append(s.buf, "\ndata: "...)
			s.buf = append(s.buf, e.data...)
			s.buf = append(s.buf, "\n\n"...)
			s.sentID = e.seq
		}
		clear(batch) // the entries' data may be evicted meanwhile
		if len(s.buf) == 0 {
			continue
		}
		if _, err := s.w.Write(s.buf); err != nil {
			return
		}
		if err := s.rc.Flush(); err != nil {
			return
		}
	}
}

// heartbeat writes the heartbeat comment, after the ID the stream has
// read up to when it moved past events the client did not want.
func (s *sseStream) heartbeat() bool {
	s.buf = s.buf[:0]
	if s.cursor != s.sentID {
		s.buf = fmt.Appendf(s.buf, "id: %s\n", ID{Epoch: s.j.epoch, Seq: s.cursor})
		s.sentID = s.cursor
	}
	s.buf = append(s.buf, ": heartbeat\n\n"...)
	if _, err := s.w.Write(s.buf); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

// reportDropped tells the client that n journal events passed before
// it read them. They are counted whether or not they would have passed
// its filter: the journal no longer knows.
func (s *sseStream) reportDropped(n uint64) bool {
	s.buf = s.buf[:0]
	s.appendDropped(n)
	if _, err := s.w.Write(s.buf); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

// appendDropped counts n more lost events and queues the report, which
// carries the stream's total.
func (s *sseStream) appendDropped(n uint64) {
	s.dropped += n
	s.buf = fmt.Appendf(s.buf, "event: dropped\ndata: {\"dropped\":%d}\n\n", s.dropped)
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
