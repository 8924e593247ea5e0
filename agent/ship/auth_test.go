package ship

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
)

// TestLokiTokenAndRefusal: the Loki output sends the token as a bearer
// token; a 401 keeps the chunk (no dead letter), tells OnRefused, and the
// chunk is delivered once the token is right.
func TestLokiTokenAndRefusal(t *testing.T) {
	var good atomic.Bool
	var delivered atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := "Bearer lsk_wrong"
		if good.Load() {
			want = "Bearer lsk_right"
		}
		if r.Header.Get("Authorization") != want {
			t.Errorf("Authorization %q, want %q", r.Header.Get("Authorization"), want)
		}
		if !good.Load() {
			http.Error(w, "unauthenticated: the API token is invalid, unknown or revoked", http.StatusUnauthorized)
			return
		}
		delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hs.Close()
	dir := t.TempDir()
	s := openSpool(t, dir, nil)
	var acks atomic.Int64
	if err := s.Ship(context.Background(), testChunk(t, "a", "line"), func() { acks.Add(1) }); err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 10)
	out, err := NewLokiOutput(LokiOptions{URL: hs.URL, Token: "lsk_wrong", Logger: quiet(), Backoff: Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
		OnRefused: func(err error) {
			select {
			case refused <- err:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(out)
	var re *RefusedError
	select {
	case err := <-refused:
		if !errors.As(err, &re) || re.Forbidden || !re.HasToken || !strings.HasPrefix(err.Error(), "the server refused the token (401/Unauthenticated: unauthenticated: the API token is invalid") {
			t.Fatalf("refusal %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("OnRefused never called")
	}
	if strings.Contains(re.Error(), "lsk_wrong") {
		t.Errorf("the refusal quotes the token: %v", re)
	}
	s.Close()
	if dl, _ := filepath.Glob(filepath.Join(dir, "dead-letter", "*")); len(dl) != 0 || acks.Load() != 0 {
		t.Fatalf("refused chunk was dead-lettered (%q) or acknowledged (%d)", dl, acks.Load())
	}

	// The chunk is still in the spool; the right token delivers it.
	good.Store(true)
	s = openSpool(t, dir, nil)
	out, _ = NewLokiOutput(LokiOptions{URL: hs.URL, Token: "lsk_right", Logger: quiet()})
	s.Start(out)
	defer s.Close()
	flush(t, s)
	if delivered.Load() != 1 {
		t.Fatalf("delivered %d pushes", delivered.Load())
	}
}

// tokenServer answers every chunk STORED when the stream carries the
// token, and Unauthenticated otherwise, as pkg/auth's Guard does.
type tokenServer struct {
	api.UnimplementedChunkServiceServer
	token string
	mu    sync.Mutex
	seen  []string
}

func (s *tokenServer) Push(stream api.ChunkService_PushServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	auth := strings.Join(md.Get("authorization"), ",")
	s.mu.Lock()
	s.seen = append(s.seen, auth)
	s.mu.Unlock()
	if auth != "Bearer "+s.token {
		return status.Error(codes.Unauthenticated, "unauthenticated: the API token is invalid, unknown or revoked")
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		if err := stream.Send(&api.PushChunksResponse{Sequence: req.Sequence, Status: api.ChunkStatus_CHUNK_STATUS_STORED}); err != nil {
			return err
		}
	}
}

// TestGRPCTokenAndRefusal: the token rides in the metadata of the chunk
// stream over plaintext; a refusal reaches OnRefused as a RefusedError
// and the chunk waits in the spool.
func TestGRPCTokenAndRefusal(t *testing.T) {
	ts := &tokenServer{token: "lsk_right"}
	g := grpc.NewServer()
	api.RegisterChunkServiceServer(g, ts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()

	dir := t.TempDir()
	for _, c := range []struct {
		token   string
		refused bool
	}{{"lsk_wrong", true}, {"", true}, {"lsk_right", false}} {
		s := openSpool(t, dir, nil)
		var acks atomic.Int64
		if c.token == "lsk_wrong" {
			if err := s.Ship(context.Background(), testChunk(t, "a", "line"), func() { acks.Add(1) }); err != nil {
				t.Fatal(err)
			}
		}
		refused := make(chan error, 10)
		out, err := NewGRPCOutput(GRPCOptions{Address: ln.Addr().String(), Token: c.token, Logger: quiet(),
			Backoff: Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
			OnRefused: func(err error) {
				select {
				case refused <- err:
				default:
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		s.Start(out)
		if c.refused {
			select {
			case err := <-refused:
				var re *RefusedError
				if !errors.As(err, &re) || re.HasToken != (c.token != "") || re.Detail != "unauthenticated: the API token is invalid, unknown or revoked" {
					t.Errorf("token %q: refusal %#v", c.token, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("token %q: OnRefused never called", c.token)
			}
			s.Close()
			continue
		}
		flush(t, s) // the chunk refused twice is delivered now
		s.Close()
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.seen) == 0 || ts.seen[0] != "Bearer lsk_wrong" || ts.seen[len(ts.seen)-1] != "Bearer lsk_right" {
		t.Errorf("authorization seen: %q", ts.seen)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "spool", "*.seg")); len(segs) != 0 {
		t.Errorf("spool not empty after delivery: %q", segs)
	}
}

// TestSpoolDropDiscardsUnsent: Drop lets the chunk in flight finish (its
// ack runs) and discards the rest, which a restart does not resend.
func TestSpoolDropDiscardsUnsent(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	var got atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // hold the first push until Drop has started
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hs.Close()
	s := openSpool(t, dir, nil)
	var acks atomic.Int64
	for i := range 5 {
		if err := s.Ship(context.Background(), testChunk(t, "a", "line", string(rune('a'+i))), func() { acks.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := NewLokiOutput(LokiOptions{URL: hs.URL, BatchChunks: 1, Logger: quiet()})
	s.Start(out)
	waitFor(t, func() bool { return s.Stats().Chunks == 5 && len(s.pendingIDs()) == 4 })
	dropped := make(chan int, 1)
	go func() {
		n, err := s.Drop(context.Background())
		if err != nil {
			t.Error(err)
		}
		dropped <- n
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if n := <-dropped; n != 4 {
		t.Errorf("dropped %d chunks, want 4", n)
	}
	if acks.Load() != 1 || got.Load() != 1 {
		t.Errorf("acks %d, pushes %d; want the one in flight", acks.Load(), got.Load())
	}
	s.Close()
	s = openSpool(t, dir, nil)
	defer s.Close()
	if st := s.Stats(); st.Chunks != 0 {
		t.Errorf("%d chunks came back after a restart", st.Chunks)
	}
	if _, err := os.Stat(filepath.Join(dir, "dead-letter")); err == nil {
		t.Error("dropped chunks went to the dead-letter folder")
	}
}

func TestRefusedMessages(t *testing.T) {
	for _, c := range []struct {
		err  error
		tok  bool
		want string
	}{
		{status.Error(codes.Unauthenticated, "unauthenticated: the API token is invalid, unknown or revoked"), true, "the server refused the token (401/Unauthenticated: unauthenticated: the API token is invalid"},
		{status.Error(codes.Unauthenticated, "unauthenticated: this server requires an API token"), false, "the server requires an API token and none was sent"},
		{status.Error(codes.Unauthenticated, "no org id"), false, "the server requires a tenant and none was sent (401/Unauthenticated: no org id): set output.tenant"},
		{status.Error(codes.PermissionDenied, `forbidden: token abc lacks the "push" scope`), true, `the server refused the token for this call (403/PermissionDenied: forbidden: token abc lacks the "push" scope)`},
	} {
		re := RefusedFromGRPC(fmt.Errorf("receive: %w", c.err), c.tok)
		if re == nil || !strings.HasPrefix(re.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.err, re, c.want)
		}
	}
	for _, err := range []error{nil, errors.New("plain"), status.Error(codes.Unavailable, "down")} {
		if re := RefusedFromGRPC(err, true); re != nil {
			t.Errorf("%v taken for a refusal: %v", err, re)
		}
	}
}

func TestPlaintextRisk(t *testing.T) {
	for addr, risky := range map[string]bool{
		"127.0.0.1:9095": false, "127.1.2.3:9095": false, "[::1]:9095": false, "localhost:9095": false,
		"LOCALHOST:1": false, "app.localhost:1": false, "http://localhost:3100": false, "http://127.0.0.1:3100/loki": false,
		"unix:///run/logsift.sock": false,
		"10.0.0.1:9095":            true, "logs.example.com:9095": true, "http://loki:3100": true, "[2001:db8::1]:9095": true, "dns:///logs:9095": true, "dns:///localhost:9095": false,
	} {
		if got := PlaintextRisk(addr); got != risky {
			t.Errorf("PlaintextRisk(%q) = %v", addr, got)
		}
	}
}

func (s *Spool) pendingIDs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uint64, len(s.pending))
	for i, r := range s.pending {
		ids[i] = r.id
	}
	return ids
}
