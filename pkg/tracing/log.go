package tracing

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
)

// QueryIDHeader is the response header that carries a request's query ID,
// so that a user can quote it and an operator find its log lines.
const QueryIDHeader = "X-Logsift-Query-Id"

type queryIDKey struct{}

// WithQueryID returns a context carrying a query ID.
func WithQueryID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, queryIDKey{}, id)
}

// QueryIDFromContext returns the query ID set by WithQueryID.
func QueryIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(queryIDKey{}).(string)
	return id, ok && id != ""
}

// NewQueryID returns a random 16-hex-digit ID. It names a request in logs
// and traces and guards nothing, so math/rand's per-thread generator does
// (crypto/rand would cost a system call per request).
func NewQueryID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// LogHandler wraps h so that every record logged with a context (the
// *Context methods of slog.Logger, or Logger.Log) gets trace_id and
// query_id attributes when the context has them:
//
//	log := slog.New(tracing.LogHandler(slog.NewTextHandler(os.Stderr, nil)))
//	log.InfoContext(r.Context(), "query done", "took", d)
//	// ... msg="query done" took=12ms trace_id=4bf92f35... query_id=9c1d...
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(*logHandler); ok {
		return h
	}
	return &logHandler{next: h}
}

type logHandler struct {
	next slog.Handler
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
		}
		if id, ok := QueryIDFromContext(ctx); ok {
			r.AddAttrs(slog.String("query_id", id))
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{next: h.next.WithAttrs(attrs)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{next: h.next.WithGroup(name)}
}
