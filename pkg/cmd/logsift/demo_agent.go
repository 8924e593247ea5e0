package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/logsift/logsift/agent"
	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/importer"
	"github.com/logsift/logsift/pkg/lokiclient"
)

// loadDemo runs the real agent in this process: it packs the sample files
// into bundle.tar.gz and imports it as workspace demo-bundle, then tails
// live/app.log, which a goroutine here keeps writing. It returns once the
// import is acknowledged and the first tailed line is searchable.
func loadDemo(ctx context.Context, env *demoEnv, log *slog.Logger) (string, error) {
	files, err := writeBundle(env)
	if err != nil {
		return "", fmt.Errorf("write the sample bundle: %w", err)
	}
	bundle := filepath.Join(env.dir, "bundle.tar.gz")
	if err := packTarGz(bundle, filepath.Join(env.dir, "bundle"), files); err != nil {
		return "", fmt.Errorf("pack the sample bundle: %w", err)
	}
	live := filepath.Join(env.dir, "live", "app.log")
	if err := os.MkdirAll(filepath.Dir(live), 0o755); err != nil {
		return "", err
	}
	yaml := fmt.Sprintf(`
data_dir: %q
output: {type: logsift, url: %q}
files:
  - paths: [%q]
    labels: {job: demo-live, service_name: demo-live}
chunks: {max_age: 1s}
metrics: {listen_address: ""}
`, filepath.Join(env.dir, "agent-data"), env.grpcAddr, filepath.Join(env.dir, "live", "*.log"))
	cfg, err := config.Parse("demo-agent.yaml", []byte(yaml))
	if err != nil {
		return "", fmt.Errorf("agent configuration: %w", err)
	}

	start := time.Now()
	sum, err := agent.Import(ctx, cfg, importer.Options{
		Paths:     []string{bundle},
		Workspace: "demo-bundle",
		Host:      "demo-host",
		Progress:  os.Stderr,
	}, time.Minute, log)
	if err != nil {
		return "", fmt.Errorf("import the sample bundle: %w", err)
	}
	importTime := time.Since(start)

	go writeLive(ctx, live)
	a, err := agent.New(cfg, log)
	if err != nil {
		return "", fmt.Errorf("start the agent: %w", err)
	}
	go func() {
		if err := a.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("agent stopped", "err", err)
		}
	}()
	if err := waitForLines(ctx, env.httpURL, `{job="demo-live"}`, 30*time.Second); err != nil {
		return "", err
	}
	return fmt.Sprintf("The agent imported %s (%d files, %d entries from %d lines, %d chunks) into workspace \"demo-bundle\" in %s,\nand is tailing %s into {job=\"demo-live\"}.\n",
		bundle, sum.Files, sum.Entries, sum.Lines, sum.Chunks, importTime.Round(time.Millisecond), live), nil
}

// packTarGz writes files (below root) into a gzip-compressed tar.
func packTarGz(dst, root string, files []string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(st, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// writeLive appends a line per second, as an application would.
func writeLive(ctx context.Context, path string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	levels := []string{"info", "info", "info", "warn", "error"}
	for i := 0; ; i++ {
		fmt.Fprintf(f, "%s level=%s msg=\"demo heartbeat\" seq=%d\n", time.Now().UTC().Format(time.RFC3339Nano), levels[i%len(levels)], i)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// waitForLines waits until a query finds at least one entry.
func waitForLines(ctx context.Context, url, query string, timeout time.Duration) error {
	c := &lokiclient.Client{URL: url}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := c.QueryRange(ctx, query, time.Now().Add(-time.Hour), time.Now().Add(time.Minute), 1, nil)
		if err == nil {
			if s, err := resp.Streams(); err == nil && len(s) > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("no line of %s became searchable within %s", query, timeout)
}
