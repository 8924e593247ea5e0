package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/grafana/loki/pkg/push"

	"github.com/logsift/logsift/pkg/corpus"
)

// benchLines returns about 1 MiB of log lines (Promtail's default batch):
// the Apache access log of the shared corpus when it is there (real lines,
// with the quotes JSON must escape), synthetic lines of the same shape
// otherwise.
func benchLines(b *testing.B) [][]byte {
	var lines [][]byte
	root, _ := corpus.Dir()
	if f, err := os.Open(filepath.Join(root, "elastic-examples", "apache_access_combined.log")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		size := 0
		for sc.Scan() && size < 1<<20 {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
			size += len(sc.Bytes())
		}
		if len(lines) > 0 {
			return lines
		}
	}
	b.Log("corpus absent: using synthetic lines")
	for size := 0; size < 1<<20; {
		l := fmt.Appendf(nil, `10.0.%d.%d - - [17/May/2015:10:05:%02d +0000] "GET /articles/%d HTTP/1.1" 200 %d "-" "Mozilla/5.0 (X11; Linux x86_64)"`, size%255, size%13, size%60, size, size%9999)
		lines = append(lines, l)
		size += len(l)
	}
	return lines
}

var benchLabels = []string{`{job="apache", host="web-1", env="prod"}`, `{job="apache", host="web-2", env="prod"}`, `{job="nginx", host="web-1", env="prod"}`, `{job="app", host="web-3", env="prod"}`}

func benchStreams(b *testing.B) ([]push.Stream, int) {
	lines := benchLines(b)
	streams := make([]push.Stream, len(benchLabels))
	raw := 0
	base := time.Unix(1431857103, 0)
	for i, l := range lines {
		s := &streams[i%len(streams)]
		s.Labels = benchLabels[i%len(streams)]
		e := push.Entry{Timestamp: base.Add(time.Duration(i) * time.Millisecond), Line: string(l)}
		if i%4 == 0 {
			e.StructuredMetadata = push.LabelsAdapter{{Name: "trace_id", Value: strconv.Itoa(i)}}
		}
		s.Entries = append(s.Entries, e)
		raw += len(l)
	}
	return streams, raw
}

func benchJSONBody(streams []push.Stream) []byte {
	type jsonStream struct {
		Stream map[string]string `json:"stream"`
		Values [][]any           `json:"values"`
	}
	var doc struct {
		Streams []jsonStream `json:"streams"`
	}
	for _, s := range streams {
		ls, _ := parseForBench(s.Labels)
		js := jsonStream{Stream: ls}
		for _, e := range s.Entries {
			v := []any{strconv.FormatInt(e.Timestamp.UnixNano(), 10), e.Line}
			if len(e.StructuredMetadata) > 0 {
				md := map[string]string{}
				for _, l := range e.StructuredMetadata {
					md[l.Name] = l.Value
				}
				v = append(v, md)
			}
			js.Values = append(js.Values, v)
		}
		doc.Streams = append(doc.Streams, js)
	}
	out, _ := json.Marshal(doc)
	return out
}

func parseForBench(s string) (map[string]string, error) {
	c := newLabelCache(1 << 20)
	ls, err := c.resolve(s, false, 0)
	return ls.Map(), err
}

// discardWriter is a ResponseWriter that costs nothing, so the benchmark
// measures the handler.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// benchHandler has no rate limit (the token bucket is one locked update
// per push, and a fixed test clock would never refill it).
func benchHandler(b *testing.B, reuse bool) *Handler {
	lim := DefaultLimits()
	lim.IngestionRateMB = 0
	h, _ := newTestHandler(b, noopAppender{}, func(c *Config) { c.Limits = &lim; c.Now = nil; c.ReuseBuffers = reuse })
	return h
}

func runPushBench(b *testing.B, body []byte, header map[string]string, raw int) {
	b.Run("fresh", func(b *testing.B) { runPushBenchMode(b, body, header, raw, false) })
	b.Run("reuse", func(b *testing.B) { runPushBenchMode(b, body, header, raw, true) })
}

func runPushBenchMode(b *testing.B, body []byte, header map[string]string, raw int, reuse bool) {
	h := benchHandler(b, reuse)
	req := httptest.NewRequest(http.MethodPost, "/loki/api/v1/push", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(body)
	req.ContentLength = int64(len(body))
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rd.Reset(body)
		req.Body = http.NoBody
		req.Body = readCloser{rd}
		h.ServeHTTP(w, req)
		if w.code != http.StatusNoContent {
			b.Fatalf("status %d", w.code)
		}
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// BenchmarkPushProto measures the whole handler on 1 MiB protobuf+snappy
// pushes; MB/s counts raw line bytes.
func BenchmarkPushProto(b *testing.B) {
	streams, raw := benchStreams(b)
	body := protoBody(b, streams...)
	runPushBench(b, body, map[string]string{"Content-Type": "application/x-protobuf"}, raw)
}

// BenchmarkPushJSON is BenchmarkPushProto for JSON bodies.
func BenchmarkPushJSON(b *testing.B) {
	streams, raw := benchStreams(b)
	runPushBench(b, benchJSONBody(streams), jsonHeader, raw)
}

// BenchmarkPushJSONGzip adds gzip decompression, as Vector and Fluent Bit
// can send.
func BenchmarkPushJSONGzip(b *testing.B) {
	streams, raw := benchStreams(b)
	runPushBench(b, gzipBytes(b, benchJSONBody(streams)), map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, raw)
}

// BenchmarkPushProtoParallel runs pushes from several goroutines, as many
// agents would.
func BenchmarkPushProtoParallel(b *testing.B) {
	streams, raw := benchStreams(b)
	body := protoBody(b, streams...)
	h := benchHandler(b, false)
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/loki/api/v1/push", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-protobuf")
			h.ServeHTTP(w, req)
			if w.code != http.StatusNoContent {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
}
