package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/logsift/logsift/pkg/sampledata"
	"github.com/logsift/logsift/pkg/server"
)

// demoEnv is what the demo has set up, for the part that loads data.
type demoEnv struct {
	dir      string // everything of the demo lives below it
	httpURL  string
	grpcAddr string
	now      time.Time
	lines    int
}

// runDemo starts the server on the embedded default with a fresh data
// directory, then runs the agent beside it: it imports a support bundle
// made of the shipped sample logs and tails a log file that the demo keeps
// writing. It prints where to look and runs until interrupted.
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for the server's data, the agent's state and the sample files (default: a new temporary directory)")
	listen := fs.String("http-listen-address", "127.0.0.1:3100", "HTTP listen address; a busy port falls back to a free one")
	grpcListen := fs.String("grpc-listen-address", "127.0.0.1:9095", "gRPC listen address for the agent; a busy port falls back to a free one")
	lines := fs.Int("lines", 5000, "sample lines per file of the bundle")
	exitAfterLoad := fs.Bool("exit-after-load", false, "stop once the bundle is imported and the tailed file is searchable (for scripts)")
	logLevel := fs.String("log.level", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "logsift-demo-"); err != nil {
			return err
		}
	}
	cfg := server.DefaultConfig()
	cfg.DataDir = filepath.Join(*dir, "server-data")
	cfg.HTTPListenAddress = freeOr(*listen)
	cfg.GRPCListenAddress = freeOr(*grpcListen)
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	env := &demoEnv{dir: *dir, httpURL: "http://" + srv.Addr(), grpcAddr: srv.GRPCAddr(), now: time.Now(), lines: *lines}
	loaded, err := loadDemo(ctx, env, log)
	if err != nil {
		cancel()
		<-done
		return err
	}
	base := env.httpURL
	fmt.Printf(`
logsift demo is running on the embedded default (no other service needed)
  directory:       %s
  Loki API:        %s   (point Grafana's Loki datasource, logcli or Promtail here)
  agent gRPC:      %s
  metrics:         %s/metrics

%s
Try:
  curl -sG %s/loki/api/v1/query_range --data-urlencode 'query={workspace="demo-bundle"} |= "connection refused"' --data-urlencode 'limit=5'
  curl -sG %s/loki/api/v1/query_range --data-urlencode 'query=sum by (detected_level) (count_over_time({workspace="demo-bundle"}[5m]))' --data-urlencode 'since=2h'
  curl -sG %s/loki/api/v1/query_range --data-urlencode 'query={job="demo-live"}' --data-urlencode 'limit=5'
`, *dir, base, env.grpcAddr, base, loaded, base, base, base)
	if *exitAfterLoad {
		cancel()
		return <-done
	}
	fmt.Println("\nThe agent keeps tailing the live file, which gets a line every second. Press Ctrl-C to stop.")
	return <-done
}

// freeOr returns addr when it can be bound, else a free port on loopback.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return addr
}

// writeBundle writes the shipped samples as the files of a support bundle
// and returns the file paths.
func writeBundle(env *demoEnv) ([]string, error) {
	names := map[string]string{
		"nginx":    "var/log/nginx/access.log",
		"api":      "var/log/api/api.log",
		"payments": "var/log/payments/payments.json",
		"billing":  "opt/billing/logs/billing.log",
	}
	var out []string
	for _, s := range sampledata.Generate(sampledata.Options{Seed: 1, End: env.now, Span: time.Hour, Lines: env.lines}) {
		rel := names[s.Labels.Get("job")]
		p := filepath.Join(env.dir, "bundle", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		for _, e := range s.Entries {
			if _, err := f.Write(append(e.Line, '\n')); err != nil {
				f.Close()
				return nil, err
			}
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
