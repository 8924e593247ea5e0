// Package server wires logsift's modules into one process: it opens the
// store, mounts the ingest and query APIs on one HTTP mux, serves /ready
// and /metrics, and shuts everything down in order.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"

	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// Config is the server's configuration file. Every field has a default, so
// an empty file (or none) runs the embedded default.
type Config struct {
	// Target names the modules to run; only "all" exists until the
	// scale-out storage path does (docs/architecture.md).
	Target string `yaml:"target"`
	// DataDir holds the WAL, partitions and metadata.
	DataDir string `yaml:"data_dir"`
	// HTTPListenAddress is where the Loki-compatible HTTP API listens;
	// 3100 is Loki's port, so clients configured for Loki need no change.
	HTTPListenAddress string `yaml:"http_listen_address"`
	// GRPCListenAddress is where agents ship chunks (logsift.v1.ChunkService);
	// 9095 is Loki's gRPC port.
	GRPCListenAddress string `yaml:"grpc_listen_address"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes (0: 256
	// MiB). Past it the garbage collector works harder instead of letting
	// the heap double; the store's head budget is kept well below it.
	MemoryLimit int64 `yaml:"memory_limit"`
	// DefaultTenant is the tenant of requests without X-Scope-OrgID
	// (Loki's "fake" when auth is off).
	DefaultTenant string `yaml:"default_tenant"`
	// RequireTenant refuses requests without X-Scope-OrgID.
	RequireTenant bool `yaml:"require_tenant"`

	Store     store.Options    `yaml:"store"`
	Limits    ingest.Limits    `yaml:"limits"`
	Overrides ingest.Overrides `yaml:"overrides"`
	Query     lokiapi.Limits   `yaml:"query"`
}

// DefaultConfig is the embedded default.
func DefaultConfig() Config {
	return Config{
		Target:            "all",
		DataDir:           "./logsift-data",
		HTTPListenAddress: ":3100",
		GRPCListenAddress: ":9095",
		Limits:            ingest.DefaultLimits(),
		Query:             lokiapi.DefaultLimits(),
	}
}

// LoadConfig reads a YAML file over the defaults. Unknown fields are an
// error, so that a typo does not silently fall back to a default.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return cfg, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	// An empty file decodes to io.EOF and means "all defaults".
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Server is a running logsift server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	Store  *store.Store
	Engine *query.Engine
	http   *http.Server
	ln     net.Listener
	grpc   *grpc.Server
	grpcLn net.Listener
}

// New opens the store and builds the HTTP handlers; Serve starts them.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Target == "" {
		cfg.Target = "all"
	}
	if cfg.Target != "all" {
		return nil, fmt.Errorf("target %q is not available with the embedded local store; run -target=all (see docs/architecture.md, \"The -target split\")", cfg.Target)
	}
	limit := cfg.MemoryLimit
	if limit <= 0 {
		limit = 256 << 20
	}
	debug.SetMemoryLimit(limit)
	cfg.Store.Logger = log
	st, err := store.Open(cfg.DataDir, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Server{cfg: cfg, log: log, Store: st, Engine: &query.Engine{Store: st}}
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	chunks := ingest.NewChunkService(st, ingest.ChunkConfig{
		Limits:    &s.cfg.Limits,
		Overrides: s.cfg.Overrides,
		Tenants:   s.resolver(),
		Logger:    log,
	})
	s.grpc = grpc.NewServer(chunks.ServerOptions()...)
	chunks.Register(s.grpc)
	return s, nil
}

// Handler returns the HTTP routes.
func (s *Server) resolver() tenant.Resolver {
	return tenant.Resolver{Default: s.cfg.DefaultTenant, Required: s.cfg.RequireTenant}
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	resolver := s.resolver()
	mux := http.NewServeMux()
	push := ingest.NewHandler(s.Store, ingest.Config{
		Limits:    &s.cfg.Limits,
		Overrides: s.cfg.Overrides,
		Tenants:   resolver,
		Logger:    s.log,
	})
	mux.Handle("/loki/api/v1/push", push)
	api := &lokiapi.API{Engine: s.Engine, Store: s.Store, Limits: s.cfg.Query, Tenants: resolver, Log: s.log}
	api.Register(mux)
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		metrics.WritePrometheus(w, true)
	})
	// Profiles, as Loki and most Go servers expose them.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		if err := s.Store.Flush(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return withRequestMetrics(mux)
}

// withRequestMetrics counts requests and their latency by route.
func withRequestMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := routeName(r.URL.Path)
		metrics.GetOrCreateCounter(fmt.Sprintf(`logsift_http_requests_total{route=%q,code="%d"}`, route, sw.code)).Inc()
		metrics.GetOrCreateHistogram(fmt.Sprintf(`logsift_http_request_duration_seconds{route=%q}`, route)).UpdateDuration(start)
	})
}

// knownRoutes are the fixed paths counted under their own name.
var knownRoutes = map[string]bool{
	"/loki/api/v1/push": true, "/loki/api/v1/query_range": true, "/loki/api/v1/query": true,
	"/loki/api/v1/labels": true, "/loki/api/v1/label": true, "/loki/api/v1/series": true,
	"/loki/api/v1/tail": true, "/loki/api/v1/index/stats": true, "/loki/api/v1/index/volume": true,
	"/loki/api/v1/index/volume_range": true, "/loki/api/v1/patterns": true, "/loki/api/v1/detected_labels": true,
	"/loki/api/v1/detected_fields": true, "/loki/api/v1/format_query": true, "/loki/api/v1/status/buildinfo": true,
	"/loki/api/v1/drilldown-limits": true, "/ready": true, "/metrics": true, "/flush": true,
}

// routeName keeps metric cardinality bounded: label names in paths are
// replaced by a placeholder and unknown paths are pooled.
func routeName(p string) string {
	switch {
	case strings.HasPrefix(p, "/loki/api/v1/label/") && strings.HasSuffix(p, "/values"):
		return "/loki/api/v1/label/:name/values"
	case strings.HasPrefix(p, "/loki/api/v1/detected_field/") && strings.HasSuffix(p, "/values"):
		return "/loki/api/v1/detected_field/:name/values"
	case knownRoutes[p]:
		return p
	case strings.HasPrefix(p, "/debug/pprof/"):
		return "/debug/pprof/"
	}
	return "other"
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Listen binds the HTTP and gRPC addresses; Addr and GRPCAddr report
// them (useful with port 0).
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPListenAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.HTTPListenAddress, err)
	}
	gln, err := net.Listen("tcp", s.cfg.GRPCListenAddress)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen for gRPC on %s: %w", s.cfg.GRPCListenAddress, err)
	}
	s.ln, s.grpcLn = ln, gln
	return nil
}

// Addr is the bound HTTP address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// Serve answers HTTP until ctx ends, then shuts down in order: stop taking
// requests, finish those in flight, flush the store.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 2)
	go func() { errc <- s.http.Serve(s.ln) }()
	go func() { errc <- s.grpc.Serve(s.grpcLn) }()
	s.log.Info("logsift is serving", "http", s.Addr(), "grpc", s.GRPCAddr(), "data_dir", s.cfg.DataDir)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		s.log.Warn("HTTP shutdown", "err", err)
	}
	// GracefulStop waits for agents' streams, which never end by
	// themselves; give them a moment, then stop hard. Unacknowledged
	// chunks are resent by the agents.
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		s.grpc.Stop()
	}
	if err := s.Store.Close(shutdownCtx); err != nil {
		return errors.Join(serveErr, fmt.Errorf("close store: %w", err))
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}
