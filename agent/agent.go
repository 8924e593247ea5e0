//go:build unix

// Package agent wires logsift-agent together: the tailer builds chunks
// into the spool, an output ships them, acknowledgements move the tailer's
// positions, and /metrics reports it all.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/agent/build"
	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/ship"
	"github.com/logsift/logsift/agent/tail"
	"github.com/logsift/logsift/pkg/labels"
)

// Agent is a configured agent, ready to Run.
type Agent struct {
	cfg    *config.Config
	log    *slog.Logger
	spool  *ship.Spool
	tailer *tail.Tailer
	out    ship.Output
	// ShutdownTimeout bounds waiting for acknowledgements of the last
	// chunks when Run ends; what is not acknowledged by then stays in the
	// spool for the next run.
	ShutdownTimeout time.Duration
}

// New opens the spool and positions and prepares the tailer and output.
func New(cfg *config.Config, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.Default()
	}
	out, err := NewOutput(cfg, log)
	if err != nil {
		return nil, err
	}
	spool, err := ship.Open(ship.Options{
		Dir:                cfg.SpoolDir(),
		MaxBytes:           int64(cfg.Spool.MaxBytes),
		SegmentBytes:       int64(cfg.Spool.SegmentBytes),
		DeadLetterDir:      cfg.DeadLetterDir(),
		DeadLetterMaxBytes: int64(cfg.Spool.DeadLetterMaxBytes),
		Logger:             log,
	})
	if err != nil {
		return nil, err
	}
	var groups []tail.Group
	for _, g := range cfg.Files {
		groups = append(groups, tail.Group{Include: g.Paths, Exclude: g.Exclude, Labels: labels.FromMap(g.Labels)})
	}
	tl, err := tail.New(tail.Options{
		Groups:             groups,
		PositionsFile:      cfg.PositionsFile(),
		PollInterval:       cfg.Tail.PollInterval,
		RescanInterval:     cfg.Tail.RescanInterval,
		IdleTimeout:        cfg.Tail.IdleTimeout,
		DrainTimeout:       cfg.Tail.DrainTimeout,
		MaxOpenFiles:       cfg.Tail.MaxOpenFiles,
		Workers:            cfg.Tail.Workers,
		MaxLineBytes:       int(cfg.Tail.MaxLineBytes),
		ReadBufferBytes:    int(cfg.Tail.ReadBufferSize),
		StartAtEnd:         cfg.Tail.StartAt == "end",
		PositionsRetention: cfg.Positions.Retention,
		Build: build.Options{
			TargetBytes: int(cfg.Chunks.TargetBytes),
			MaxAge:      cfg.Chunks.MaxAge,
			Chunk:       cfg.Chunks.ChunkOptions(),
		},
		BufferBytes:       int64(cfg.Chunks.BufferBytes),
		NoLevels:          !cfg.DiscoverLogLevels,
		ServiceNameLabels: cfg.DiscoverServiceName,
		NoServiceName:     len(cfg.DiscoverServiceName) == 0,
		Logger:            log,
	}, spool)
	if err != nil {
		spool.Close()
		return nil, err
	}
	spool.Recover(tl.Claim)
	spool.SetCommitHook(tl.SavePositions)
	return &Agent{cfg: cfg, log: log, spool: spool, tailer: tl, out: out, ShutdownTimeout: 10 * time.Second}, nil
}

// NewOutput builds the configured output.
func NewOutput(cfg *config.Config, log *slog.Logger) (ship.Output, error) {
	return newOutput(cfg, log, nil)
}

// newOutput builds the configured output; onRefused, when set, hears of
// every refusal of the credentials.
func newOutput(cfg *config.Config, log *slog.Logger, onRefused func(error)) (ship.Output, error) {
	o := cfg.Output
	bo := ship.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff}
	token, err := o.ResolveToken()
	if err != nil {
		return nil, err
	}
	warnPlaintextToken(cfg, token, log)
	switch o.Type {
	case "loki":
		var hc *http.Client
		if o.TLS.Enabled {
			tc, err := tlsConfig(o.TLS)
			if err != nil {
				return nil, err
			}
			hc = &http.Client{Timeout: o.Timeout, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}
		}
		return ship.NewLokiOutput(ship.LokiOptions{
			URL: o.URL, Tenant: o.Tenant, Token: token, OnRefused: onRefused, HTTP: hc, Timeout: o.Timeout,
			BatchBytes: int(o.BatchBytes), Backoff: bo, Logger: log,
		})
	default:
		gopts, err := grpcOptions(cfg, token, log)
		if err != nil {
			return nil, err
		}
		gopts.OnRefused = onRefused
		return ship.NewGRPCOutput(gopts)
	}
}

// grpcOptions are the gRPC output's options; run tracking dials the same
// server with them.
func grpcOptions(cfg *config.Config, token string, log *slog.Logger) (ship.GRPCOptions, error) {
	o := cfg.Output
	var tc *tls.Config
	if o.TLS.Enabled {
		var err error
		if tc, err = tlsConfig(o.TLS); err != nil {
			return ship.GRPCOptions{}, err
		}
	}
	return ship.GRPCOptions{
		Address: o.URL, Tenant: o.Tenant, TLS: tc, Token: token, MaxInflight: o.MaxInflight,
		MaxChunkBytes: int(o.MaxChunkBytes), Backoff: ship.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff}, Logger: log,
	}, nil
}

// warnPlaintextToken warns once per output when a token goes over a
// network without TLS. Like Promtail, Alloy and Loki's clients the agent
// sends it anyway: the server may be behind a TLS-terminating proxy on the
// same network, and refusing would only push people to drop the token.
func warnPlaintextToken(cfg *config.Config, token string, log *slog.Logger) {
	o := cfg.Output
	if token == "" {
		return
	}
	plain := !o.TLS.Enabled
	if o.Type == "loki" {
		plain = strings.HasPrefix(strings.ToLower(o.URL), "http://")
	}
	if plain && ship.PlaintextRisk(o.URL) {
		log.Warn("sending the API token without TLS to a non-loopback address: anyone on the network path can read it; enable output.tls (or use an https:// URL)", "url", o.URL)
	}
}

func tlsConfig(c config.TLS) (*tls.Config, error) {
	tc := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Spool is the agent's spool, for the importer to ship through.
func (a *Agent) Spool() *ship.Spool { return a.spool }

// Run follows files and ships until ctx ends, then ships what is buffered,
// waits up to ShutdownTimeout for acknowledgements and saves positions.
func (a *Agent) Run(ctx context.Context) error {
	var srv *http.Server
	if addr := a.cfg.Metrics.ListenAddress; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			a.spool.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
			metrics.WritePrometheus(w, true)
		})
		mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ready\n"))
		})
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics listener failed", "err", err)
			}
		}()
		a.log.Info("serving metrics", "address", ln.Addr().String())
	}
	a.spool.Start(a.out)
	a.log.Info("agent started", "output", a.cfg.Output.Type, "url", a.cfg.Output.URL, "groups", len(a.cfg.Files))
	err := a.tailer.Run(ctx)

	fctx, cancel := context.WithTimeout(context.Background(), a.ShutdownTimeout)
	if ferr := a.spool.Flush(fctx); ferr != nil {
		a.log.Warn("stopping with chunks not yet acknowledged; they are sent on the next start", "err", ferr)
	}
	cancel()
	a.spool.Close()
	if perr := a.tailer.SavePositions(); perr != nil {
		a.log.Error("saving positions", "err", perr)
	}
	if srv != nil {
		_ = srv.Close()
	}
	return err
}
