// Command logsift is the logsift server and its command-line tools:
//
//	logsift serve [-config.file F] [flags]   run the server
//	logsift demo  [flags]                    run the server on a fresh data
//	                                         directory with sample logs loaded
//	logsift workspace ls|create|show|...     manage workspaces on a server
//	logsift token create|ls|revoke           manage API tokens
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `logsift: a log platform for people who live in Grafana

Usage:
  logsift serve [flags]   run the server (Loki-compatible API on :3100)
  logsift demo  [flags]   run the server with sample logs, on a fresh data directory
  logsift workspace ...   list, create, show, rename, delete workspaces; cancel imports
  logsift token ...       create, list and revoke API tokens
  logsift help            this text

Run "logsift <command> -h" for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = runServe(ctx, os.Args[2:])
	case "demo":
		err = runDemo(ctx, os.Args[2:])
	case "workspace", "workspaces", "ws":
		err = runWorkspace(ctx, os.Args[2:])
	case "token", "tokens":
		err = runToken(ctx, os.Args[2:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "logsift: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "logsift %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid -log.level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
