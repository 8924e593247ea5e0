// Package tracing sets up OpenTelemetry tracing (an OTLP exporter, off by
// default), gives the rest of logsift one-line span helpers for the ingest
// and query paths, and puts the trace ID and query ID on every log line.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
)

// Config is the `tracing:` block of the server configuration. Tracing is
// off while OTLPEndpoint is empty.
type Config struct {
	// OTLPEndpoint is the collector (an OpenTelemetry Collector, Tempo,
	// Jaeger): "host:port", or a URL such as http://tempo:4318 whose
	// scheme decides TLS (over HTTP, a URL without a path posts to
	// /v1/traces).
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Protocol is "grpc" (default, port 4317) or "http/protobuf" (4318).
	Protocol string `yaml:"protocol"`
	// Insecure sends without TLS to a "host:port" endpoint.
	Insecure bool `yaml:"insecure"`
	// Headers are sent with every export (an API key, a tenant header).
	Headers map[string]string `yaml:"headers"`
	// SampleRatio is the share of traces started here that are kept, in
	// (0, 1]; default 1. Traces whose caller decided are kept as it did.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName names this process in traces; default "logsift".
	ServiceName string `yaml:"service_name"`
}

// Enabled reports whether spans are exported.
func (c *Config) Enabled() bool { return strings.TrimSpace(c.OTLPEndpoint) != "" }

// instrumentation is the name of logsift's tracer.
const instrumentation = "github.com/logsift/logsift"

// Setup installs the global tracer provider and W3C trace-context
// propagation. With tracing off it installs only the propagator, so that
// a caller's trace ID still reaches the logs; shutdown then does nothing.
// Call shutdown when the server stops: it flushes buffered spans.
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	if log == nil {
		log = slog.Default()
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !cfg.Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ratio := cfg.SampleRatio
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	name := cfg.ServiceName
	if name == "" {
		name = "logsift"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	// Export errors (collector down) go to our log, a few at most per
	// minute, instead of the SDK's own logger on stderr.
	errLog := rate.NewLimiter(rate.Every(20*time.Second), 3)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		if errLog.Allow() {
			log.Warn("tracing export failed", "err", err)
		}
	}))
	log.Info("tracing on: exporting spans over OTLP", "endpoint", cfg.OTLPEndpoint, "protocol", protocol(cfg), "sample_ratio", ratio)
	return tp.Shutdown, nil
}

func protocol(cfg Config) string {
	switch strings.ToLower(cfg.Protocol) {
	case "", "grpc":
		return "grpc"
	case "http", "http/protobuf":
		return "http/protobuf"
	}
	return cfg.Protocol
}

func newExporter(ctx context.Context, cfg Config) (*otlptrace.Exporter, error) {
	ep := strings.TrimSpace(cfg.OTLPEndpoint)
	isURL := strings.Contains(ep, "://")
	switch protocol(cfg) {
	case "grpc":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithHeaders(cfg.Headers)}
		if isURL {
			opts = append(opts, otlptracegrpc.WithEndpointURL(ep))
		} else {
			opts = append(opts, otlptracegrpc.WithEndpoint(ep))
		}
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP gRPC exporter for %s: %w", ep, err)
		}
		return exp, nil
	case "http/protobuf":
		opts := []otlptracehttp.Option{otlptracehttp.WithHeaders(cfg.Headers)}
		if isURL {
			opts = append(opts, otlptracehttp.WithEndpointURL(withTracesPath(ep)))
		} else {
			opts = append(opts, otlptracehttp.WithEndpoint(ep))
		}
		if cfg.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP HTTP exporter for %s: %w", ep, err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("tracing.protocol %q: use grpc or http/protobuf", cfg.Protocol)
}

// withTracesPath gives a URL without a path OTLP's traces path, as the
// OTEL_EXPORTER_OTLP_ENDPOINT convention does: "http://tempo:4318" means
// http://tempo:4318/v1/traces.
func withTracesPath(ep string) string {
	u, err := url.Parse(ep)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return ep
	}
	u.Path = "/v1/traces"
	return u.String()
}

// Start starts a child span of the span in ctx, for a stage of the ingest
// or query path:
//
//	ctx, span := tracing.Start(ctx, "query.scan")
//	defer span.End()
//
// With tracing off it costs a context lookup and returns a no-op span.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return otel.Tracer(instrumentation).Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span, marking it failed with err when err is not nil (a
// canceled context is not a failure of the span's stage).
func End(span trace.Span, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceID returns the trace ID of the span in ctx, or "".
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// HTTPMiddleware traces every request but /metrics and /ready (a span
// named "<method> <route>", continuing the caller's trace when it sent a
// traceparent header) and gives it a query ID (WithQueryID), which the
// answer carries in the QueryIDHeader header. routeName keeps span names
// bounded; nil uses the path.
func HTTPMiddleware(next http.Handler, routeName func(path string) string) http.Handler {
	if routeName == nil {
		routeName = func(p string) string { return p }
	}
	withID := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := NewQueryID()
		w.Header().Set(QueryIDHeader, id)
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("logsift.query_id", id))
		next.ServeHTTP(w, r.WithContext(WithQueryID(r.Context(), id)))
	})
	// Without a tracer provider the HTTP instrumentation would only cost
	// time (a third of a cached dashboard query's): the query ID is all
	// that is left to do. A caller's traceparent still reaches the logs
	// through the propagator in the gRPC and client paths.
	if !Instrumented() {
		return withID
	}
	return otelhttp.NewHandler(withID, "http",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + routeName(r.URL.Path)
		}),
		otelhttp.WithFilter(func(r *http.Request) bool {
			return r.URL.Path != "/metrics" && r.URL.Path != "/ready"
		}),
	)
}

// defaultProvider is the global tracer provider before anyone sets one.
var defaultProvider = otel.GetTracerProvider()

// Instrumented reports whether spans go anywhere: Setup installed an
// exporter, or a program (a test) set a tracer provider of its own.
func Instrumented() bool { return otel.GetTracerProvider() != defaultProvider }

// GRPCServerOptions trace every gRPC call (the agent's chunk stream).
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler())}
}
