package search

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// grpcClient starts a real gRPC server on loopback with the service and
// returns a client for it. hook, when set, reaches the engine through a
// stream interceptor, with the server's context of the call.
func (f *fixture) grpcClient(t *testing.T, hook func(ctx context.Context, i, n int)) api.QueryServiceClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if hook != nil {
		opts = append(opts, grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			ctx := ss.Context()
			return handler(srv, &hookedStream{ServerStream: ss, ctx: query.WithSourceHook(ctx, func(i, n int) { hook(ctx, i, n) })})
		}))
	}
	s := grpc.NewServer(opts...)
	RegisterGRPC(s, f.svc)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewQueryServiceClient(conn)
}

type hookedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *hookedStream) Context() context.Context { return s.ctx }

func withTenant(ctx context.Context, id string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", id)
}

// recvAll reads a search to its end, calling each (when set) per response.
func recvAll(t *testing.T, st api.QueryService_SearchClient, each func(*api.SearchResponse)) ([]*api.SearchResponse, error) {
	t.Helper()
	var out []*api.SearchResponse
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
		if each != nil {
			each(r)
		}
	}
}

func protoEntries(t *testing.T, rs []*api.SearchResponse, dir query.Direction) []entry {
	t.Helper()
	var out []entry
	for _, r := range rs {
		var batch []entry
		for _, s := range r.GetStreams() {
			ls := fromPairs(s.GetLabels())
			for _, e := range s.GetEntries() {
				batch = append(batch, entry{ls.String(), e.GetTimestampUnixNano(), string(e.GetLine()), fromPairs(e.GetStructuredMetadata()).String()})
			}
		}
		for _, e := range batch {
			for _, p := range out {
				if dir == query.Backward && e.ts >= p.ts || dir == query.Forward && e.ts <= p.ts {
					t.Fatalf("entry %+v of a later response is not after %+v", e, p)
				}
			}
		}
		out = append(out, batch...)
	}
	return out
}

func fromPairs(ps []*api.LabelPair) labels.Labels {
	m := map[string]string{}
	for _, p := range ps {
		m[p.GetName()] = p.GetValue()
	}
	return labels.FromMap(m)
}

func TestGRPCSearch(t *testing.T) {
	f := newFixture(t)
	c := f.grpcClient(t, nil)
	ctx := withTenant(context.Background(), "t")
	for _, dir := range []query.Direction{query.Backward, query.Forward} {
		for _, limit := range []int{1, 700, 5000} {
			for _, q := range []string{`{job="test"} |= "needle"`, `{app="db"} | logfmt | i > 3000`} {
				pd := api.SearchDirection_SEARCH_DIRECTION_UNSPECIFIED
				if dir == query.Forward {
					pd = api.SearchDirection_SEARCH_DIRECTION_FORWARD
				}
				st, err := c.Search(ctx, &api.SearchRequest{Query: q, StartUnixNano: base.UnixNano(), EndUnixNano: base.Add(2 * time.Hour).UnixNano(), Limit: uint32(limit), Direction: pd})
				if err != nil {
					t.Fatal(err)
				}
				rs, err := recvAll(t, st, nil)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				got := protoEntries(t, rs, dir)
				sortEntries(got)
				want, res := f.want(t, q, limit, dir)
				if !slices.Equal(got, want) {
					t.Fatalf("%s dir=%v limit=%d: %d entries, query_range %d: %v / %v", q, dir, limit, len(got), len(want), head(got), head(want))
				}
				last := rs[len(rs)-1].GetProgress()
				if !last.GetDone() || last.GetEntriesSent() != int64(len(want)) || last.GetChunksTotal() != res.Stats.ChunksRef ||
					last.GetSourcesDone()+last.GetSourcesSkipped() != last.GetSourcesTotal() || last.GetLimitReached() != (len(want) == limit) ||
					last.GetRangeStartUnixNano() != base.UnixNano() || last.GetLinesMatched() < int64(len(want)) {
					t.Fatalf("%s: last progress %v", q, last)
				}
				for _, r := range rs[:len(rs)-1] {
					if r.GetProgress().GetDone() {
						t.Fatalf("%s: a response before the last says done", q)
					}
				}
				if strings.Contains(q, "logfmt") && len(rs[0].GetStreams()) > 0 && len(rs[0].GetStreams()[0].GetEntries()[0].GetParsed()) == 0 {
					t.Errorf("%s: parsed labels missing", q)
				}
			}
		}
	}
}

// TestGRPCFirstBatchBeforeScanEnds: as over HTTP, the scan past the first
// sources waits until the client has received a response with entries.
func TestGRPCFirstBatchBeforeScanEnds(t *testing.T) {
	f := newFixture(t)
	gate := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var events []string
	log := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	c := f.grpcClient(t, func(_ context.Context, i, n int) {
		if i >= 3 {
			select {
			case <-gate:
			case <-time.After(20 * time.Second):
				log("gate timed out")
			}
		}
	})
	st, err := c.Search(withTenant(context.Background(), "t"), &api.SearchRequest{Query: `{job="test"} |= "needle"`, StartUnixNano: base.UnixNano(), EndUnixNano: base.Add(2 * time.Hour).UnixNano(), Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := recvAll(t, st, func(r *api.SearchResponse) {
		if len(r.GetStreams()) > 0 {
			once.Do(func() {
				log("client received entries")
				close(gate)
			})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0] != "client received entries" {
		t.Fatalf("events %v: entries did not reach the client before the scan ended", events)
	}
	first := rs[0].GetProgress()
	if n := len(protoEntries(t, rs, query.Backward)); n != needles || first.GetSourcesDone() >= first.GetSourcesTotal() {
		t.Fatalf("%d entries; first progress %v", n, first)
	}
}

func TestGRPCErrors(t *testing.T) {
	f := newFixture(t)
	c := f.grpcClient(t, nil)
	ctx := withTenant(context.Background(), "t")
	call := func(ctx context.Context, req *api.SearchRequest) error {
		st, err := c.Search(ctx, req)
		if err != nil {
			return err
		}
		_, err = recvAll(t, st, nil)
		return err
	}
	for _, tc := range []struct {
		req  *api.SearchRequest
		code codes.Code
		msg  string
	}{
		{&api.SearchRequest{Query: `{job="test"`}, codes.InvalidArgument, "parse error"},
		{&api.SearchRequest{Query: `rate({job="test"}[1m])`}, codes.InvalidArgument, "needs a log query"},
		{&api.SearchRequest{Query: `{job="test"}`, Limit: 100000}, codes.InvalidArgument, "max_entries_limit_per_query"},
		{&api.SearchRequest{Query: `{job="test"}`, Direction: 7}, codes.InvalidArgument, "direction"},
		{&api.SearchRequest{}, codes.InvalidArgument, "query parameter is required"},
	} {
		err := call(ctx, tc.req)
		if s, _ := status.FromError(err); s.Code() != tc.code || !strings.Contains(s.Message(), tc.msg) {
			t.Errorf("%v: %v, want %v with %q", tc.req, err, tc.code, tc.msg)
		}
	}
	// Tenants: another one sees nothing, a required one must be named.
	st, err := c.Search(withTenant(context.Background(), "other"), &api.SearchRequest{Query: `{job="test"}`, StartUnixNano: base.UnixNano(), EndUnixNano: base.Add(2 * time.Hour).UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := recvAll(t, st, nil)
	if err != nil || len(rs) != 1 || rs[0].GetProgress().GetSourcesTotal() != 0 {
		t.Errorf("other tenant: %v %v", rs, err)
	}
	f.svc.Tenants = tenant.Resolver{Required: true}
	if err := call(context.Background(), &api.SearchRequest{Query: `{job="test"}`}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no tenant: %v", err)
	}
}

// TestGRPCClientCancel: a client that goes away ends the server's scan:
// no worker starts another source, and the search is recorded as failed
// with the cancellation.
func TestGRPCClientCancel(t *testing.T) {
	f := newFixture(t)
	bus := events.NewMemory("test")
	defer bus.Close()
	sub, err := bus.Subscribe(context.Background(), events.SearchCompleted, events.SearchFailed)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Events = bus
	var started atomic.Int32
	c := f.grpcClient(t, func(ctx context.Context, i, n int) {
		if i >= 3 {
			// Held until the server has seen the client go: from then
			// on, no worker may start another source.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Second):
			}
			started.Add(1)
		}
	})
	ctx, cancel := context.WithCancel(withTenant(context.Background(), "t"))
	st, err := c.Search(ctx, &api.SearchRequest{Query: `{job="test"} |= "needle"`, StartUnixNano: base.UnixNano(), EndUnixNano: base.Add(2 * time.Hour).UnixNano(), Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := recvAll(t, st, nil); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v", err)
	}
	select {
	case ev := <-sub.C:
		if ev.Type != events.SearchFailed || !strings.Contains(ev.Search.Error, "canceled") {
			t.Fatalf("event %s %+v", ev.Type, ev.Search)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server's search did not end after the client went away")
	}
	if n := started.Load(); n > 2 {
		t.Fatalf("%d workers went on past the held sources", n)
	}
}

func TestSplitBatchKeepsOrderAndBounds(t *testing.T) {
	var b query.Batch
	line := strings.Repeat("x", 300<<10)
	n := 0
	for s := 0; s < 3; s++ {
		sr := query.StreamResult{Labels: labels.New("s", string(rune('a'+s)))}
		for i := 0; i < 10; i++ {
			sr.Entries = append(sr.Entries, query.Entry{Timestamp: int64(1000 - n), Line: []byte(line[:len(line)-n])})
			n++
		}
		b.Streams = append(b.Streams, sr)
	}
	b.Progress.Stats.EntriesReturned = 100 + int64(n) // 100 sent before this batch
	b.Progress.Done = true
	parts := splitBatch(&b, maxResponseBytes)
	if len(parts) < 8 {
		t.Fatalf("%d responses for 9 MB", len(parts))
	}
	var got []int64
	prevSent := int64(100)
	for i, p := range parts {
		size, count := 0, 0
		for _, s := range p.GetStreams() {
			for _, e := range s.GetEntries() {
				size += len(e.GetLine())
				count++
				got = append(got, e.GetTimestampUnixNano())
			}
		}
		if size > maxResponseBytes && count > 1 {
			t.Fatalf("response %d: %d bytes in %d entries", i, size, count)
		}
		if p.GetProgress().GetEntriesSent() != prevSent+int64(count) || p.GetProgress().GetDone() != (i == len(parts)-1) {
			t.Fatalf("response %d progress %v after %d sent", i, p.GetProgress(), prevSent)
		}
		prevSent = p.GetProgress().GetEntriesSent()
	}
	if len(got) != n || !slices.IsSortedFunc(got, func(a, b int64) int { return int(b - a) }) {
		t.Fatalf("entries %v", got)
	}
}

// TestGRPCLargeBatches: a batch larger than a gRPC client takes in one
// message (4 MiB by default) arrives in several.
func TestGRPCLargeBatches(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	var es []chunk.Entry
	for i := 0; i < 40; i++ {
		es = append(es, chunk.Entry{Timestamp: base.Add(time.Duration(i) * time.Second).UnixNano(), Line: []byte(fmt.Sprintf("%d %s", i, strings.Repeat("y", 250<<10)))})
	}
	if err := st.Append(context.Background(), "t", []store.Stream{{Labels: labels.New("job", "big"), Entries: es}}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, svc: &Service{Engine: &query.Engine{Store: st}, Store: st, Limits: lokiapi.DefaultLimits(), Tenants: tenant.Resolver{Default: "t"}}}
	c := f.grpcClient(t, nil)
	stream, err := c.Search(withTenant(context.Background(), "t"), &api.SearchRequest{Query: `{job="big"}`, StartUnixNano: base.UnixNano(), EndUnixNano: base.Add(time.Hour).UnixNano(), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := recvAll(t, stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := protoEntries(t, rs, query.Backward); len(got) != 40 || len(rs) < 10 || !rs[len(rs)-1].GetProgress().GetDone() {
		t.Fatalf("%d entries in %d responses", len(got), len(rs))
	}
}
