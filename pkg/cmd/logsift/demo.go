package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/sampledata"
	"github.com/logsift/logsift/pkg/server"
)

// runDemo starts the server on the embedded default with a fresh data
// directory, loads the shipped sample logs through the Loki push API (the
// same path any client takes), prints where to look, and keeps a live
// stream going until interrupted.
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory (default: a new temporary directory)")
	listen := fs.String("http-listen-address", "127.0.0.1:3100", "HTTP listen address; a busy port falls back to a free one")
	lines := fs.Int("lines", 5000, "sample lines per stream")
	exitAfterLoad := fs.Bool("exit-after-load", false, "stop once the samples are loaded and the examples printed (for scripts)")
	logLevel := fs.String("log.level", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	if *dataDir == "" {
		if *dataDir, err = os.MkdirTemp("", "logsift-demo-"); err != nil {
			return err
		}
	}
	cfg := server.DefaultConfig()
	cfg.DataDir = *dataDir
	cfg.HTTPListenAddress = *listen
	if ln, err := net.Listen("tcp", *listen); err != nil {
		cfg.HTTPListenAddress = "127.0.0.1:0"
	} else {
		ln.Close()
	}
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

	base := "http://" + srv.Addr()
	client := &lokiclient.Client{URL: base}
	now := time.Now()
	streams := sampledata.Generate(sampledata.Options{Seed: 1, End: now, Span: time.Hour, Lines: *lines})
	var push []lokiclient.Stream
	total := 0
	var jobs []string
	for _, s := range streams {
		push = append(push, lokiclient.Stream{Labels: s.Labels, Entries: s.Entries})
		total += len(s.Entries)
		jobs = append(jobs, fmt.Sprintf("{job=%q}", s.Labels.Get("job")))
	}
	start := time.Now()
	if err := client.Push(ctx, push); err != nil {
		cancel()
		<-done
		return fmt.Errorf("load samples: %w", err)
	}
	loadTime := time.Since(start)

	fmt.Printf(`logsift demo is running on the embedded default (no other service needed)
  data directory:  %s
  Loki API:        %s   (point Grafana's Loki datasource, logcli or Promtail here)
  metrics:         %s/metrics

Loaded %d sample lines into %d streams (%s) in %s, through the Loki push API.

Try:
  curl -sG %s/loki/api/v1/query_range --data-urlencode 'query={job="api"} |= "connection refused"' --data-urlencode 'limit=5'
  curl -sG %s/loki/api/v1/query_range --data-urlencode 'query={env="demo"} |~ "(?i)timeout"' --data-urlencode 'since=1h'
  curl -sG %s/loki/api/v1/labels
`, *dataDir, base, base, total, len(streams), strings.Join(jobs, ", "), loadTime.Round(time.Millisecond), base, base, base)

	if *exitAfterLoad {
		cancel()
		return <-done
	}
	fmt.Println("\nA live stream {job=\"demo-live\"} gets a line every second. Press Ctrl-C to stop.")
	go liveStream(ctx, client)
	return <-done
}

// liveStream keeps appending a line per second so that there is something
// to watch in a live tail.
func liveStream(ctx context.Context, c *lokiclient.Client) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s := sampledata.Generate(sampledata.Options{Seed: uint64(i) + 100, End: now, Span: time.Second, Lines: 1})
			st := s[i%len(s)]
			st.Labels = labels.New("job", "demo-live", "service_name", st.Labels.Get("service_name"), "env", "demo")
			_ = c.Push(ctx, []lokiclient.Stream{{Labels: st.Labels, Entries: st.Entries}})
		}
	}
}
