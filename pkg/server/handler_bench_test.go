package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHandlerChain is the cost of the wrappers every request passes
// (tracing or query ID, request metrics, the auth guard) on a route whose
// own work is nearly nothing, beside the bare route.
func BenchmarkHandlerChain(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	full := srv.Handler()
	b.Run("full", func(b *testing.B) {
		req := httptest.NewRequest("GET", "/loki/api/v1/status/buildinfo", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			full.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatal(w.Code)
			}
		}
	})
}
