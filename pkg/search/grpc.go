package search

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/query"
)

// GRPC serves logsift.v1.QueryService.
type GRPC struct {
	api.UnimplementedQueryServiceServer
	Service *Service
}

// RegisterGRPC registers logsift.v1.QueryService on s.
func RegisterGRPC(s grpc.ServiceRegistrar, svc *Service) {
	api.RegisterQueryServiceServer(s, &GRPC{Service: svc})
}

// Search runs one search and streams its batches.
func (g *GRPC) Search(req *api.SearchRequest, srv api.QueryService_SearchServer) error {
	ctx := srv.Context()
	ids, err := g.Service.Tenants.MultiGRPC(ctx)
	if err != nil {
		return err
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil && events.ActorFromContext(ctx) == "" {
		ctx = events.WithActor(ctx, p.Addr.String())
	}
	r := Request{Query: req.GetQuery(), Limit: int(min(req.GetLimit(), 1<<30))}
	if ns := req.GetStartUnixNano(); ns != 0 {
		r.Start = time.Unix(0, ns)
	}
	if ns := req.GetEndUnixNano(); ns != 0 {
		r.End = time.Unix(0, ns)
	}
	switch req.GetDirection() {
	case api.SearchDirection_SEARCH_DIRECTION_UNSPECIFIED, api.SearchDirection_SEARCH_DIRECTION_BACKWARD:
		r.Direction = query.Backward
	case api.SearchDirection_SEARCH_DIRECTION_FORWARD:
		r.Direction = query.Forward
	default:
		return status.Errorf(codes.InvalidArgument, "unknown direction %d", req.GetDirection())
	}
	err = g.Service.Run(ctx, ids, r, func(b *query.Batch) error {
		for _, resp := range splitBatch(b, maxResponseBytes) {
			if err := srv.Send(resp); err != nil {
				return clientGone(err)
			}
		}
		return nil
	})
	if err == nil {
		return nil
	}
	code := codes.Internal
	switch Classify(err) {
	case KindBadRequest:
		code = codes.InvalidArgument
	case KindTimeout:
		code = codes.DeadlineExceeded
	case KindCanceled:
		code = codes.Canceled
	}
	return status.Error(code, message(err))
}

// ToProto converts a batch for the wire.
func ToProto(b *query.Batch) *api.SearchResponse {
	out := &api.SearchResponse{Progress: ProgressToProto(&b.Progress)}
	if len(b.Streams) > 0 {
		out.Streams = make([]*api.SearchStream, len(b.Streams))
	}
	for i, s := range b.Streams {
		ps := &api.SearchStream{Labels: pairs(s.Labels), Entries: make([]*api.SearchEntry, len(s.Entries))}
		for j, e := range s.Entries {
			ps.Entries[j] = &api.SearchEntry{
				TimestampUnixNano:  e.Timestamp,
				Line:               e.Line,
				StructuredMetadata: pairs(e.Metadata),
				Parsed:             pairs(e.Parsed),
			}
		}
		out.Streams[i] = ps
	}
	return out
}

// maxResponseBytes bounds the line and label bytes of one response, well
// below gRPC's default 4 MiB limit on a message a client receives.
const maxResponseBytes = 1 << 20

// splitBatch converts a batch into responses of at most about max bytes
// of entries each (a single larger entry goes alone). Each carries the
// batch's progress with entries_sent counting up to its last entry; only
// the last can be done.
func splitBatch(b *query.Batch, max int) []*api.SearchResponse {
	total := 0
	for _, s := range b.Streams {
		for i := range s.Entries {
			total += entrySize(&s.Entries[i])
		}
	}
	if total <= max {
		return []*api.SearchResponse{ToProto(b)}
	}
	var out []*api.SearchResponse
	sent := b.Progress.Stats.EntriesReturned
	for _, s := range b.Streams {
		sent -= int64(len(s.Entries))
	}
	var cur []query.StreamResult
	size := 0
	flush := func() {
		part := &query.Batch{Streams: cur, Progress: b.Progress}
		for _, s := range cur {
			sent += int64(len(s.Entries))
		}
		part.Progress.Stats.EntriesReturned = sent
		part.Progress.Done = false
		out = append(out, ToProto(part))
		cur, size = nil, 0
	}
	for _, s := range b.Streams {
		from := 0
		for i := range s.Entries {
			n := entrySize(&s.Entries[i])
			if size+n > max && (size > 0 || i > from) {
				if i > from {
					cur = append(cur, query.StreamResult{Labels: s.Labels, Entries: s.Entries[from:i]})
				}
				flush()
				from = i
			}
			size += n
		}
		if from < len(s.Entries) {
			cur = append(cur, query.StreamResult{Labels: s.Labels, Entries: s.Entries[from:]})
		}
	}
	flush()
	out[len(out)-1].Progress.Done = b.Progress.Done
	return out
}

// entrySize is about what an entry takes on the wire.
func entrySize(e *query.Entry) int {
	n := len(e.Line) + 16
	for _, l := range e.Metadata {
		n += len(l.Name) + len(l.Value) + 8
	}
	for _, l := range e.Parsed {
		n += len(l.Name) + len(l.Value) + 8
	}
	return n
}

// ProgressToProto converts the engine's progress for the wire.
func ProgressToProto(p *query.Progress) *api.SearchProgress {
	st := &p.Stats
	return &api.SearchProgress{
		SourcesTotal:        uint32(p.SourcesTotal),
		SourcesDone:         uint32(p.SourcesDone),
		SourcesSkipped:      uint32(p.SourcesSkipped),
		ChunksTotal:         st.ChunksRef,
		ChunksDone:          p.ChunksDone,
		ChunksPruned:        st.ChunksPruned,
		ChunksDecoded:       st.ChunksDecoded,
		BlocksPruned:        st.BlocksPruned,
		CompressedBytes:     st.CompressedBytes,
		BytesScanned:        st.DecompressedBytes + st.HeadChunkBytes,
		LinesScanned:        st.DecompressedLines + st.HeadChunkLines,
		LinesMatched:        st.PostFilterLines,
		EntriesSent:         st.EntriesReturned,
		CoveredFromUnixNano: p.CoveredFrom,
		CoveredToUnixNano:   p.CoveredTo,
		RangeStartUnixNano:  p.Start,
		RangeEndUnixNano:    p.End,
		ExecTimeNanos:       int64(st.ExecTime),
		LimitReached:        p.LimitReached,
		Done:                p.Done,
	}
}

func pairs(ls labels.Labels) []*api.LabelPair {
	if len(ls) == 0 {
		return nil
	}
	out := make([]*api.LabelPair, len(ls))
	for i, l := range ls {
		out[i] = &api.LabelPair{Name: l.Name, Value: l.Value}
	}
	return out
}
