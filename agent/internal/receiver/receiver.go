// Package receiver runs logsift's real receive path for the agent's tests
// and the testserver command: the store, the chunk service and the
// workspace service on one loopback gRPC listener (as pkg/server puts them
// on :9095), optionally behind pkg/auth's Guard, optionally acknowledging
// chunks slowly so that a test can act while an import is under way.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"

	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
	"github.com/logsift/logsift/pkg/workspace"
)

// Options configure a Server.
type Options struct {
	// Dir is the data directory (store and workspace metadata).
	Dir string
	// Addr is the listen address; default 127.0.0.1:0.
	Addr string
	// Workspaces registers logsift.v1.WorkspaceService next to the chunk
	// service.
	Workspaces bool
	// TokensFile, when set, puts a Guard with this token file in front of
	// every call, auth switched on: calls need a valid token.
	TokensFile string
	// GRPCRoutes are the Guard's rules; nil means auth.DefaultGRPCRoutes.
	GRPCRoutes []auth.Route
	// AckDelay holds every chunk this long before it is stored (and then
	// acknowledged).
	AckDelay time.Duration
	// Logger defaults to one that discards.
	Logger *slog.Logger
}

// Server is a running receiver.
type Server struct {
	Store      *store.Store
	Workspaces *workspace.Service // nil without Options.Workspaces
	Tokens     *auth.TokenFile    // nil without Options.TokensFile

	addr string
	grpc *grpc.Server
}

// Start opens the store and serves.
func Start(opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	st, err := store.Open(opts.Dir, store.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	s := &Server{Store: st}
	fail := func(err error) (*Server, error) {
		s.close()
		return nil, err
	}
	var sopts []grpc.ServerOption
	if opts.TokensFile != "" {
		if s.Tokens, err = auth.OpenTokenFile(opts.TokensFile, auth.TokenFileOptions{Logger: log, LastUsedResolution: -1}); err != nil {
			return fail(err)
		}
		g, err := auth.NewGuard(auth.Options{
			Auth: auth.Config{Enabled: "true"}, Tokens: s.Tokens, GRPCRoutes: opts.GRPCRoutes,
			Metrics: metrics.NewSet(), Logger: log,
		})
		if err != nil {
			return fail(err)
		}
		sopts = append(sopts,
			grpc.ChainUnaryInterceptor(g.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(g.StreamServerInterceptor()))
	}
	var cs ingest.ChunkStore = st
	if opts.AckDelay > 0 {
		cs = slowStore{st: st, delay: opts.AckDelay}
	}
	chunks := ingest.NewChunkService(cs, ingest.ChunkConfig{Metrics: metrics.NewSet(), Logger: log})
	// Stop waits for running handlers, so that none writes to the store
	// while it closes or after a test removed its directory.
	sopts = append(sopts, grpc.WaitForHandlers(true))
	s.grpc = grpc.NewServer(append(chunks.ServerOptions(), sopts...)...)
	chunks.Register(s.grpc)
	if opts.Workspaces {
		if s.Workspaces, err = workspace.Open(opts.Dir, workspace.Options{Data: st, Log: log}); err != nil {
			return fail(err)
		}
		workspace.RegisterGRPC(s.grpc, s.Workspaces, tenant.Resolver{})
	}
	var ln net.Listener
	for i := 0; ; i++ {
		// The port of a stopped server can take a moment to be free.
		if ln, err = net.Listen("tcp", opts.Addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fail(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = s.grpc.Serve(ln) }()
	return s, nil
}

// Addr is the listener's host:port.
func (s *Server) Addr() string { return s.addr }

// Close stops serving at once and closes the store.
func (s *Server) Close() error {
	if s.grpc != nil {
		s.grpc.Stop()
	}
	return s.close()
}

// GracefulStop lets running calls finish, then closes the store.
func (s *Server) GracefulStop() error {
	if s.grpc != nil {
		s.grpc.GracefulStop()
	}
	return s.close()
}

func (s *Server) close() error {
	var errs []error
	if s.Workspaces != nil {
		errs = append(errs, s.Workspaces.Close())
	}
	if s.Tokens != nil {
		errs = append(errs, s.Tokens.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs = append(errs, s.Store.Close(ctx))
	return errors.Join(errs...)
}

// Stats are what the store holds for a selection of streams.
type Stats struct {
	Streams, Chunks int
	Entries         int64
	// Lines are the stored entries' lines, one string each.
	Lines []string
}

// Stats reads every chunk (and head entry) of the tenant's streams whose
// workspace label is ws ("" for every stream).
func (s *Server) Stats(tenantID, ws string) (Stats, error) {
	var ms []*labels.Matcher
	if ws != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, "workspace", ws))
	}
	var out Stats
	var buf []byte
	var bb chunk.BlockBuffer
	for _, sd := range s.Store.Select(tenantID, ms, 0, 1<<62) {
		out.Streams++
		for _, ref := range sd.Chunks {
			c, b, err := s.Store.ReadChunk(ref, buf)
			if err != nil {
				return out, fmt.Errorf("read chunk: %w", err)
			}
			buf = b
			out.Chunks++
			for i := range c.Meta().Blocks {
				ents, err := c.ReadBlock(i, &bb)
				if err != nil {
					return out, fmt.Errorf("read block: %w", err)
				}
				for _, e := range ents {
					out.Entries++
					out.Lines = append(out.Lines, string(e.Line))
				}
			}
		}
		for _, e := range sd.Head {
			out.Entries++
			out.Lines = append(out.Lines, string(e.Line))
		}
	}
	return out, nil
}

// slowStore holds every chunk before storing it.
type slowStore struct {
	st    *store.Store
	delay time.Duration
}

func (s slowStore) PutChunk(ctx context.Context, tenantID string, data []byte) (bool, error) {
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.st.PutChunk(ctx, tenantID, data)
}
