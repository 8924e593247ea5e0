package ship

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// server is a real store behind the real chunk service on loopback TCP.
type server struct {
	dir   string
	addr  string
	store *store.Store
	grpc  *grpc.Server
}

func startServer(t *testing.T, dir, addr string) *server {
	t.Helper()
	st, err := store.Open(dir, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	svc := ingest.NewChunkService(st, ingest.ChunkConfig{Metrics: metrics.NewSet(), Logger: quiet()})
	g := grpc.NewServer(svc.ServerOptions()...)
	svc.Register(g)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	s := &server{dir: dir, addr: ln.Addr().String(), store: st, grpc: g}
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	if s.grpc == nil {
		return
	}
	s.grpc.Stop()
	_ = s.store.Close(context.Background())
	s.grpc = nil
}

// lines returns every stored line of the tenant, with duplicates.
func (s *server) lines(t *testing.T, tenantID string) []string {
	t.Helper()
	var out []string
	for _, sd := range s.store.Select(tenantID, nil, 0, 1<<62) {
		for _, ref := range sd.Chunks {
			c, _, err := s.store.ReadChunk(ref, nil)
			if err != nil {
				t.Fatal(err)
			}
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
	slices.Sort(out)
	return out
}

func testChunk(t testing.TB, stream string, lines ...string) []byte {
	t.Helper()
	ents := make([]chunk.Entry, len(lines))
	for i, l := range lines {
		ents[i] = chunk.Entry{Timestamp: int64(1_700_000_000_000_000_000 + i), Line: []byte(l)}
	}
	data, _, err := chunk.Encode(labels.New("job", stream), ents, chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func openSpool(t *testing.T, dir string, mod func(*Options)) *Spool {
	t.Helper()
	opts := Options{Dir: filepath.Join(dir, "spool"), Logger: quiet(), Metrics: metrics.NewSet(), CommitInterval: 20 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func grpcOut(t *testing.T, addr string) *GRPCOutput {
	t.Helper()
	o, err := NewGRPCOutput(GRPCOptions{Address: addr, Tenant: "t1", Logger: quiet(), Backoff: Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func flush(t *testing.T, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestShipOverGRPCAcksEveryChunk(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "server"), "127.0.0.1:0")
	s := openSpool(t, dir, nil)
	s.Start(grpcOut(t, srv.addr))
	defer s.Close()
	var acks atomic.Int64
	var want []string
	for i := range 50 {
		line := fmt.Sprintf("chunk %d", i)
		want = append(want, line)
		if err := s.Ship(context.Background(), testChunk(t, "a", line), func() { acks.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	if acks.Load() != 50 {
		t.Fatalf("%d acks, want 50", acks.Load())
	}
	slices.Sort(want)
	if got := srv.lines(t, "t1"); !slices.Equal(got, want) {
		t.Fatalf("stored %d lines, want %d", len(got), len(want))
	}
	// Settled segments are removed by the committer.
	waitFor(t, func() bool { return s.Stats().Bytes == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerDownThenUpLosesNothing(t *testing.T) {
	dir := t.TempDir()
	// Reserve a port, free it, and point the agent at it before any server
	// listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	s := openSpool(t, dir, nil)
	s.Start(grpcOut(t, addr))
	defer s.Close()
	var acks atomic.Int64
	for i := range 20 {
		if err := s.Ship(context.Background(), testChunk(t, "a", fmt.Sprintf("l%02d", i)), func() { acks.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	// Let a few connection attempts fail.
	waitFor(t, func() bool { return s.m.errors.Get() >= 2 })
	if acks.Load() != 0 {
		t.Fatal("acknowledged without a server")
	}
	srv := startServer(t, filepath.Join(dir, "server"), addr)
	flush(t, s)
	if got := srv.lines(t, "t1"); len(got) != 20 {
		t.Fatalf("stored %d lines, want 20", len(got))
	}
}

func TestSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, nil)
	s.Start(nil) // no output: nothing leaves the spool
	for i := range 5 {
		if err := s.ShipTagged(context.Background(), testChunk(t, "a", fmt.Sprintf("r%d", i)), []byte(fmt.Sprintf("tag%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Ship waits for durability; the last tagged ones are synced on Close.
	s.Close()

	s2 := openSpool(t, dir, nil)
	var tags []string
	var acks atomic.Int64
	s2.Recover(func(tag []byte) func() {
		tags = append(tags, string(tag))
		return func() { acks.Add(1) }
	})
	if strings.Join(tags, ",") != "tag0,tag1,tag2,tag3,tag4" {
		t.Fatalf("recovered tags %q", tags)
	}
	srv := startServer(t, filepath.Join(dir, "server"), "127.0.0.1:0")
	s2.Start(grpcOut(t, srv.addr))
	defer s2.Close()
	flush(t, s2)
	if acks.Load() != 5 {
		t.Fatalf("%d acks", acks.Load())
	}
	if got := srv.lines(t, "t1"); strings.Join(got, ",") != "r0,r1,r2,r3,r4" {
		t.Fatalf("stored %q", got)
	}
}

func TestSpoolCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, nil)
	for i := range 3 {
		if err := s.Ship(context.Background(), testChunk(t, "a", fmt.Sprintf("x%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "spool", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %q", segs)
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Half a record header and some bytes: a crash mid-write.
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 9, 9})
	f.Close()
	s2 := openSpool(t, dir, nil)
	defer s2.Close()
	if st := s2.Stats(); st.Chunks != 3 {
		t.Fatalf("recovered %d chunks, want 3", st.Chunks)
	}
	for _, r := range s2.pending {
		data, err := s2.read(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chunk.Decode(data); err != nil {
			t.Fatalf("recovered chunk does not decode: %v", err)
		}
	}
}

func TestSpoolFullBlocksInsteadOfDropping(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, func(o *Options) {
		o.MaxBytes = 8 << 10
		o.SegmentBytes = 2 << 10
	})
	s.Start(nil)
	rnd := rand.New(rand.NewPCG(3, 4))
	noise := func() string {
		b := make([]byte, 900)
		for i := range b {
			b[i] = byte('!' + rnd.IntN(90))
		}
		return string(b)
	}
	shipped := 0
	for s.Stats().Bytes < 6<<10 {
		if err := s.Ship(context.Background(), testChunk(t, "a", fmt.Sprintf("%d %s", shipped, noise())), nil); err != nil {
			t.Fatal(err)
		}
		shipped++
	}
	done := make(chan error, 1)
	more := make([][]byte, 10)
	for i := range more {
		more[i] = testChunk(t, "a", fmt.Sprintf("%d %s", shipped+i, noise()))
	}
	var extra atomic.Int64
	go func() {
		var err error
		for i := 0; i < len(more) && err == nil; i++ {
			if err = s.Ship(context.Background(), more[i], nil); err == nil {
				extra.Add(1)
			}
		}
		done <- err
	}()
	waitFor(t, func() bool { return s.m.fullWaits.Get() > 0 })
	select {
	case err := <-done:
		t.Fatalf("Ship returned while the spool is full: %v", err)
	default:
	}
	if s.Stats().Bytes > 8<<10 {
		t.Fatalf("spool at %d bytes, over its limit", s.Stats().Bytes)
	}
	// A context ending while blocked returns its error, nothing else.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Ship(ctx, testChunk(t, "a", "late "+noise()), nil); err != context.Canceled {
		t.Fatalf("canceled Ship: %v", err)
	}
	s.Close()
	if err := <-done; err != ErrClosed {
		t.Fatalf("blocked Ship after Close: %v", err)
	}
	if extra.Load() == int64(len(more)) {
		t.Fatal("every Ship went through a full spool")
	}

	// The same spool delivered: the blocked writer proceeds; nothing lost.
	srv := startServer(t, filepath.Join(dir, "server"), "127.0.0.1:0")
	s2 := openSpool(t, dir, func(o *Options) {
		o.MaxBytes = 8 << 10
		o.SegmentBytes = 2 << 10
	})
	s2.Start(grpcOut(t, srv.addr))
	defer s2.Close()
	flush(t, s2)
	if got, want := len(srv.lines(t, "t1")), shipped+int(extra.Load()); got != want {
		t.Fatalf("stored %d, spooled %d", got, want)
	}
}

func TestRejectedChunkGoesToDeadLetter(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "server"), "127.0.0.1:0")
	s := openSpool(t, dir, nil)
	s.Start(grpcOut(t, srv.addr))
	defer s.Close()
	var acks atomic.Int64
	if err := s.Ship(context.Background(), []byte("this is not a chunk"), func() { acks.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Ship(context.Background(), testChunk(t, "a", "good"), func() { acks.Add(1) }); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if acks.Load() != 2 || s.m.rejected.Get() != 1 {
		t.Fatalf("acks %d rejected %d", acks.Load(), s.m.rejected.Get())
	}
	reasons, _ := filepath.Glob(filepath.Join(dir, "dead-letter", "*.reason"))
	chunks, _ := filepath.Glob(filepath.Join(dir, "dead-letter", "*.chunk"))
	if len(reasons) != 1 || len(chunks) != 1 {
		t.Fatalf("dead letter holds %q %q", reasons, chunks)
	}
	reason, _ := os.ReadFile(reasons[0])
	body, _ := os.ReadFile(chunks[0])
	if !strings.Contains(string(reason), "invalid chunk") || string(body) != "this is not a chunk" {
		t.Fatalf("dead letter: %q / %q", reason, body)
	}
	if got := srv.lines(t, "t1"); len(got) != 1 {
		t.Fatalf("stored %q", got)
	}
}

// retryServer answers RETRY with a delay to the first attempt of every
// chunk and STORED afterwards, recording when it received what.
type retryServer struct {
	api.UnimplementedChunkServiceServer
	after time.Duration
	mu    sync.Mutex
	seen  map[string][]time.Time
}

func (r *retryServer) Push(stream api.ChunkService_PushServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		r.mu.Lock()
		k := string(req.Chunk)
		r.seen[k] = append(r.seen[k], time.Now())
		n := len(r.seen[k])
		r.mu.Unlock()
		resp := &api.PushChunksResponse{Sequence: req.Sequence, Status: api.ChunkStatus_CHUNK_STATUS_STORED}
		if n == 1 {
			resp.Status = api.ChunkStatus_CHUNK_STATUS_RETRY
			resp.RetryAfterMs = uint32(r.after.Milliseconds())
			resp.Reason = "slow down"
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	rs := &retryServer{after: 300 * time.Millisecond, seen: map[string][]time.Time{}}
	g := grpc.NewServer()
	api.RegisterChunkServiceServer(g, rs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()
	s := openSpool(t, t.TempDir(), nil)
	s.Start(grpcOut(t, ln.Addr().String()))
	defer s.Close()
	data := testChunk(t, "a", "retry me")
	if err := s.Ship(context.Background(), data, nil); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	rs.mu.Lock()
	times := rs.seen[string(data)]
	rs.mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("chunk received %d times, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < rs.after {
		t.Fatalf("resent after %v, before the server's retry-after of %v", gap, rs.after)
	}
	if s.m.retried.Get() != 1 {
		t.Fatalf("retried counter %d", s.m.retried.Get())
	}
}

func TestLokiOutputRetriesAndSortsPerStream(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var got []*ingest.PushRequest
	var firstAt, secondAt time.Time
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			firstAt = time.Now()
			w.Header().Set("Retry-After", "1")
			http.Error(w, "rate limited", http.StatusTooManyRequests)
			return
		}
		if calls == 2 {
			secondAt = time.Now()
		}
		if r.Header.Get("X-Scope-OrgID") != "t9" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad headers", http.StatusBadRequest)
			return
		}
		req, err := ingest.DecodeProto(body, 64<<20)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, req)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hs.Close()

	s := openSpool(t, t.TempDir(), nil)
	// Two chunks of stream a whose time ranges interleave, one of stream b:
	// a single push must hold each stream once, in time order.
	mk := func(stream string, ts ...int64) []byte {
		ents := make([]chunk.Entry, len(ts))
		for i, v := range ts {
			ents[i] = chunk.Entry{Timestamp: v, Line: []byte(fmt.Sprintf("%s@%d", stream, v))}
		}
		data, _, err := chunk.Encode(labels.New("job", stream), ents, chunk.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, c := range [][]byte{mk("a", 10, 30, 50), mk("a", 20, 40), mk("b", 5)} {
		if err := s.Ship(context.Background(), c, nil); err != nil {
			t.Fatal(err)
		}
	}
	out, err := NewLokiOutput(LokiOptions{URL: hs.URL, Tenant: "t9", Logger: quiet(), Backoff: Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(out)
	defer s.Close()
	flush(t, s)
	mu.Lock()
	defer mu.Unlock()
	if secondAt.Sub(firstAt) < time.Second {
		t.Fatalf("retried after %v despite Retry-After: 1", secondAt.Sub(firstAt))
	}
	var streams []string
	for _, req := range got {
		for _, st := range req.Streams {
			var lines []string
			for _, e := range st.Entries {
				lines = append(lines, string(e.Line))
			}
			streams = append(streams, st.Labels+" "+strings.Join(lines, ","))
		}
	}
	slices.Sort(streams)
	want := []string{`{job="a"} a@10,a@20,a@30,a@40,a@50`, `{job="b"} b@5`}
	if !slices.Equal(streams, want) {
		t.Fatalf("pushed %q, want %q", streams, want)
	}
}

func TestLokiOutputDeadLettersClientErrors(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "entry too far behind", http.StatusBadRequest)
	}))
	defer hs.Close()
	dir := t.TempDir()
	s := openSpool(t, dir, nil)
	var acks atomic.Int64
	if err := s.Ship(context.Background(), testChunk(t, "a", "old line"), func() { acks.Add(1) }); err != nil {
		t.Fatal(err)
	}
	out, _ := NewLokiOutput(LokiOptions{URL: hs.URL, Logger: quiet()})
	s.Start(out)
	defer s.Close()
	flush(t, s)
	reasons, _ := filepath.Glob(filepath.Join(dir, "dead-letter", "*.reason"))
	if len(reasons) != 1 || acks.Load() != 1 {
		t.Fatalf("dead letters %q, acks %d", reasons, acks.Load())
	}
	b, _ := os.ReadFile(reasons[0])
	if !strings.Contains(string(b), "too far behind") {
		t.Fatalf("reason %q", b)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"", 0, false},
		{"soon", 0, false},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %v %v", c.in, got, ok)
		}
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for attempt := range 10 {
		step := min(b.Min<<attempt, b.Max)
		for range 50 {
			d := b.delay(attempt)
			if d < step/2 || d > step {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, step/2, step)
			}
		}
	}
}

// FuzzSpoolSegment opens arbitrary bytes as a spool segment: recovery must
// not panic, and every record it keeps must lie inside the file.
func FuzzSpoolSegment(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(Options{Dir: filepath.Join(dir, "spool"), Logger: quiet(), Metrics: metrics.NewSet()})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 2 {
		if err := s.ShipTagged(context.Background(), []byte(fmt.Sprintf("chunk-%d", i)), []byte("tag"), nil); err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "spool", "*.seg"))
	valid, _ := os.ReadFile(segs[0])
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add([]byte("LSPL\x01\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, segName(1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		// The recovery parser alone: Open would add goroutines and fsyncs
		// to every execution.
		sp := &Spool{opts: Options{Dir: d}, log: quiet()}
		seg, recs, err := sp.readSegment(1, true)
		if err != nil || seg == nil {
			return
		}
		defer seg.f.Close()
		for _, r := range recs {
			if r.off < segHeaderLen || r.off+int64(r.size) > seg.size || r.size < 0 {
				t.Fatalf("record [%d,+%d) outside a %d-byte segment", r.off, r.size, seg.size)
			}
			buf := make([]byte, r.size)
			if _, err := seg.f.ReadAt(buf, r.off); err != nil {
				t.Fatal(err)
			}
		}
	})
}
