package stream

import (
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/events"
)

// EventIDHeader is the response header of Subscribe that carries the
// stream's position when it opened (as the SSE opening frame's "id:"):
// a client that loses the stream before any message resumes from it.
const EventIDHeader = "logsift-event-id"

// ownJournalEvents bounds the journal of a stream served without
// Options.Journal: like a bus subscription's buffer, it only has to hold
// what the client has not read yet.
const ownJournalEvents = 1024

// GRPC serves logsift.v1.EventService.
type GRPC struct {
	api.UnimplementedEventServiceServer
	Options
}

// RegisterGRPC registers the event service on s.
func RegisterGRPC(s grpc.ServiceRegistrar, o Options) {
	api.RegisterEventServiceServer(s, &GRPC{Options: o})
}

// Subscribe streams the caller's tenant's events from the journal until
// the client goes, as the SSE handler does: req.After resumes after an
// ID, an ID the journal cannot resume from gets a reset message first,
// and a position message goes out every Heartbeat. Without
// Options.Journal the stream reads a journal of its own, started now on
// Options.Bus: live events only, and every After is of another epoch.
func (g *GRPC) Subscribe(req *api.SubscribeRequest, srv api.EventService_SubscribeServer) error {
	ctx := srv.Context()
	tenants, err := g.Tenants.MultiGRPC(ctx)
	if err != nil {
		return err
	}
	f, err := g.filter(tenants, req.GetTypes(), req.GetWorkspace())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	j := g.Journal
	if j == nil {
		if g.Bus == nil {
			g.log().Error("event stream: neither a journal nor a bus configured")
			return status.Error(codes.Unavailable, "event stream unavailable: no journal")
		}
		if j, err = StartJournal(ctx, g.Bus, JournalOptions{MaxEvents: ownJournalEvents, Log: g.log()}); err != nil {
			return status.Errorf(codes.Unavailable, "event bus: %v", err)
		}
		defer j.Close()
	}
	select {
	case <-j.Done():
		return status.Error(codes.Unavailable, "event stream unavailable: the event bus closed")
	default:
	}
	// The position is taken before the headers go out: every event
	// published after the client has them is after it.
	cursor, reset := j.resume(req.GetAfter())
	pos := ID{Epoch: j.epoch, Seq: cursor}.String()
	if err := srv.SendHeader(metadata.Pairs(EventIDHeader, pos)); err != nil {
		return err
	}
	out := &grpcSink{srv: srv, epoch: j.epoch, g: g}
	if reset != nil {
		if err := srv.Send(&api.Event{Id: pos, Payload: &api.Event_StreamReset{StreamReset: resetToProto(reset)}}); err != nil {
			return err
		}
	}
	err = (&reader{j: j, f: f, out: out, done: g.Done, cursor: cursor}).run(ctx, g.heartbeat())
	if errors.Is(err, errShutdown) || errors.Is(err, errJournalClosed) {
		return status.Error(codes.Unavailable, err.Error())
	}
	return err
}

var resetReasons = map[string]api.ResetReason{
	"epoch":   api.ResetReason_RESET_REASON_EPOCH,
	"expired": api.ResetReason_RESET_REASON_EXPIRED,
	"ahead":   api.ResetReason_RESET_REASON_AHEAD,
	"invalid": api.ResetReason_RESET_REASON_INVALID,
}

func resetToProto(r *Reset) *api.StreamReset {
	return &api.StreamReset{Reason: resetReasons[r.Reason], After: r.LastEventID, Missed: int64(r.Missed), Message: r.Message}
}

// grpcSink sends a reader's stream as api.Event messages, each with the
// stream's position and dropped total.
type grpcSink struct {
	srv   api.EventService_SubscribeServer
	epoch string
	g     *GRPC
	// sentDropped is the dropped total the client was last sent;
	// undecodable counts journal entries that did not decode, lost to
	// the client as well.
	sentDropped, undecodable uint64
}

// entryToProto decodes a journal entry for the wire. The journal keeps
// each event once, encoded for SSE; a gRPC stream decodes what it sends
// (see BenchmarkGRPCEntryToProto) rather than the journal keeping a
// second form of every event.
func entryToProto(e *entry, epoch string) (*api.Event, error) {
	ev, err := events.Unmarshal(e.data)
	if err != nil {
		return nil, err
	}
	pe := ToProto(ev)
	pe.Id = ID{Epoch: epoch, Seq: e.seq}.String()
	return pe, nil
}

func (s *grpcSink) event(e *entry, dropped uint64) error {
	pe, err := entryToProto(e, s.epoch)
	if err != nil {
		// The journal encoded it with Marshal: a bug, not a client's
		// fault. The client hears of it as a dropped event.
		s.g.log().Error("event stream: journal entry does not decode", "seq", e.seq, "err", err)
		s.undecodable++
		return nil
	}
	s.sentDropped = dropped + s.undecodable
	pe.Dropped = int64(s.sentDropped)
	return s.srv.Send(pe)
}

func (s *grpcSink) flush(pos, dropped uint64) error {
	if dropped+s.undecodable > s.sentDropped {
		s.sentDropped = dropped + s.undecodable
		return s.position(pos)
	}
	return nil
}

func (s *grpcSink) heartbeat(pos uint64) error { return s.position(pos) }

func (s *grpcSink) position(pos uint64) error {
	return s.srv.Send(&api.Event{Id: ID{Epoch: s.epoch, Seq: pos}.String(), Dropped: int64(s.sentDropped),
		Payload: &api.Event_StreamPosition{StreamPosition: &api.StreamPosition{}}})
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
