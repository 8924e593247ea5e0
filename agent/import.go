//go:build unix

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/importer"
	"github.com/logsift/logsift/agent/ship"
)

// Import runs a workspace import with the configured output and returns
// once every chunk is acknowledged (or flushTimeout passes). It uses a
// spool of its own under data_dir, so it can run next to a tailing agent;
// the spool's lock keeps two imports on one data_dir apart.
func Import(ctx context.Context, cfg *config.Config, opts importer.Options, flushTimeout time.Duration, log *slog.Logger) (*importer.Summary, error) {
	if log == nil {
		log = slog.Default()
	}
	out, err := NewOutput(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("create the output: %w", err)
	}
	spool, err := ship.Open(ship.Options{
		Dir:                filepath.Join(cfg.DataDir, "import-spool"),
		MaxBytes:           int64(cfg.Spool.MaxBytes),
		SegmentBytes:       int64(cfg.Spool.SegmentBytes),
		DeadLetterDir:      cfg.DeadLetterDir(),
		DeadLetterMaxBytes: int64(cfg.Spool.DeadLetterMaxBytes),
		Logger:             log,
	})
	if err != nil {
		return nil, fmt.Errorf("open the import spool: %w", err)
	}
	spool.Start(out)
	defer spool.Close()
	if opts.Overrides.Rules == nil {
		opts.Overrides = cfg.Detection
	}
	if opts.Logger == nil {
		opts.Logger = log
	}
	sum, err := importer.Run(ctx, opts, spool)
	if err != nil {
		return sum, err
	}
	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := spool.Flush(fctx); err != nil {
		return sum, fmt.Errorf("import not fully acknowledged: %w", err)
	}
	return sum, nil
}
