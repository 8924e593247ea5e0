package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

// chunkServer is a real store behind a real chunk service on a gRPC server.
type chunkServer struct {
	store  *store.Store
	svc    *ChunkService
	client api.ChunkServiceClient
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startChunkServer serves on a real TCP listener when tcp is set, else on
// an in-memory bufconn.
func startChunkServer(t *testing.T, cfg ChunkConfig, tcp bool) *chunkServer {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	cfg.Metrics = metrics.NewSet()
	cfg.Logger = quietLogger()
	svc := NewChunkService(st, cfg)
	srv := grpc.NewServer(svc.ServerOptions()...)
	svc.Register(srv)
	var ln net.Listener
	var dial []grpc.DialOption
	target := "passthrough:///bufnet"
	if tcp {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		target = ln.Addr().String()
	} else {
		bl := bufconn.Listen(32 << 20)
		ln = bl
		dial = append(dial, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return bl.DialContext(ctx)
		}))
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &chunkServer{store: st, svc: svc, client: api.NewChunkServiceClient(conn)}
}

// push sends chunks on one stream as tenant and returns the responses by
// sequence (1-based, in send order).
func (cs *chunkServer) push(t *testing.T, tenantID string, chunks ...[]byte) []*api.PushChunksResponse {
	t.Helper()
	resps, err := cs.tryPush(tenantID, chunks...)
	if err != nil {
		t.Fatal(err)
	}
	return resps
}

func (cs *chunkServer) tryPush(tenantID string, chunks ...[]byte) ([]*api.PushChunksResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if tenantID != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenantID)
	}
	stream, err := cs.client.Push(ctx)
	if err != nil {
		return nil, err
	}
	for i, c := range chunks {
		if err := stream.Send(&api.PushChunksRequest{Sequence: uint64(i + 1), Chunk: c}); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream; Recv says why.
				_, err = stream.Recv()
			}
			return nil, fmt.Errorf("send: %w", err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	out := make([]*api.PushChunksResponse, len(chunks))
	for range chunks {
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if resp.Sequence < 1 || int(resp.Sequence) > len(chunks) || out[resp.Sequence-1] != nil {
			return nil, fmt.Errorf("unexpected sequence %d", resp.Sequence)
		}
		out[resp.Sequence-1] = resp
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("stream did not end cleanly: %v", err)
	}
	return out, nil
}

func encodeChunk(t testing.TB, lbls labels.Labels, lines ...string) ([]byte, *chunk.Meta) {
	t.Helper()
	ents := make([]chunk.Entry, len(lines))
	for i, l := range lines {
		ents[i] = chunk.Entry{Timestamp: int64(1_700_000_000_000_000_000 + i), Line: []byte(l)}
	}
	data, meta, err := chunk.Encode(lbls, ents, chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return data, meta
}

func storedLines(t *testing.T, st *store.Store, tenantID string) []string {
	t.Helper()
	var out []string
	for _, sd := range st.Select(tenantID, nil, 0, 1<<62) {
		var buf []byte
		for _, ref := range sd.Chunks {
			c, b, err := st.ReadChunk(ref, buf)
			if err != nil {
				t.Fatal(err)
			}
			buf = b
			var bb chunk.BlockBuffer
			for i := range c.Meta().Blocks {
				ents, err := c.ReadBlock(i, &bb)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					out = append(out, string(e.Line))
				}
			}
		}
		for _, e := range sd.Head {
			out = append(out, string(e.Line))
		}
	}
	return out
}

func TestChunkServiceStoresOnceOverTCP(t *testing.T) {
	cs := startChunkServer(t, ChunkConfig{}, true)
	data, meta := encodeChunk(t, labels.New("job", "app", "filename", "/var/log/a.log"), "first line", "second line")
	// Two workers store the two copies at once: one is stored, the other
	// recognised as a duplicate, in either order.
	resps := cs.push(t, "team-a", data, data)
	got := map[api.ChunkStatus]int{}
	for _, r := range resps {
		got[r.Status]++
	}
	if got[api.ChunkStatus_CHUNK_STATUS_STORED] != 1 || got[api.ChunkStatus_CHUNK_STATUS_DUPLICATE] != 1 {
		t.Fatalf("same chunk twice: %v", got)
	}
	if string(resps[0].ChunkId) != string(meta.ID[:]) {
		t.Fatalf("chunk id %x, want %x", resps[0].ChunkId, meta.ID[:])
	}
	// A later resend (what an agent does after a restart) is a duplicate.
	if r := cs.push(t, "team-a", data); r[0].Status != api.ChunkStatus_CHUNK_STATUS_DUPLICATE {
		t.Fatalf("resend: %v", r[0].Status)
	}
	if got := storedLines(t, cs.store, "team-a"); strings.Join(got, "|") != "first line|second line" {
		t.Fatalf("stored %q", got)
	}
	if got := storedLines(t, cs.store, "fake"); len(got) != 0 {
		t.Fatalf("another tenant sees %q", got)
	}
	// Without the header the chunk goes to the default tenant.
	if r := cs.push(t, "", data); r[0].Status != api.ChunkStatus_CHUNK_STATUS_STORED {
		t.Fatalf("default tenant: %v", r[0].Status)
	}
	if got := storedLines(t, cs.store, "fake"); len(got) != 2 {
		t.Fatalf("default tenant stored %q", got)
	}
}

// TestChunkServiceTakesEitherCodec sends an agent's LZ4 chunk, then the
// same entries under zstd (an agent whose chunks.codec changed, resending
// after a restart): the first is stored and read back, the second is
// recognised as the same chunk, since the ID covers content, not codec.
func TestChunkServiceTakesEitherCodec(t *testing.T) {
	cs := startChunkServer(t, ChunkConfig{}, true)
	lbls := labels.New("job", "app")
	var ids [][]byte
	for i, codec := range []chunk.Codec{chunk.CodecLZ4, chunk.CodecZstd} {
		var ents []chunk.Entry
		for k := range 500 {
			ents = append(ents, chunk.Entry{Timestamp: int64(1_700_000_000_000_000_000 + k), Line: fmt.Appendf(nil, "GET /item/%d 200", k%40)})
		}
		data, meta, err := chunk.Encode(lbls, ents, chunk.Options{Codec: codec})
		if err != nil {
			t.Fatal(err)
		}
		if data[5] != byte(codec) {
			t.Fatalf("codec byte %d, want %d", data[5], codec)
		}
		want := []api.ChunkStatus{api.ChunkStatus_CHUNK_STATUS_STORED, api.ChunkStatus_CHUNK_STATUS_DUPLICATE}[i]
		r := cs.push(t, "team-a", data)
		if r[0].Status != want {
			t.Fatalf("%v chunk: %v, want %v", codec, r[0].Status, want)
		}
		ids = append(ids, meta.ID[:])
	}
	if string(ids[0]) != string(ids[1]) {
		t.Fatal("the two codecs gave different IDs")
	}
	got := storedLines(t, cs.store, "team-a")
	if len(got) != 500 || got[41] != "GET /item/1 200" {
		t.Fatalf("stored %d lines (%q...)", len(got), got[:min(len(got), 3)])
	}
}

func TestChunkServiceRejectsInvalidChunks(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxLabelNamesPerSeries = 3
	lim.MaxLineSize = 100
	lim.MaxLabelValueLength = 50
	cs := startChunkServer(t, ChunkConfig{Limits: &lim, MaxChunkBytes: 4 << 10}, false)

	good, _ := encodeChunk(t, labels.New("job", "a"), "fine")
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-3] ^= 0xff // a block byte: only a checksum or Verify can tell
	header := append([]byte(nil), good...)
	header[20] ^= 0x01
	manyLabels, _ := encodeChunk(t, labels.New("a", "1", "b", "2", "c", "3", "d", "4"), "x")
	longValue, _ := encodeChunk(t, labels.New("job", strings.Repeat("v", 60)), "x")
	longLine, _ := encodeChunk(t, labels.New("job", "a"), "short", strings.Repeat("y", 101))
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]string, 200)
	for i := range big {
		b := make([]byte, 60)
		for k := range b {
			b[k] = byte('!' + rnd.IntN(90))
		}
		big[i] = string(b)
	}
	tooBig, _ := encodeChunk(t, labels.New("job", "a"), big...)
	if len(tooBig) <= 4<<10 {
		t.Fatalf("test chunk of %d bytes is not over the limit", len(tooBig))
	}

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"corrupt block", corrupt, "invalid chunk"},
		{"corrupt header", header, "invalid chunk"},
		{"garbage", []byte("not a chunk at all"), "invalid chunk"},
		{"too many labels", manyLabels, "the limit is 3"},
		{"long label value", longValue, "the limit is 50"},
		{"long line", longLine, "line of 101 bytes"},
		{"too big", tooBig, "exceeds the limit"},
	}
	var chunks [][]byte
	for _, c := range cases {
		chunks = append(chunks, c.data)
	}
	chunks = append(chunks, good)
	resps := cs.push(t, "t1", chunks...)
	for i, c := range cases {
		r := resps[i]
		if r.Status != api.ChunkStatus_CHUNK_STATUS_REJECTED || !strings.Contains(r.Reason, c.want) {
			t.Errorf("%s: got %v %q, want rejected with %q", c.name, r.Status, r.Reason, c.want)
		}
	}
	if r := resps[len(cases)]; r.Status != api.ChunkStatus_CHUNK_STATUS_STORED {
		t.Errorf("valid chunk after rejected ones: %v %q", r.Status, r.Reason)
	}
	if got := storedLines(t, cs.store, "t1"); len(got) != 1 || got[0] != "fine" {
		t.Fatalf("stored %q; only the valid chunk should be", got)
	}
}

func TestChunkServiceAsksForRetry(t *testing.T) {
	lim := DefaultLimits()
	lim.IngestionRateMB = 1.0 / 1024 // 1 KiB/s
	lim.IngestionBurstSizeMB = 1.0 / 1024
	now := time.Unix(1_800_000_000, 0)
	// One worker, so the chunks are charged in the order sent.
	cs := startChunkServer(t, ChunkConfig{Limits: &lim, Workers: 1, Now: func() time.Time { return now }}, false)
	a, _ := encodeChunk(t, labels.New("job", "a"), strings.Repeat("a", 800))
	b, _ := encodeChunk(t, labels.New("job", "b"), strings.Repeat("b", 800))
	huge, _ := encodeChunk(t, labels.New("job", "c"), strings.Repeat("c", 2000))
	resps := cs.push(t, "t1", a, b, huge)
	if resps[0].Status != api.ChunkStatus_CHUNK_STATUS_STORED {
		t.Fatalf("within the burst: %v %q", resps[0].Status, resps[0].Reason)
	}
	if resps[1].Status != api.ChunkStatus_CHUNK_STATUS_RETRY || resps[1].RetryAfterMs == 0 {
		t.Fatalf("over the rate: %v after %dms %q", resps[1].Status, resps[1].RetryAfterMs, resps[1].Reason)
	}
	if resps[2].Status != api.ChunkStatus_CHUNK_STATUS_REJECTED || !strings.Contains(resps[2].Reason, "burst") {
		t.Fatalf("larger than the burst can never pass: %v %q", resps[2].Status, resps[2].Reason)
	}
	now = now.Add(2 * time.Second)
	if r := cs.push(t, "t1", b); r[0].Status != api.ChunkStatus_CHUNK_STATUS_STORED {
		t.Fatalf("after the wait: %v %q", r[0].Status, r[0].Reason)
	}

	// A closing store asks for a resend instead of losing the chunk.
	if err := cs.store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, _ := encodeChunk(t, labels.New("job", "d"), "late")
	r := cs.push(t, "t1", c)
	if r[0].Status != api.ChunkStatus_CHUNK_STATUS_RETRY || r[0].RetryAfterMs == 0 {
		t.Fatalf("closed store: %v %q", r[0].Status, r[0].Reason)
	}
}

func TestChunkServiceTenantErrors(t *testing.T) {
	cs := startChunkServer(t, ChunkConfig{}, false)
	data, _ := encodeChunk(t, labels.New("job", "a"), "x")
	_, err := cs.tryPush("a|b", data)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("multi-tenant write: %v", err)
	}
	_, err = cs.tryPush("bad/tenant", data)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid tenant: %v", err)
	}

	req := startChunkServer(t, ChunkConfig{}, false)
	req.svc.cfg.Tenants.Required = true
	if _, err := req.tryPush("", data); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("missing required tenant: %v", err)
	}
	if r, err := req.tryPush("ok", data); err != nil || r[0].Status != api.ChunkStatus_CHUNK_STATUS_STORED {
		t.Fatalf("with tenant: %v %v", r, err)
	}
}

// failingStore fails PutChunk with a given error.
type failingStore struct{ err error }

func (f failingStore) PutChunk(context.Context, string, []byte) (bool, error) { return false, f.err }

func TestChunkServiceMapsStoreErrors(t *testing.T) {
	data, _ := encodeChunk(t, labels.New("job", "a"), "x")
	cases := []struct {
		err  error
		want api.ChunkStatus
	}{
		{fmt.Errorf("write: %w", store.ErrDiskFull), api.ChunkStatus_CHUNK_STATUS_RETRY},
		{store.ErrClosed, api.ChunkStatus_CHUNK_STATUS_RETRY},
		{errors.New("some I/O error"), api.ChunkStatus_CHUNK_STATUS_RETRY},
		{fmt.Errorf("invalid chunk: %w", chunk.ErrCorrupt), api.ChunkStatus_CHUNK_STATUS_REJECTED},
		{fmt.Errorf("%w: labels: bad", store.ErrInvalidChunk), api.ChunkStatus_CHUNK_STATUS_REJECTED},
		{errors.New("invalid chunk labels: bad, but not wrapped"), api.ChunkStatus_CHUNK_STATUS_RETRY},
	}
	for _, c := range cases {
		svc := NewChunkService(failingStore{c.err}, ChunkConfig{Metrics: metrics.NewSet(), Logger: quietLogger()})
		r := svc.handle(context.Background(), "t", &api.PushChunksRequest{Sequence: 7, Chunk: data})
		if r.Status != c.want || r.Sequence != 7 {
			t.Errorf("%v: got %v seq %d, want %v", c.err, r.Status, r.Sequence, c.want)
		}
		if c.want == api.ChunkStatus_CHUNK_STATUS_RETRY && r.RetryAfterMs == 0 {
			t.Errorf("%v: retry without a delay", c.err)
		}
	}
}

// FuzzChunkHandle feeds arbitrary bytes to the service as a received chunk:
// it must answer (never panic) and only ever accept a chunk that decodes.
func FuzzChunkHandle(f *testing.F) {
	good, _ := encodeChunk(f, labels.New("job", "a"), "hello", "world")
	f.Add(good)
	f.Add([]byte("LSCK"))
	f.Add([]byte{})
	f.Add(good[:len(good)/2])
	svc := NewChunkService(acceptStore{}, ChunkConfig{Metrics: metrics.NewSet(), Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := svc.handle(context.Background(), "t", &api.PushChunksRequest{Sequence: 1, Chunk: data})
		if r.Status == api.ChunkStatus_CHUNK_STATUS_STORED {
			if _, err := chunk.Decode(data); err != nil {
				t.Fatalf("accepted a chunk that does not decode: %v", err)
			}
		}
	})
}

// acceptStore verifies like the real store and keeps nothing.
type acceptStore struct{}

func (acceptStore) PutChunk(_ context.Context, _ string, data []byte) (bool, error) {
	c, err := chunk.Decode(data)
	if err != nil {
		return false, fmt.Errorf("invalid chunk: %w", err)
	}
	if err := c.Verify(); err != nil {
		return false, fmt.Errorf("invalid chunk: %w", err)
	}
	return false, nil
}
