package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.yaml.in/yaml/v3"

	"github.com/logsift/logsift/pkg/cache"
	"github.com/logsift/logsift/pkg/cache/redistest"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/sampledata"
	"github.com/logsift/logsift/pkg/store"
)

func TestCacheConfigYAML(t *testing.T) {
	decode := func(s string) CacheConfig {
		t.Helper()
		var c CacheConfig
		dec := yaml.NewDecoder(strings.NewReader(s))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return c
	}
	if c := decode("{}"); !c.enabled() || c.Redis.Addr != "" {
		t.Fatalf("empty section: %+v, want enabled without Redis", c)
	}
	if decode("enabled: false").enabled() {
		t.Fatal("enabled: false left the cache on")
	}
	c := decode("max_bytes: 1048576\nredis:\n  address: 127.0.0.1:6379\n  password: pw\n  db: 2\n  timeout: 50ms\nbucket: 2h\nalign_queries_with_step: false\n")
	if c.MaxBytes != 1<<20 || c.Redis.Addr != "127.0.0.1:6379" || c.Redis.Password != "pw" || c.Redis.DB != 2 ||
		c.Redis.Timeout != 50*time.Millisecond || c.Bucket != 2*time.Hour || c.AlignQueriesWithStep == nil || *c.AlignQueriesWithStep {
		t.Fatalf("decoded %+v", c)
	}
	var bad CacheConfig
	dec := yaml.NewDecoder(strings.NewReader("redis:\n  adress: x\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil {
		t.Fatal("a misspelt field was accepted")
	}

	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	off := false
	rc, closeFn, err := newResultCache(CacheConfig{Enabled: &off}, st, nil, nil)
	if err != nil || rc != nil || closeFn() != nil {
		t.Fatalf("disabled cache: %v, %v", rc, err)
	}
	if _, _, err := newResultCache(CacheConfig{MaxBytes: -1}, st, nil, nil); err == nil {
		t.Fatal("a negative memory bound was accepted")
	}
}

// cacheTestServer is the query side of a server with the result cache as
// newResultCache builds it: a store, an event bus, the Loki API.
type cacheTestServer struct {
	st    *store.Store
	plain *query.Engine
	url   string
}

func startCacheTestServer(t *testing.T, cfg CacheConfig) *cacheTestServer {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	bus := events.NewMemory("cache-test")
	t.Cleanup(func() { bus.Close() })
	rc, closeFn, err := newResultCache(cfg, st, bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := closeFn(); err != nil {
			t.Error(err)
		}
		if err := closeFn(); err != nil { // twice is harmless
			t.Error(err)
		}
	})
	e := &query.Engine{Store: st}
	e.UseResultCache(rc)
	t.Cleanup(func() { e.UseResultCache(nil) })
	mux := http.NewServeMux()
	(&lokiapi.API{Engine: e, Store: st, Limits: lokiapi.DefaultLimits()}).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &cacheTestServer{st: st, plain: &query.Engine{Store: st}, url: hs.URL}
}

// rangeQuery asks /loki/api/v1/query_range and returns the matrix as
// label string -> values.
func (s *cacheTestServer) rangeQuery(t *testing.T, q string, start, end time.Time, step time.Duration) map[string][]string {
	t.Helper()
	return s.rangeQueryWith(t, nil, q, start, end, step)
}

// rangeQueryWith is rangeQuery with request headers.
func (s *cacheTestServer) rangeQueryWith(t *testing.T, h http.Header, q string, start, end time.Time, step time.Duration) map[string][]string {
	t.Helper()
	v := url.Values{}
	v.Set("query", q)
	v.Set("start", strconv.FormatInt(start.UnixNano(), 10))
	v.Set("end", strconv.FormatInt(end.UnixNano(), 10))
	v.Set("step", step.String())
	req, err := http.NewRequest(http.MethodGet, s.url+"/loki/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, h)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body lokiclient.QueryResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d, %v", q, resp.StatusCode, err)
	}
	series, err := body.Matrix()
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	out := map[string][]string{}
	for _, s := range series {
		k := labels.FromMap(s.Labels).String()
		for _, p := range s.Points {
			out[k] = append(out[k], fmt.Sprintf("%s@%.3f", p.Value, p.T))
		}
	}
	return out
}

// want is the engine's answer without the cache, in rangeQuery's form.
func (s *cacheTestServer) want(t *testing.T, q string, start, end time.Time, step time.Duration) map[string][]string {
	t.Helper()
	res, err := s.plain.Exec(context.Background(), query.Params{Tenant: "fake", Query: q, Start: start, End: end, Step: step})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, sr := range res.Matrix {
		k := sr.Labels.String()
		for _, p := range sr.Points {
			out[k] = append(out[k], fmt.Sprintf("%v@%.3f", strconv.FormatFloat(p.V, 'f', -1, 64), float64(p.T)/1000))
		}
	}
	return out
}

func sameMatrix(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if strings.Join(va, ",") != strings.Join(b[k], ",") {
			return false
		}
	}
	return true
}

// counter reads one counter from /metrics as the server exposes them.
func counter(name string) float64 {
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// waitRecorded waits until the record of writes took a write reported
// after the counter stood at before.
func waitRecorded(t *testing.T, before float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for counter(`logsift_cache_writes_recorded_total`) <= before {
		if time.Now().After(deadline) {
			t.Fatal("the store's write report never reached the cache")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// One push can reach the cache as several reports (the ingest splits
	// large pushes, and the store reports every 100 ms): wait until none
	// has come for a few report intervals, so that a late one cannot
	// invalidate what the test caches next.
	last, quiet := counter(`logsift_cache_writes_recorded_total`), time.Now()
	for time.Since(quiet) < 400*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("the store's write reports never stopped")
		}
		time.Sleep(20 * time.Millisecond)
		if n := counter(`logsift_cache_writes_recorded_total`); n != last {
			last, quiet = n, time.Now()
		}
	}
}

// TestResultCacheOverHTTP runs dashboard queries over Loki's HTTP API
// through the cache newResultCache builds, with a real Redis as the
// second level: answers equal the engine's, repeats come from the cache,
// and a Redis killed (kill -9) mid-test fails nothing.
func TestResultCacheOverHTTP(t *testing.T) {
	redis := redistest.Start(t)
	s := startCacheTestServer(t, CacheConfig{
		MaxBytes: 8 << 20,
		// Results computed within the skew of the cache's start are not
		// trusted; a test should not wait a second for that.
		ClockSkew: time.Millisecond,
		Redis:     cache.RedisConfig{Addr: redis.Addr(), Timeout: 100 * time.Millisecond, BreakerFailures: 2, BreakerRetry: 50 * time.Millisecond},
	})
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	var es []chunk.Entry
	for i := range 7200 {
		lvl := []string{"info", "warn", "error"}[i%3]
		es = append(es, chunk.Entry{Timestamp: base.Add(time.Duration(i) * time.Second).UnixNano(), Line: []byte("level=" + lvl + " msg=hello")})
	}
	recorded := counter(`logsift_cache_writes_recorded_total`)
	if err := s.st.Append(context.Background(), "fake", []store.Stream{{Labels: labels.New("job", "app"), Entries: es}}); err != nil {
		t.Fatal(err)
	}
	// The store reports the append within 100ms; buckets computed before
	// the report arrives are (rightly) not trusted once it does.
	waitRecorded(t, recorded)
	q := `sum by (level) (count_over_time({job="app"} | logfmt [5m]))`
	start, end := base, base.Add(2*time.Hour)
	want := s.want(t, q, start, end, time.Minute)
	if len(want) != 3 {
		t.Fatalf("the engine found %d series; the data should give 3", len(want))
	}
	// From the cache: all buckets found, or the whole answer memoised.
	cached := func() float64 {
		return counter(`logsift_query_cache_queries_total{result="hit"}`) + counter(`logsift_query_cache_queries_total{result="memo"}`)
	}
	for i := range 3 {
		before := cached()
		if got := s.rangeQuery(t, q, start, end, time.Minute); !sameMatrix(got, want) {
			t.Fatalf("query %d: the cached answer differs from the engine's:\n%v\n%v", i, got, want)
		}
		if i > 0 && cached() != before+1 {
			t.Fatalf("query %d was not answered from the cache", i)
		}
	}
	// Another range over the same buckets: not the memoised answer, but
	// its buckets from L1.
	l1hits := `logsift_cache_requests_total{cache="results",level="l1",result="hit"}`
	before := counter(l1hits)
	later := start.Add(time.Minute)
	if got, want := s.rangeQuery(t, q, later, end, time.Minute), s.want(t, q, later, end, time.Minute); !sameMatrix(got, want) {
		t.Fatal("the answer over the shifted range differs from the engine's")
	}
	if counter(l1hits) <= before {
		t.Fatal("no L1 hit counted in the metrics")
	}

	// Redis dies: new queries (L1 misses, Redis lookups) still answer,
	// correctly, and the breaker opens.
	redis.Kill()
	for i := range 10 {
		q := fmt.Sprintf(`sum(count_over_time({job="app"} |= "level=error" [%dm]))`, i+1)
		if got, want := s.rangeQuery(t, q, start, end, time.Minute), s.want(t, q, start, end, time.Minute); !sameMatrix(got, want) {
			t.Fatalf("with Redis dead, %s differs from the engine's answer", q)
		}
	}
	if counter(`logsift_cache_breaker_state{cache="results",level="l2"}`) != 1 {
		t.Fatal("breaker not open with Redis dead")
	}
	redis.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for counter(`logsift_cache_breaker_state{cache="results",level="l2"}`) == 1 {
		if time.Now().After(deadline) {
			t.Fatal("breaker still open after Redis came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.rangeQuery(t, q, start, end, time.Minute); !sameMatrix(got, want) {
		t.Fatal("after Redis came back the answer differs")
	}
}

// TestResultCacheNoCacheHeader: a query sent with "Cache-Control:
// no-cache" (logcli --nocache) is computed by the engine and counted as a
// bypass, never answered from the cache, while the same query without the
// header is.
func TestResultCacheNoCacheHeader(t *testing.T) {
	s := startCacheTestServer(t, CacheConfig{MaxBytes: 8 << 20, ClockSkew: time.Millisecond})
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	var es []chunk.Entry
	for i := range 3600 {
		es = append(es, chunk.Entry{Timestamp: base.Add(time.Duration(i) * time.Second).UnixNano(), Line: []byte(fmt.Sprintf("n=%d", i%7))})
	}
	recorded := counter(`logsift_cache_writes_recorded_total`)
	if err := s.st.Append(context.Background(), "fake", []store.Stream{{Labels: labels.New("job", "nocache"), Entries: es}}); err != nil {
		t.Fatal(err)
	}
	waitRecorded(t, recorded)
	q := `sum by (n) (count_over_time({job="nocache"} | logfmt [5m]))`
	start, end := base, base.Add(time.Hour)
	want := s.want(t, q, start, end, time.Minute)
	if len(want) != 7 {
		t.Fatalf("the engine found %d series; the data should give 7", len(want))
	}
	queries := func() float64 {
		var n float64
		for _, r := range []string{"hit", "memo", "partial", "fallback"} {
			n += counter(`logsift_query_cache_queries_total{result="` + r + `"}`)
		}
		return n
	}
	// Warm the cache, then check that it answers.
	for range 2 {
		s.rangeQuery(t, q, start, end, time.Minute)
	}
	before := queries()
	if got := s.rangeQuery(t, q, start, end, time.Minute); !sameMatrix(got, want) || queries() != before+1 {
		t.Fatalf("without the header the query should go through the cache (counted %v -> %v)", before, queries())
	}
	bypass := `logsift_query_cache_queries_total{result="bypass"}`
	for _, v := range []string{"no-cache", "max-age=0, No-Cache"} {
		before, bypassed := queries(), counter(bypass)
		got := s.rangeQueryWith(t, http.Header{"Cache-Control": {v}}, q, start, end, time.Minute)
		if !sameMatrix(got, want) {
			t.Fatalf("Cache-Control: %s: the answer differs from the engine's", v)
		}
		if queries() != before || counter(bypass) != bypassed+1 {
			t.Fatalf("Cache-Control: %s: the query went through the result cache", v)
		}
	}
	// A directive that is not no-cache leaves the cache in use.
	before = queries()
	s.rangeQueryWith(t, http.Header{"Cache-Control": {"max-age=60"}}, q, start, end, time.Minute)
	if queries() != before+1 {
		t.Fatal("Cache-Control: max-age=60 bypassed the cache")
	}
}

// BenchmarkCachedQueryRangeHTTP is one warm dashboard query through the
// HTTP handler of the Loki API (no network): parameters, the result
// cache, and the JSON answer. p99-µs is the per-query latency.
func BenchmarkCachedQueryRangeHTTP(b *testing.B) {
	for _, bc := range []struct {
		name string
		memo int64
	}{{"memo", 0}, {"buckets", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := store.Open(b.TempDir(), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close(context.Background())
			rc, closeFn, err := newResultCache(CacheConfig{ClockSkew: time.Millisecond, MemoBytes: bc.memo}, st, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer closeFn()
			e := &query.Engine{Store: st}
			e.UseResultCache(rc)
			defer e.UseResultCache(nil)
			mux := http.NewServeMux()
			(&lokiapi.API{Engine: e, Store: st, Limits: lokiapi.DefaultLimits()}).Register(mux)
			end := time.Now().Add(-time.Hour).Truncate(time.Minute)
			for _, s := range sampledata.Generate(sampledata.Options{Seed: 1, End: time.Now(), Span: 24 * time.Hour, Lines: 20000}) {
				if err := st.Append(context.Background(), "fake", []store.Stream{{Labels: s.Labels, Entries: s.Entries}}); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(10 * time.Millisecond) // past the skew
			var reqs []*http.Request
			for _, q := range dashboardQueries {
				v := url.Values{}
				v.Set("query", q)
				v.Set("start", strconv.FormatInt(end.Add(-6*time.Hour).UnixNano(), 10))
				v.Set("end", strconv.FormatInt(end.UnixNano(), 10))
				v.Set("step", "60s")
				reqs = append(reqs, httptest.NewRequest(http.MethodGet, "/loki/api/v1/query_range?"+v.Encode(), nil))
			}
			serve := func(r *http.Request) int {
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
				return w.Body.Len()
			}
			bytes := 0
			for _, r := range reqs {
				serve(r)
				bytes += serve(r)
			}
			lat := make([]time.Duration, 0, 1<<20)
			i := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				serve(reqs[i%len(reqs)])
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(start))
				}
				i++
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(bytes/len(reqs)), "resp-bytes")
		})
	}
}

// dashboardQueries are the panels pkg/cmd/cacheload sends.
var dashboardQueries = []string{
	`sum by (service_name) (count_over_time({env="demo"}[1m]))`,
	`sum by (level) (count_over_time({job="api"} | logfmt [5m]))`,
	`sum(rate({job="nginx"} |= " 500 " [5m]))`,
	`topk(5, sum by (host) (bytes_over_time({env="demo"}[5m])))`,
	`sum by (service_name) (count_over_time({env="demo"} |~ "(?i)error" [1m]))`,
}

// TestServerResultCacheSeesLateWrites runs the whole server: metric range
// queries over HTTP are served from the result cache, and a late write
// pushed over HTTP into the cached range changes the next answer (the
// store reports the write, the cache drops the buckets over it).
func TestServerResultCacheSeesLateWrites(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPListenAddress, cfg.GRPCListenAddress = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Cache.ClockSkew = time.Millisecond
	srv, err := New(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	url := "http://" + srv.Addr()
	push := func(from time.Time, n int, line string) {
		t.Helper()
		var values bytes.Buffer
		for i := range n {
			if i > 0 {
				values.WriteByte(',')
			}
			fmt.Fprintf(&values, `[%q, %q]`, strconv.FormatInt(from.Add(time.Duration(i)*time.Second).UnixNano(), 10), line)
		}
		body := `{"streams":[{"stream":{"job":"app"},"values":[` + values.String() + `]}]}`
		resp, err := http.Post(url+"/loki/api/v1/push", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("push: status %d", resp.StatusCode)
		}
	}
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	recorded := counter(`logsift_cache_writes_recorded_total`)
	push(base, 3600, "level=info msg=hello")
	s := &cacheTestServer{st: srv.Store, plain: &query.Engine{Store: srv.Store}, url: url}
	q := `sum(count_over_time({job="app"}[5m]))`
	start, end := base, base.Add(2*time.Hour)
	waitRecorded(t, recorded) // the push's own report
	before := s.rangeQuery(t, q, start, end, time.Minute)
	cached := func() float64 {
		return counter(`logsift_query_cache_queries_total{result="hit"}`) + counter(`logsift_query_cache_queries_total{result="memo"}`)
	}
	hits := cached()
	if got := s.rangeQuery(t, q, start, end, time.Minute); !sameMatrix(got, before) || cached() != hits+1 {
		t.Fatal("the repeated query was not answered from the cache")
	}

	// Half an hour of late lines into the cached range.
	push(base.Add(30*time.Minute).Add(500*time.Millisecond), 1800, "level=error msg=late")
	want := s.want(t, q, start, end, time.Minute)
	if sameMatrix(want, before) {
		t.Fatal("the late write did not change the engine's answer: the test proves nothing")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.rangeQuery(t, q, start, end, time.Minute)
		if sameMatrix(got, want) {
			break
		}
		if !sameMatrix(got, before) {
			t.Fatal("the answer is neither the old nor the new one")
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache still answers the old result 10s after the late write")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
