package tracing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

// recordSpans installs an in-memory tracer provider for one test.
func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		tp.Shutdown(context.Background())
	})
	return rec
}

// A traced query shows its stages as children of the request's span, and
// its log lines carry the trace and query IDs.
func TestHTTPSpansStagesAndLogs(t *testing.T) {
	rec := recordSpans(t)
	var logs bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&logs, nil))).With("component", "query")
	h := HTTPMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, parse := Start(r.Context(), "query.parse")
		End(parse, nil)
		ctx, scan := Start(r.Context(), "query.scan")
		log.InfoContext(ctx, "scanned", "chunks", 3)
		End(scan, errors.New("chunk 42 is corrupt"))
		w.Write([]byte("ok"))
	}), func(p string) string { return "/loki/api/v1/query_range" })

	req := httptest.NewRequest("GET", "/loki/api/v1/query_range?query=x", nil)
	const parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req.Header.Set("traceparent", "00-"+parentTrace+"-00f067aa0ba902b7-01")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	qid := w.Header().Get(QueryIDHeader)
	if len(qid) != 16 {
		t.Fatalf("query ID header %q", qid)
	}

	spans := rec.Ended()
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	root, parse, scan := byName["GET /loki/api/v1/query_range"], byName["query.parse"], byName["query.scan"]
	if root == nil || parse == nil || scan == nil {
		t.Fatalf("spans: %v", names(spans))
	}
	if root.SpanContext().TraceID().String() != parentTrace {
		t.Fatal("the caller's trace was not continued")
	}
	if parse.Parent().SpanID() != root.SpanContext().SpanID() || scan.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Fatal("stage spans are not children of the request span")
	}
	if scan.Status().Code != codes.Error || parse.Status().Code == codes.Error {
		t.Fatalf("statuses: scan %v parse %v", scan.Status(), parse.Status())
	}
	found := false
	for _, a := range root.Attributes() {
		if a.Key == "logsift.query_id" && a.Value.AsString() == qid {
			found = true
		}
	}
	if !found {
		t.Fatal("request span lacks the query ID")
	}
	line := logs.String()
	for _, want := range []string{"component=query", "trace_id=" + parentTrace, "query_id=" + qid, "chunks=3"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func TestHTTPMiddlewareSkipsHealthAndMetrics(t *testing.T) {
	rec := recordSpans(t)
	h := HTTPMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	for _, p := range []string{"/metrics", "/ready"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans for /metrics and /ready", n)
	}
}

func TestLogHandlerWithoutContext(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&logs, nil)))
	log.Info("plain")
	log.InfoContext(WithQueryID(context.Background(), "abc"), "with id")
	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], "query_id") || strings.Contains(lines[0], "trace_id") {
		t.Fatalf("plain line got IDs: %q", out)
	}
	if !strings.Contains(lines[1], "query_id=abc") || strings.Contains(lines[1], "trace_id") {
		t.Fatalf("line with a query ID only: %q", lines[1])
	}
	if LogHandler(LogHandler(slog.DiscardHandler)) == nil {
		t.Fatal("nil handler")
	}
	if _, ok := LogHandler(LogHandler(slog.DiscardHandler)).(*logHandler).next.(*logHandler); ok {
		t.Fatal("wrapping twice adds the IDs twice")
	}
}

func TestEndCanceledIsNotAnError(t *testing.T) {
	rec := recordSpans(t)
	_, s := Start(context.Background(), "query.select")
	End(s, context.Canceled)
	if got := rec.Ended()[0].Status().Code; got == codes.Error {
		t.Fatal("a canceled stage was marked failed")
	}
}

func TestSetupOffAndErrors(t *testing.T) {
	shutdown, err := Setup(context.Background(), Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if TraceID(context.Background()) != "" {
		t.Fatal("trace ID without a span")
	}
	if _, err := Setup(context.Background(), Config{OTLPEndpoint: "localhost:4317", Protocol: "thrift"}, nil); err == nil {
		t.Fatal("unknown protocol accepted")
	}
}

// Spans reach an OTLP/HTTP receiver; a stand-in collector counts them.
func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	var ctype, key string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" {
			got = append(got, b)
			ctype = r.Header.Get("Content-Type")
			key = r.Header.Get("X-Api-Key")
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	var logs bytes.Buffer
	shutdown, err := Setup(context.Background(), Config{OTLPEndpoint: collector.URL, Protocol: "http/protobuf", ServiceName: "logsift-test",
		Headers: map[string]string{"X-Api-Key": "k1"}}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, span := Start(context.Background(), "ingest.wal_append")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatalf("no export reached the collector; log: %s", logs.String())
	}
	if ctype != "application/x-protobuf" || key != "k1" {
		t.Fatalf("content type %q, api key %q", ctype, key)
	}
	if !bytes.Contains(got[0], []byte("ingest.wal_append")) || !bytes.Contains(got[0], []byte("logsift-test")) {
		t.Fatal("export lacks the span name or the service name")
	}
	if !strings.Contains(logs.String(), "tracing on") {
		t.Fatalf("tracing start not logged: %s", logs.String())
	}
}

func TestSetupGRPCExporter(t *testing.T) {
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	// The gRPC exporter connects lazily; Setup must not block on a
	// collector that is down.
	shutdown, err := Setup(context.Background(), Config{OTLPEndpoint: "127.0.0.1:1", Insecure: true, SampleRatio: 0.5}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = shutdown(ctx) // nothing to flush; an error about the dead collector is fine
	if len(GRPCServerOptions()) == 0 {
		t.Fatal("no gRPC server options")
	}
}
