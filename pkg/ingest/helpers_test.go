package ingest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/store"
)

// fakeAppender records what reaches the store and can fail on demand.
type fakeAppender struct {
	mu      sync.Mutex
	tenants []string
	streams []store.Stream
	err     error
}

func (f *fakeAppender) Append(ctx context.Context, tenant string, streams []store.Stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.tenants = append(f.tenants, tenant)
	f.streams = append(f.streams, streams...)
	return nil
}

// lines returns the appended lines of the stream printed as want.
func (f *fakeAppender) lines(labels string) []string {
	var out []string
	for _, s := range f.streams {
		if s.Labels.String() == labels {
			for _, e := range s.Entries {
				out = append(out, string(e.Line))
			}
		}
	}
	return out
}

func (f *fakeAppender) entries() []chunk.Entry {
	var out []chunk.Entry
	for _, s := range f.streams {
		out = append(out, s.Entries...)
	}
	return out
}

type noopAppender struct{}

func (noopAppender) Append(context.Context, string, []store.Stream) error { return nil }

// newTestHandler uses the default limits without service_name discovery,
// so that tests can name streams by the labels they pushed;
// TestDiscoverServiceName covers the discovery.
func newTestHandler(t testing.TB, app Appender, mod func(*Config)) (*Handler, *metrics.Set) {
	set := metrics.NewSet()
	lim := DefaultLimits()
	lim.DiscoverServiceName = nil
	cfg := Config{
		Limits:  &lim,
		Metrics: set,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:     func() time.Time { return time.Unix(1700000000, 0) },
	}
	if mod != nil {
		mod(&cfg)
	}
	return NewHandler(app, cfg), set
}

type response struct {
	code   int
	body   string
	header http.Header
}

func do(h http.Handler, body []byte, header map[string]string) response {
	req := httptest.NewRequest(http.MethodPost, "/loki/api/v1/push", bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{code: rec.Code, body: strings.TrimSpace(rec.Body.String()), header: rec.Header()}
}

func protoBody(t testing.TB, streams ...push.Stream) []byte {
	t.Helper()
	req := push.PushRequest{Streams: streams}
	msg, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return s2.EncodeSnappy(nil, msg)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ts(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

var jsonHeader = map[string]string{"Content-Type": "application/json"}

func metricsText(set *metrics.Set) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	return b.String()
}
