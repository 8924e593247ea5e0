//go:build unix

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/logsift/logsift/agent"
	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/agent/importer"
	"github.com/logsift/logsift/agent/ship"
	"github.com/logsift/logsift/agent/track"
	"github.com/logsift/logsift/pkg/api"
)

// labelFlags collects repeated --label k=v.
type labelFlags map[string]string

func (l labelFlags) String() string { return fmt.Sprint(map[string]string(l)) }

func (l labelFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("--label wants name=value, got %q", v)
	}
	l[k] = val
	return nil
}

// parseInterleaved parses flags that may come before, between or after
// the positional arguments (`import PATH... --workspace NAME`).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// Exit codes of import besides 0 (done), 1 (failed) and 2 (usage).
const (
	// exitCancelled: the server cancelled the run.
	exitCancelled = 3
	// exitInterrupted: Ctrl-C or SIGTERM (128 + SIGINT, as shells report).
	exitInterrupted = 130
)

// tokenEnv is the default of --token, shared with the logsift CLI.
const tokenEnv = "LOGSIFT_TOKEN"

func cmdImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "agent.yaml", "configuration file (output, data_dir, detection rules)")
	workspace := fs.String("workspace", "", "workspace name (required)")
	host := fs.String("host", "", "host label of every stream")
	stateDir := fs.String("state-dir", defaultStateDir(), "where import progress is kept for resuming; empty disables resuming")
	token := fs.String("token", "", "API token sent to the server (default $"+tokenEnv+"; overrides output.token and output.token_file)")
	tokenFile := fs.String("token-file", "", "file holding the API token (overrides $"+tokenEnv+", output.token and output.token_file)")
	lbls := labelFlags{}
	fs.Var(lbls, "label", "extra stream label name=value (repeatable)")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if *workspace == "" || len(paths) == 0 {
		fmt.Fprintln(stderr, "usage: logsift-agent import PATH... --workspace NAME [--host HOST] [--label k=v]... [--token-file FILE] [--config agent.yaml]")
		return 2
	}
	if *token != "" && *tokenFile != "" {
		fmt.Fprintln(stderr, "logsift-agent import: --token and --token-file are mutually exclusive")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	if err := applyTokenFlags(&cfg.Output, *token, *tokenFile, os.Getenv(tokenEnv)); err != nil {
		fmt.Fprintf(stderr, "logsift-agent import: %v\n", err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the import records its end (a few
		// seconds at most); a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	res, err := agent.ImportRun(ctx, cfg, agent.ImportOptions{
		Options: importer.Options{
			Paths:     paths,
			Workspace: *workspace,
			Host:      *host,
			Labels:    lbls,
			StateDir:  *stateDir,
			Progress:  stderr,
			Overrides: cfg.Detection,
			Logger:    log,
		},
		FlushTimeout: time.Minute,
	}, log)
	if res.Summary != nil {
		_ = res.Summary.WriteSummary(stdout)
	}
	if res.RunID != "" && res.RunStatus != api.RunStatus_RUN_STATUS_UNSPECIFIED {
		fmt.Fprintf(stdout, "import run %s of workspace %s: %s\n", res.RunID, *workspace, runStatusName(res.RunStatus))
	}
	switch {
	case errors.Is(err, agent.ErrCancelledByServer):
		var ce *track.CancelledError
		reason := ""
		if errors.As(err, &ce) {
			reason = " (" + ce.Reason + ")"
		}
		fmt.Fprintf(stderr, "import cancelled by the server%s; %d chunks not yet sent were discarded, what the server stored stays\n", reason, res.Dropped)
		return exitCancelled
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "import interrupted; run the same command again to resume it")
		return exitInterrupted
	case err != nil:
		var re *ship.RefusedError
		if errors.As(err, &re) {
			fmt.Fprintf(stderr, "logsift-agent import: %v\n", re)
			return 1
		}
		log.Error("import failed", "err", err)
		return 1
	}
	if res.Summary.Failed > 0 {
		return 1
	}
	return 0
}

// applyTokenFlags puts the token given on the command line or in the
// environment into the output configuration: --token, then --token-file,
// then $LOGSIFT_TOKEN, each replacing what the configuration file says.
func applyTokenFlags(o *config.Output, token, tokenFile, env string) error {
	switch {
	case token != "":
		if err := config.CheckToken(token); err != nil {
			return fmt.Errorf("--token: %w", err)
		}
		o.Token, o.TokenFile = token, ""
	case tokenFile != "":
		if _, err := config.ReadTokenFile(tokenFile); err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		o.Token, o.TokenFile = "", tokenFile
	case strings.TrimSpace(env) != "":
		env = strings.TrimSpace(env)
		if err := config.CheckToken(env); err != nil {
			return fmt.Errorf("$%s: %w", tokenEnv, err)
		}
		o.Token, o.TokenFile = env, ""
	}
	return nil
}

func runStatusName(s api.RunStatus) string {
	switch s {
	case api.RunStatus_RUN_STATUS_COMPLETED:
		return "completed"
	case api.RunStatus_RUN_STATUS_FAILED:
		return "failed"
	case api.RunStatus_RUN_STATUS_CANCELLED:
		return "cancelled"
	case api.RunStatus_RUN_STATUS_RUNNING:
		return "running"
	}
	return s.String()
}

func defaultStateDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "state", "logsift", "imports")
}

func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file whose detection rules apply (optional)")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "usage: logsift-agent explain PATH... [--config agent.yaml]")
		return 2
	}
	var cfg config.Config
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath)
		if err != nil {
			printConfigError(stderr, err)
			return 1
		}
		cfg = *c
	}
	if err := importer.Explain(stdout, paths, cfg.Detection); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
