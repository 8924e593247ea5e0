// Package track reports a workspace import to the server's workspace
// service (logsift.v1.WorkspaceService, pkg/api/workspace.proto): it
// registers the run, reports absolute progress about once a second, learns
// from the answers when someone cancelled the run on the server, and
// records how the run ended. The protocol is described in
// docs/workspaces.md ("Import runs"); the agent's side in docs/agent.md.
package track

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/agent/ship"
	"github.com/logsift/logsift/pkg/api"
)

// Options configure a tracked run.
type Options struct {
	// Conn reaches the server (ship.DialGRPC: same address, TLS and token
	// as the chunk stream).
	Conn grpc.ClientConnInterface
	// Tenant is sent as x-scope-orgid; empty sends none.
	Tenant string
	// HasToken says whether Conn sends a token, for the wording of a
	// refusal.
	HasToken bool
	// Workspace, Host and Source describe the run: the workspace name, the
	// machine the agent runs on, and what it imports.
	Workspace, Host, Source string
	// Counters returns the import's absolute counters; Errors returns the
	// import's errors from index from on. Both are called from the
	// reporting goroutine.
	Counters func() Counters
	Errors   func(from int) []string
	// Interval paces progress reports; default 1 s.
	Interval time.Duration
	// CallTimeout bounds one call; default 10 s.
	CallTimeout time.Duration
	// Backoff paces retries of StartRun and FinishRun while the server is
	// unreachable.
	Backoff ship.Backoff
	Logger  *slog.Logger
}

// Counters are a run's absolute counters, as RunCounters on the wire.
type Counters struct {
	Files, FilesDone int64
	Bytes, BytesDone int64
	Lines, Chunks    int64
}

func (c Counters) proto() *api.RunCounters {
	return &api.RunCounters{Files: c.Files, FilesDone: c.FilesDone, Bytes: c.Bytes, BytesDone: c.BytesDone, Lines: c.Lines, Chunks: c.Chunks}
}

// Status is how a run ends.
type Status int

// The ends of a run.
const (
	Completed Status = iota
	Failed
	Cancelled
)

func (s Status) proto() api.RunStatus {
	switch s {
	case Completed:
		return api.RunStatus_RUN_STATUS_COMPLETED
	case Cancelled:
		return api.RunStatus_RUN_STATUS_CANCELLED
	}
	return api.RunStatus_RUN_STATUS_FAILED
}

// Limits of what one call carries: the server keeps the first 100 errors
// of a run, each cut at 1 KiB, and counts all; the agent sends at most
// maxErrorsPerCall per call (well inside gRPC's 4 MiB message limit) and
// the rest with the next one.
const (
	maxErrorsPerCall = 500
	maxErrorBytes    = 1024
)

// Run is a run registered on the server.
type Run struct {
	opts Options
	id   string
	log  *slog.Logger
	sent int // errors the server has taken
}

// ID is the run's ID on the server.
func (r *Run) ID() string { return r.id }

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Counters == nil {
		o.Counters = func() Counters { return Counters{} }
	}
	if o.Errors == nil {
		o.Errors = func(int) []string { return nil }
	}
}

// Start registers the run with the planned totals (0 when unknown). While
// the server cannot be reached it retries with backoff until ctx ends:
// the import could not finish without the server anyway. It returns
// (nil, nil) when the server cannot track the run — it has no workspace
// service (Unimplemented), the token may not use it (PermissionDenied), or
// it failed in a way retrying will not mend — after logging why: the
// import then goes on untracked. A refused token (Unauthenticated) is a
// *ship.RefusedError; a request the server rejects (an invalid workspace
// name, a workspace being deleted) is an error quoting the server.
func Start(ctx context.Context, opts Options, files, bytes int64) (*Run, error) {
	opts.defaults()
	log := opts.Logger
	c := api.NewWorkspaceServiceClient(opts.Conn)
	req := &api.StartRunRequest{Workspace: opts.Workspace, Host: opts.Host, Source: opts.Source, Files: files, Bytes: bytes}
	for attempt := 0; ; attempt++ {
		cctx, cancel := callContext(ctx, opts)
		run, err := c.StartRun(cctx, req)
		cancel()
		if err == nil {
			log.Info("import run registered", "run", run.GetId(), "workspace", run.GetWorkspace())
			return &Run{opts: opts, id: run.GetId(), log: log}, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if re := ship.RefusedFromGRPC(err, opts.HasToken); re != nil {
			if re.Forbidden {
				log.Warn("the server does not let this token track import runs; importing without run tracking: the run is not listed in the workspace and cannot be cancelled from the server",
					"err", re.Error())
				return nil, nil
			}
			return nil, re
		}
		switch code := status.Code(err); code {
		case codes.Unimplemented:
			log.Warn("the server has no workspace service (an older logsift?); importing without run tracking: the run is not listed in the workspace and cannot be cancelled from the server")
			return nil, nil
		case codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition, codes.NotFound:
			return nil, fmt.Errorf("the server refused to start an import run in workspace %q: %s", opts.Workspace, status.Convert(err).Message())
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			wait := opts.Backoff.Delay(attempt)
			log.Warn("cannot register the import run with the server; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
			if !sleep(ctx, wait) {
				return nil, context.Cause(ctx)
			}
		default:
			log.Warn("registering the import run failed; importing without run tracking", "err", err)
			return nil, nil
		}
	}
}

func callContext(ctx context.Context, opts Options) (context.Context, context.CancelFunc) {
	if opts.Tenant != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", opts.Tenant)
	}
	return context.WithTimeout(ctx, opts.CallTimeout)
}

// CancelledError says that the server ended the run: someone cancelled it,
// or its workspace was deleted.
type CancelledError struct {
	RunID  string
	Reason string
}

func (e *CancelledError) Error() string {
	return fmt.Sprintf("import run %s: %s", e.RunID, e.Reason)
}

// Watch reports progress every Interval until ctx ends, and returns a
// *CancelledError as soon as an answer says the run was cancelled (or is
// gone: its workspace was deleted). Failed reports are logged and
// retried at the next tick; they never stop the import.
func (r *Run) Watch(ctx context.Context) error {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		run, err := r.report(ctx, r.opts.Counters())
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			if failing {
				r.log.Info("progress reports reach the server again", "run", r.id)
				failing = false
			}
			if run.GetStatus() == api.RunStatus_RUN_STATUS_CANCELLED {
				return &CancelledError{RunID: r.id, Reason: "cancelled on the server"}
			}
			continue
		}
		if ce := goneError(r.id, err); ce != nil {
			return ce
		}
		if status.Code(err) == codes.Unimplemented {
			r.log.Warn("the server stopped taking progress reports (Unimplemented); the import goes on without them", "run", r.id)
			return nil
		}
		if !failing {
			msg := err.Error()
			if re := ship.RefusedFromGRPC(err, r.opts.HasToken); re != nil {
				msg = re.Error()
			}
			r.log.Warn("progress report failed; the import goes on and reports again", "run", r.id, "err", msg)
			failing = true
		}
	}
}

// goneError maps the answers that mean the run is over on the server to
// a CancelledError: NotFound (the run's workspace was deleted) and
// FailedPrecondition (someone finished the run).
func goneError(id string, err error) *CancelledError {
	switch status.Code(err) {
	case codes.NotFound:
		return &CancelledError{RunID: id, Reason: "the run is gone from the server (its workspace was deleted)"}
	case codes.FailedPrecondition:
		return &CancelledError{RunID: id, Reason: "the run was ended on the server: " + status.Convert(err).Message()}
	}
	return nil
}

// report sends the counters and the errors not yet taken (at most
// maxErrorsPerCall of them).
func (r *Run) report(ctx context.Context, c Counters) (*api.ImportRun, error) {
	errs := r.pending()
	cctx, cancel := callContext(ctx, r.opts)
	defer cancel()
	run, err := api.NewWorkspaceServiceClient(r.opts.Conn).ReportProgress(cctx, &api.ReportProgressRequest{
		RunId: r.id, Counters: c.proto(), Errors: errs,
	})
	if err == nil {
		r.sent += len(errs)
	}
	return run, err
}

// pending returns up to maxErrorsPerCall errors the server has not taken,
// each cut to what the server keeps.
func (r *Run) pending() []string {
	errs := r.opts.Errors(r.sent)
	if len(errs) > maxErrorsPerCall {
		errs = errs[:maxErrorsPerCall]
	}
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = cut(e, maxErrorBytes)
	}
	return out
}

// Finish records the end of the run with the final counters, the errors
// not yet sent and extra (why a run failed or was cancelled). It retries
// while the server is unreachable, until ctx ends. It returns the status
// the server recorded, which stays cancelled for a run cancelled on the
// server whatever the agent reports.
func (r *Run) Finish(ctx context.Context, st Status, c Counters, extra ...string) (api.RunStatus, error) {
	c2 := api.NewWorkspaceServiceClient(r.opts.Conn)
	// Errors beyond one call's share go ahead as progress reports.
	for len(r.opts.Errors(r.sent)) > maxErrorsPerCall {
		if _, err := r.report(ctx, c); err != nil {
			break
		}
	}
	errs := r.pending()
	for _, e := range extra {
		errs = append(errs, cut(e, maxErrorBytes))
	}
	req := &api.FinishRunRequest{RunId: r.id, Status: st.proto(), Counters: c.proto(), Errors: errs}
	for attempt := 0; ; attempt++ {
		cctx, cancel := callContext(ctx, r.opts)
		run, err := c2.FinishRun(cctx, req)
		cancel()
		if err == nil {
			r.sent += len(errs) - len(extra)
			return run.GetStatus(), nil
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			if ctx.Err() != nil {
				return 0, fmt.Errorf("record the end of import run %s: %w", r.id, err)
			}
			wait := r.opts.Backoff.Delay(attempt)
			r.log.Warn("cannot record the end of the import run; retrying", "run", r.id, "err", err, "retry_in", wait.Round(time.Millisecond))
			if !sleep(ctx, wait) {
				return 0, fmt.Errorf("record the end of import run %s: %w", r.id, err)
			}
			continue
		}
		if re := ship.RefusedFromGRPC(err, r.opts.HasToken); re != nil {
			return 0, fmt.Errorf("record the end of import run %s: %w", r.id, re)
		}
		return 0, fmt.Errorf("record the end of import run %s: %s", r.id, status.Convert(err).Message())
	}
}

// cut shortens s to at most n bytes on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// IsCancelled reports whether err is (or wraps) a CancelledError.
func IsCancelled(err error) bool {
	var ce *CancelledError
	return errors.As(err, &ce)
}
