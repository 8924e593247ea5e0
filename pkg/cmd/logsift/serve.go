package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/logsift/logsift/pkg/server"
)

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configFile := fs.String("config.file", "", "YAML configuration file (optional; every setting has a default)")
	dataDir := fs.String("data-dir", "", "data directory (overrides data_dir)")
	listen := fs.String("http-listen-address", "", "HTTP listen address (overrides http_listen_address; default :3100)")
	grpcListen := fs.String("grpc-listen-address", "", "gRPC listen address for agents (overrides grpc_listen_address; default :9095)")
	target := fs.String("target", "", "modules to run (overrides target; default all)")
	logLevel := fs.String("log.level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	cfg, err := server.LoadConfig(*configFile)
	if err != nil {
		return err
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *listen != "" {
		cfg.HTTPListenAddress = *listen
	}
	if *grpcListen != "" {
		cfg.GRPCListenAddress = *grpcListen
	}
	if *target != "" {
		cfg.Target = *target
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	// Tests and scripts that start the server on port 0 read the bound
	// address from this file.
	if f := os.Getenv("LOGSIFT_ADDR_FILE"); f != "" {
		if err := os.WriteFile(f, []byte(srv.Addr()), 0o644); err != nil {
			return err
		}
	}
	if f := os.Getenv("LOGSIFT_GRPC_ADDR_FILE"); f != "" {
		if err := os.WriteFile(f, []byte(srv.GRPCAddr()), 0o644); err != nil {
			return err
		}
	}
	// SIGHUP reloads certificates and tokens instead of ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				if err := srv.Reload(); err != nil {
					log.Error("reload on SIGHUP", "err", err)
				} else {
					log.Info("reloaded TLS certificates and tokens on SIGHUP")
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return srv.Serve(ctx)
}
