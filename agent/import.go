//go:build unix

package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/importer"
	"github.com/logsift/logsift/agent/ship"
	"github.com/logsift/logsift/agent/track"
	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/chunk"
)

// Import runs a workspace import with the configured output and returns
// once every chunk is acknowledged (or flushTimeout passes). It uses a
// spool of its own under data_dir, so it can run next to a tailing agent;
// the spool's lock keeps two imports on one data_dir apart. With the
// logsift output the run is tracked on the server (see ImportRun).
func Import(ctx context.Context, cfg *config.Config, opts importer.Options, flushTimeout time.Duration, log *slog.Logger) (*importer.Summary, error) {
	res, err := ImportRun(ctx, cfg, ImportOptions{Options: opts, FlushTimeout: flushTimeout}, log)
	return res.Summary, err
}

// ImportOptions configure ImportRun.
type ImportOptions struct {
	importer.Options
	// FlushTimeout bounds the wait for the last acknowledgements, and
	// after a cancellation the wait for the answers to chunks in flight;
	// default 1 min.
	FlushTimeout time.Duration
	// ReportInterval paces progress reports to the server; default 1 s.
	ReportInterval time.Duration
	// RunHost names the machine in the run; default os.Hostname.
	RunHost string
}

// ImportResult tells what ImportRun did. It is never nil.
type ImportResult struct {
	// Summary is nil when the import did not start.
	Summary *importer.Summary
	// RunID is the run on the server; "" when the run was not tracked.
	RunID string
	// RunStatus is the status the server recorded at the end; 0 when the
	// run was not tracked or its end could not be recorded.
	RunStatus api.RunStatus
	// Dropped counts chunks built but not sent because the run was
	// cancelled.
	Dropped int
}

// ErrCancelledByServer is wrapped by ImportRun's error when the server
// cancelled the run (a *track.CancelledError says why).
var ErrCancelledByServer = errors.New("import cancelled by the server")

// finishTimeout bounds recording the end of the run: the import is over,
// and a server that does not answer must not keep the agent waiting long.
const finishTimeout = 15 * time.Second

// ImportRun imports like Import and tracks the run on the server's
// workspace service when the output is logsift's: StartRun with the
// planned totals before anything is read, ReportProgress about once a
// second with absolute counters, FinishRun at the end. When an answer
// says the run was cancelled on the server, reading stops, chunks not
// yet sent are discarded (the spool does not resend them later), the
// answers to chunks in flight are awaited, and the error wraps
// ErrCancelledByServer. When ctx ends (Ctrl-C) the run is recorded as
// cancelled and the spool keeps what was not acknowledged, so that
// running the same import again resumes it. A server without the
// workspace service imports untracked. A refused token stops the import
// with a *ship.RefusedError.
func ImportRun(ctx context.Context, cfg *config.Config, opts ImportOptions, log *slog.Logger) (*ImportResult, error) {
	res := &ImportResult{}
	if log == nil {
		log = slog.Default()
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = time.Minute
	}
	if opts.Overrides.Rules == nil {
		opts.Overrides = cfg.Detection
	}
	// Level and service name discovery follow the configuration: the
	// same settings as tailing.
	opts.NoLevels = opts.NoLevels || !cfg.DiscoverLogLevels
	if opts.ServiceNameLabels == nil {
		opts.ServiceNameLabels = cfg.DiscoverServiceName
	}
	opts.NoServiceName = opts.NoServiceName || len(opts.ServiceNameLabels) == 0
	if opts.Chunk == (chunk.Options{}) {
		opts.Chunk = cfg.Chunks.ChunkOptions()
	}
	if opts.Logger == nil {
		opts.Logger = log
	}
	token, err := cfg.Output.ResolveToken()
	if err != nil {
		return res, err
	}
	// The import's context ends with a cause: a refused token, a
	// cancellation from the server, or ctx's own end.
	ictx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out, err := newOutput(cfg, log, func(err error) { cancel(err) })
	if err != nil {
		return res, fmt.Errorf("create the output: %w", err)
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
		return res, fmt.Errorf("open the import spool: %w", err)
	}
	spool.Start(out)
	defer spool.Close()

	imp, err := importer.Prepare(opts.Options, spool)
	if err != nil {
		return res, err
	}
	run, closeRun, err := startRun(ictx, cfg, token, opts, imp, log)
	if err != nil {
		if cause := context.Cause(ictx); cause != nil && ctx.Err() == nil {
			err = cause // the chunk stream's refusal says it best
		}
		return res, err
	}
	defer closeRun()

	var watchDone chan struct{}
	stopWatch := func() {}
	if run != nil {
		res.RunID = run.ID()
		imp.Note("import run %s in workspace %s; to cancel it from the server: logsift workspace cancel %s %s", run.ID(), opts.Workspace, opts.Workspace, run.ID())
		wctx, wcancel := context.WithCancel(ictx)
		watchDone = make(chan struct{})
		go func() {
			defer close(watchDone)
			if err := run.Watch(wctx); err != nil {
				cancel(err)
			}
		}()
		stopWatch = func() { wcancel(); <-watchDone }
	}

	sum, err := imp.Run(ictx)
	res.Summary = sum
	if err == nil {
		fctx, fcancel := context.WithTimeout(ictx, opts.FlushTimeout)
		if ferr := spool.Flush(fctx); ferr != nil {
			err = fmt.Errorf("import not fully acknowledged: %w", ferr)
		}
		fcancel()
	}
	stopWatch()

	status, extra := track.Completed, []string(nil)
	cause := context.Cause(ictx)
	var ce *track.CancelledError
	switch {
	case errors.As(cause, &ce):
		status = track.Cancelled
		dctx, dcancel := context.WithTimeout(context.Background(), opts.FlushTimeout)
		n, derr := spool.Drop(dctx)
		dcancel()
		res.Dropped = n
		if derr != nil {
			log.Warn("chunks in flight were not answered after the cancellation; they stay in the import spool", "err", derr)
		}
		err = fmt.Errorf("%w: %w", ErrCancelledByServer, ce)
	case ctx.Err() != nil:
		status = track.Cancelled
		extra = []string{"interrupted on the agent (" + context.Cause(ctx).Error() + "); running the same import again resumes it"}
		err = context.Cause(ctx)
	case cause != nil:
		status = track.Failed
		err = cause
		extra = []string{err.Error()}
	case err != nil:
		status = track.Failed
		extra = []string{err.Error()}
	case sum != nil && sum.Failed > 0:
		// What could be read is stored, but files failed partway (a
		// truncated or corrupt archive): the run failed, as the exit
		// status says, and the server's import.failed event lists them.
		status = track.Failed
		for _, p := range sum.Problems {
			if p.Failed {
				extra = append(extra, p.File+": "+p.Reason)
			}
		}
	}
	if run != nil {
		counters := countersOf(imp.Progress())
		fctx, fcancel := context.WithTimeout(context.Background(), finishTimeout)
		st, ferr := run.Finish(fctx, status, counters, extra...)
		fcancel()
		if ferr != nil {
			log.Warn("the end of the import run could not be recorded on the server", "run", run.ID(), "err", ferr)
		} else {
			res.RunStatus = st
		}
	}
	return res, err
}

// startRun registers the run when the output is logsift's; it returns a
// nil run when the import goes on untracked, and a function that closes
// the connection it dialed.
func startRun(ctx context.Context, cfg *config.Config, token string, opts ImportOptions, imp *importer.Import, log *slog.Logger) (*track.Run, func(), error) {
	nop := func() {}
	if cfg.Output.Type != "logsift" {
		log.Info("run tracking needs the logsift output; importing through the Loki output without it", "output", cfg.Output.Type)
		return nil, nop, nil
	}
	gopts, err := grpcOptions(cfg, token, log)
	if err != nil {
		return nil, nop, err
	}
	conn, err := ship.DialGRPC(gopts)
	if err != nil {
		return nil, nop, fmt.Errorf("connect to %s: %w", cfg.Output.URL, err)
	}
	host := opts.RunHost
	if host == "" {
		host, _ = os.Hostname()
	}
	files, bytes := imp.Planned()
	run, err := track.Start(ctx, track.Options{
		Conn:      conn,
		Tenant:    cfg.Output.Tenant,
		HasToken:  token != "",
		Workspace: opts.Workspace,
		Host:      host,
		Source:    runSource(opts.Paths),
		Counters:  func() track.Counters { return countersOf(imp.Progress()) },
		Errors: func(from int) []string {
			ps := imp.Problems(from)
			out := make([]string, len(ps))
			for i, p := range ps {
				tag := "skipped "
				if p.Failed {
					tag = "failed "
				}
				out[i] = tag + p.String()
			}
			return out
		},
		Interval: opts.ReportInterval,
		Backoff:  gopts.Backoff,
		Logger:   log,
	}, int64(files), bytes)
	if err != nil || run == nil {
		conn.Close()
		return nil, nop, err
	}
	return run, func() { conn.Close() }, nil
}

func countersOf(p importer.Progress) track.Counters {
	return track.Counters{Files: p.Files, FilesDone: p.FilesDone, Bytes: p.Bytes, BytesDone: p.BytesDone, Lines: p.Lines, Chunks: p.Chunks}
}

// runSource names what the run imports: the absolute paths, comma
// separated, within the server's 4096-byte limit.
func runSource(paths []string) string {
	abs := make([]string, len(paths))
	for i, p := range paths {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		abs[i] = p
	}
	s := strings.Join(abs, ", ")
	if len(s) > 4000 {
		s = s[:4000] + fmt.Sprintf("… (%d paths)", len(paths))
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
