// Package server wires logsift's modules into one process: it opens the
// store, the event bus, the workspace metadata and the tokens, mounts the
// ingest, query, workspace, event and token APIs on one HTTP mux and one
// gRPC server behind the auth guard, serves /ready and /metrics, and shuts
// everything down in order.
package server

import (
	"context"
	"crypto/tls"
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
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/events/audit"
	"github.com/logsift/logsift/pkg/events/stream"
	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/search"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
	"github.com/logsift/logsift/pkg/tracing"
	"github.com/logsift/logsift/pkg/workspace"
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
	Ingest    IngestConfig     `yaml:"ingest"`
	Limits    ingest.Limits    `yaml:"limits"`
	Overrides ingest.Overrides `yaml:"overrides"`
	Query     lokiapi.Limits   `yaml:"query"`

	// Events chooses the event bus: in process, or NATS JetStream.
	Events events.Config `yaml:"events"`
	// Auth turns API tokens on (see docs/security.md); Overload bounds
	// the work taken on at once.
	Auth     auth.Config         `yaml:"auth"`
	Overload auth.OverloadConfig `yaml:"overload"`
	// TLS serves HTTP and gRPC over TLS when certificates are set.
	TLS TLSConfig `yaml:"tls"`
	// Tracing exports OpenTelemetry spans when an endpoint is set.
	Tracing tracing.Config `yaml:"tracing"`
	// Audit records workspace, import and token events under
	// data_dir/audit; on by default.
	Audit AuditConfig `yaml:"audit"`
	// Cache keeps results of metric range queries: in process by
	// default, Redis as a second level when configured (docs/cache.md).
	Cache CacheConfig `yaml:"cache"`
}

// IngestConfig is the `ingest:` block: bounds on push requests, whatever
// the tenant.
type IngestConfig struct {
	// MaxBodyBytes bounds a push body as sent (compressed); 0 takes 32
	// MiB. Larger bodies get 413.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxDecompressedBytes bounds a push body after gzip/deflate and
	// snappy, and the memory of its decoded entries; 0 takes 128 MiB.
	MaxDecompressedBytes int `yaml:"max_decompressed_bytes"`
}

// AuditConfig is the `audit:` block.
type AuditConfig struct {
	Disabled bool  `yaml:"disabled"`
	MaxSize  int64 `yaml:"max_size"`
	MaxFiles int   `yaml:"max_files"`
}

// DefaultConfig is the embedded default.
func DefaultConfig() Config {
	return Config{
		Target:            "all",
		DataDir:           "./logsift-data",
		HTTPListenAddress: ":3100",
		GRPCListenAddress: ":9095",
		Store:             store.Options{Compaction: store.DefaultCompaction()},
		Limits:            ingest.DefaultLimits(),
		Query:             lokiapi.DefaultLimits(),
		Overload:          auth.DefaultOverloadConfig(),
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
	cfg        Config
	log        *slog.Logger
	Store      *store.Store
	Engine     *query.Engine
	Bus        events.Bus
	Workspaces *workspace.Service
	Tokens     *auth.TokenFile
	guard      *auth.Guard
	audit      *audit.Log
	tls        *tls.Config
	certs      *CertReloader
	traceStop  func(context.Context) error
	// bg ends the background subscribers (metrics, audit) at shutdown.
	bg     context.Context
	bgStop context.CancelFunc
	// streamsDone ends the open event streams (SSE, gRPC Subscribe) at
	// shutdown, which otherwise last as long as their clients.
	streamsDone chan struct{}
	closers     []func() error
	http        *http.Server
	ln          net.Listener
	grpc        *grpc.Server
	grpcLn      net.Listener

	// journal keeps the recent events the SSE stream replays.
	journal *stream.Journal
}

// New opens the store, the event bus, the workspace metadata and the
// tokens, and builds the HTTP and gRPC handlers; Serve starts them. On an
// error everything opened so far is closed again.
func New(cfg Config, log *slog.Logger) (_ *Server, err error) {
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
	s := &Server{cfg: cfg, log: log, streamsDone: make(chan struct{})}
	s.bg, s.bgStop = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()

	// Tracing first, so that everything after it may start spans.
	if s.traceStop, err = tracing.Setup(s.bg, cfg.Tracing, log); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	cfg.Store.Logger = log
	if s.Store, err = store.Open(cfg.DataDir, cfg.Store); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return s.Store.Close(ctx)
	})
	s.Engine = &query.Engine{Store: s.Store}
	s.registerStoreGauges()

	origin := events.DefaultOrigin()
	if s.Bus, err = events.Open(cfg.Events, origin, log); err != nil {
		return nil, fmt.Errorf("event bus: %w", err)
	}
	s.closers = append(s.closers, s.Bus.Close)
	if err = events.CountEvents(s.bg, s.Bus, origin, log); err != nil {
		return nil, err
	}
	// The journal subscribes from the start, so that the event stream
	// can replay to a client that reconnects (docs/events.md).
	if jc := cfg.Events.Journal; jc.MaxEvents < 0 || jc.MaxBytes < 0 {
		return nil, fmt.Errorf("events.journal: max_events %d and max_bytes %d must not be negative (0 takes the default)", jc.MaxEvents, jc.MaxBytes)
	}
	if s.journal, err = stream.StartJournal(s.bg, s.Bus, stream.JournalOptions{Log: log, MaxEvents: cfg.Events.Journal.MaxEvents, MaxBytes: cfg.Events.Journal.MaxBytes}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.journal.Close)
	if !cfg.Audit.Disabled {
		if s.audit, err = audit.Start(s.bg, s.Bus, cfg.DataDir, audit.Options{MaxSize: cfg.Audit.MaxSize, MaxFiles: cfg.Audit.MaxFiles, Origin: origin, Log: log}); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		s.closers = append(s.closers, s.audit.Close)
	}

	// The result cache closes before the store and the bus (closers run
	// newest first), as newResultCache asks.
	rc, closeCache, err := newResultCache(cfg.Cache, s.Store, s.Bus, log)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, closeCache)
	if rc != nil {
		s.Engine.UseResultCache(rc)
	}

	if s.Workspaces, err = workspace.Open(cfg.DataDir, workspace.Options{Bus: s.Bus, Data: s.Store, Log: log}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Workspaces.Close)

	tokensPath := cfg.Auth.TokensFile
	if tokensPath == "" {
		tokensPath = auth.DefaultTokensPath(cfg.DataDir)
	}
	if s.Tokens, err = auth.OpenTokenFile(tokensPath, auth.TokenFileOptions{Logger: log}); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	s.closers = append(s.closers, s.Tokens.Close)
	if s.guard, err = auth.NewGuard(auth.Options{
		Auth: cfg.Auth, Overload: cfg.Overload, Tokens: s.Tokens,
		Tenants: s.resolver(), RouteName: routeName, Logger: log,
	}); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}

	var grpcOpts []grpc.ServerOption
	if cfg.TLS.Enabled() {
		if s.tls, s.certs, err = ServerTLS(cfg.TLS, log); err != nil {
			return nil, err
		}
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	s.http = &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.tls,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	s.http.RegisterOnShutdown(s.endStreams)
	chunks := ingest.NewChunkService(s.Store, ingest.ChunkConfig{
		Limits:    &s.cfg.Limits,
		Overrides: s.cfg.Overrides,
		Tenants:   s.resolver(),
		Logger:    log,
	})
	grpcOpts = append(grpcOpts, chunks.ServerOptions()...)
	grpcOpts = append(grpcOpts, tracing.GRPCServerOptions()...)
	grpcOpts = append(grpcOpts,
		grpc.ChainUnaryInterceptor(s.guard.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(s.guard.StreamServerInterceptor()))
	s.grpc = grpc.NewServer(grpcOpts...)
	chunks.Register(s.grpc)
	workspace.RegisterGRPC(s.grpc, s.Workspaces, s.resolver())
	stream.RegisterGRPC(s.grpc, s.streamOptions())
	search.RegisterGRPC(s.grpc, s.searchService())
	return s, nil
}

// searchService is the streaming search, under the query API's limits.
func (s *Server) searchService() *search.Service {
	return &search.Service{Engine: s.Engine, Store: s.Store, Limits: s.cfg.Query, Tenants: s.resolver(), Events: s.Bus, Log: s.log}
}

// endStreams closes the event streams once.
func (s *Server) endStreams() {
	select {
	case <-s.streamsDone:
	default:
		close(s.streamsDone)
	}
}

func (s *Server) streamOptions() stream.Options {
	return stream.Options{Bus: s.Bus, Journal: s.journal, Tenants: s.resolver(), Aliases: s.Workspaces.Aliases, Log: s.log, Done: s.streamsDone}
}

// closeAll closes what New opened, newest first.
func (s *Server) closeAll() error {
	s.endStreams()
	s.bgStop()
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	if s.traceStop != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.traceStop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush traces: %w", err))
		}
		s.traceStop = nil
	}
	return errors.Join(errs...)
}

// resolver resolves the tenant of requests that passed the guard, which
// has already put the authenticated tenant into X-Scope-OrgID.
func (s *Server) resolver() tenant.Resolver {
	return tenant.Resolver{Default: s.cfg.DefaultTenant, Required: s.cfg.RequireTenant}
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	resolver := s.resolver()
	mux := http.NewServeMux()
	push := ingest.NewHandler(s.Store, ingest.Config{
		Limits:               &s.cfg.Limits,
		Overrides:            s.cfg.Overrides,
		Tenants:              resolver,
		Logger:               s.log,
		MaxBodyBytes:         s.cfg.Ingest.MaxBodyBytes,
		MaxDecompressedBytes: s.cfg.Ingest.MaxDecompressedBytes,
	})
	mux.Handle("/loki/api/v1/push", push)
	api := &lokiapi.API{Engine: s.Engine, Store: s.Store, Limits: s.cfg.Query, Tenants: resolver, Log: s.log, Events: s.Bus,
		Discovery: func(tenantID string) (bool, []string) {
			l := push.LimitsFor(tenantID)
			return l.DiscoverLogLevels, l.DiscoverServiceName
		}}
	api.Register(mux)
	(&search.HTTP{Service: s.searchService()}).Register(mux)
	(&workspace.HTTP{Service: s.Workspaces, Tenants: resolver, Log: s.log}).Register(mux)
	mux.Handle(stream.Path, stream.NewSSE(s.streamOptions()))
	(&auth.TokenAPI{Tokens: s.Tokens}).Register(mux)
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
	// Compacts every partition with chunks not compacted yet, now, and
	// answers when done; an admin route like /flush (auth's fallback rule).
	mux.HandleFunc("/compact", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		if err := s.Store.Compact(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	// Tracing outermost, so that the guard's refusals are traced and
	// logged with the query ID too.
	return tracing.HTTPMiddleware(withRequestMetrics(s.guard.Handler(mux)), routeName)
}

// withRequestMetrics counts requests and their latency by route.
func withRequestMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		m := routeMetricsFor(routeName(r.URL.Path), sw.code)
		m.requests.Inc()
		m.duration.UpdateDuration(start)
	})
}

// routeMetrics are the series of one route and status code, looked up
// once: building their names per request cost more than the request's
// own work on cached dashboard queries.
type routeMetrics struct {
	requests *metrics.Counter
	duration *metrics.PrometheusHistogram
}

type routeKey struct {
	route string
	code  int
}

var routeMetricsCache sync.Map // routeKey -> *routeMetrics

func routeMetricsFor(route string, code int) *routeMetrics {
	k := routeKey{route, code}
	if m, ok := routeMetricsCache.Load(k); ok {
		return m.(*routeMetrics)
	}
	m := &routeMetrics{
		requests: metrics.GetOrCreateCounter(fmt.Sprintf(`logsift_http_requests_total{route=%q,code="%d"}`, route, code)),
		duration: metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf(`logsift_http_request_duration_seconds{route=%q}`, route)),
	}
	v, _ := routeMetricsCache.LoadOrStore(k, m)
	return v.(*routeMetrics)
}

// knownRoutes are the fixed paths counted under their own name.
var knownRoutes = map[string]bool{
	"/loki/api/v1/push": true, "/loki/api/v1/query_range": true, "/loki/api/v1/query": true,
	"/loki/api/v1/labels": true, "/loki/api/v1/label": true, "/loki/api/v1/series": true,
	"/loki/api/v1/tail": true, "/loki/api/v1/index/stats": true, "/loki/api/v1/index/volume": true,
	"/loki/api/v1/index/volume_range": true, "/loki/api/v1/patterns": true, "/loki/api/v1/detected_labels": true,
	"/loki/api/v1/detected_fields": true, "/loki/api/v1/format_query": true, "/loki/api/v1/status/buildinfo": true,
	"/loki/api/v1/drilldown-limits": true, "/ready": true, "/metrics": true, "/flush": true, "/compact": true,
	"/api/v1/workspaces": true, "/api/v1/events": true, "/api/v1/tokens": true, "/api/v1/search/stream": true,
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
	case strings.HasPrefix(p, "/api/v1/workspaces/"):
		return "/api/v1/workspaces/:name"
	case strings.HasPrefix(p, "/api/v1/tokens/"):
		return "/api/v1/tokens/:id"
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

// Flush lets server-sent events through; Unwrap lets
// http.ResponseController reach Hijack for live tail's WebSocket.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
	go func() {
		if s.tls != nil {
			errc <- s.http.ServeTLS(s.ln, "", "")
			return
		}
		errc <- s.http.Serve(s.ln)
	}()
	go func() { errc <- s.grpc.Serve(s.grpcLn) }()
	s.log.Info("logsift is serving", "http", s.Addr(), "grpc", s.GRPCAddr(), "tls", s.tls != nil, "data_dir", s.cfg.DataDir)
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
	s.endStreams()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		s.grpc.Stop()
	}
	if err := s.closeAll(); err != nil {
		return errors.Join(serveErr, fmt.Errorf("close: %w", err))
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// Reload rereads what an operator may change under a running server: the
// TLS certificates and the tokens file. The command runs it on SIGHUP;
// both are also picked up by themselves within seconds of a change.
func (s *Server) Reload() error {
	var errs []error
	if s.certs != nil {
		if err := s.certs.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("reload TLS certificates: %w", err))
		}
	}
	if err := s.Tokens.Reload(); err != nil {
		errs = append(errs, fmt.Errorf("reload tokens: %w", err))
	}
	return errors.Join(errs...)
}

// Close releases what New opened, for a server that never served (Serve
// closes everything itself when it returns).
func (s *Server) Close() error { return s.closeAll() }
