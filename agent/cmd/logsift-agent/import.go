//go:build unix

package main

import (
	"context"
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

func cmdImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "agent.yaml", "configuration file (output, data_dir, detection rules)")
	workspace := fs.String("workspace", "", "workspace name (required)")
	host := fs.String("host", "", "host label of every stream")
	stateDir := fs.String("state-dir", defaultStateDir(), "where import progress is kept for resuming; empty disables resuming")
	lbls := labelFlags{}
	fs.Var(lbls, "label", "extra stream label name=value (repeatable)")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if *workspace == "" || len(paths) == 0 {
		fmt.Fprintln(stderr, "usage: logsift-agent import PATH... --workspace NAME [--host HOST] [--label k=v]... [--config agent.yaml]")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := agent.Import(ctx, cfg, importer.Options{
		Paths:     paths,
		Workspace: *workspace,
		Host:      *host,
		Labels:    lbls,
		StateDir:  *stateDir,
		Progress:  stderr,
		Overrides: cfg.Detection,
		Logger:    log,
	}, time.Minute, log)
	if sum != nil {
		_ = sum.WriteSummary(stdout)
	}
	if err != nil {
		log.Error("import failed", "err", err)
		return 1
	}
	if sum.Failed > 0 {
		return 1
	}
	return 0
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
