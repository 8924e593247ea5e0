// Command testserver is a minimal logsift receiver for the agent's
// end-to-end tests: the real store, the real chunk service and, with
// -workspaces, the workspace service on a gRPC listener (package
// receiver), nothing else. With -tokens the calls need a token from that
// file. It prints "listening <addr>" once it serves.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/logsift/logsift/agent/internal/receiver"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/store"
)

func main() {
	dir := flag.String("data", "", "data directory")
	addr := flag.String("listen", "127.0.0.1:0", "gRPC listen address")
	httpAddr := flag.String("http", "", "address serving /lines?tenant=: every stored line, one per line, duplicates included")
	workspaces := flag.Bool("workspaces", false, "serve logsift.v1.WorkspaceService too")
	tokens := flag.String("tokens", "", "tokens file (pkg/auth); calls then need a token")
	ackDelay := flag.Duration("ack-delay", 0, "hold every chunk this long before storing it")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := receiver.Start(receiver.Options{
		Dir: *dir, Addr: *addr, Workspaces: *workspaces, TokensFile: *tokens, AckDelay: *ackDelay, Logger: log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *httpAddr != "" {
		hl, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("http %s\n", hl.Addr())
		go func() { _ = http.Serve(hl, linesHandler(srv.Store)) }()
	}
	fmt.Printf("listening %s\n", srv.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	if err := srv.GracefulStop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// linesHandler lists every stored line of a tenant, duplicates included, so
// a test can check that each line is stored exactly once.
func linesHandler(st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenantID := r.URL.Query().Get("tenant")
		var buf []byte
		var bb chunk.BlockBuffer
		for _, sd := range st.Select(tenantID, nil, 0, 1<<62) {
			for _, ref := range sd.Chunks {
				c, b, err := st.ReadChunk(ref, buf)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				buf = b
				for i := range c.Meta().Blocks {
					ents, err := c.ReadBlock(i, &bb)
					if err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
					for _, e := range ents {
						w.Write(e.Line)
						w.Write([]byte{'\n'})
					}
				}
			}
			for _, e := range sd.Head {
				w.Write(e.Line)
				w.Write([]byte{'\n'})
			}
		}
	})
}
