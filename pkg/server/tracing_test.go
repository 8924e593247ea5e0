package server

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/tracing"
)

// A push and a query through the wired server each leave one trace: the
// HTTP span with the stage spans of the ingest and query paths under it,
// and the query's span carries its scan statistics.
func TestTracesOfPushAndQuery(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	r := start(t, cfg)
	ctx := context.Background()
	now := time.Now()
	c := &lokiclient.Client{URL: r.url}
	if err := c.Push(ctx, []lokiclient.Stream{{Labels: labels.New("job", "api"), Entries: []chunk.Entry{{Timestamp: now.UnixNano(), Line: []byte("GET /x 500 timeout")}}}}); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"query": {`{job="api"} |= "timeout"`}, "start": {now.Add(-time.Minute).Format(time.RFC3339Nano)}, "end": {now.Add(time.Minute).Format(time.RFC3339Nano)}}
	resp, err := http.Get(r.url + "/loki/api/v1/query_range?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get(tracing.QueryIDHeader) == "" {
		t.Errorf("no %s header on the answer", tracing.QueryIDHeader)
	}
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = s
	}
	for child, parent := range map[string]string{
		"ingest.append": "POST /loki/api/v1/push",
		"ingest.decode": "POST /loki/api/v1/push",
		"query.logs":    "GET /loki/api/v1/query_range",
	} {
		cs, ok1 := byName[child]
		ps, ok2 := byName[parent]
		if !ok1 || !ok2 {
			names := []string{}
			for n := range byName {
				names = append(names, n)
			}
			t.Fatalf("spans %q and %q expected, got %v", child, parent, names)
		}
		if cs.SpanContext().TraceID() != ps.SpanContext().TraceID() {
			t.Errorf("%s is not in the trace of %s", child, parent)
		}
	}
	found := false
	for _, a := range byName["query.logs"].Attributes() {
		if a.Key == "lines.matched" && a.Value.AsInt64() == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("query.logs span lacks lines.matched=1: %v", byName["query.logs"].Attributes())
	}
}
