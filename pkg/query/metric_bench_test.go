package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

// The metric benchmarks run on access-log-like data: four streams of
// nginx combined lines (about 200 bytes each) spread over 24 hours, as
// logsift-bench lays out its 1 GB set. b.SetBytes is the raw line size,
// so 1 GB / (MB/s) is the time for a gigabyte.
var benchData sharedStore

// sharedStore is a store built once per test process and shared by the
// benchmarks or fuzz iterations that read it; TestMain removes it.
type sharedStore struct {
	once  sync.Once
	dir   string
	st    *store.Store
	err   error
	start time.Time // where the data begins
	raw   int64     // raw line bytes
	lines int
}

// open builds the store on first use (in a new temporary directory, with
// opts), filling it with fill, and returns an engine over it.
func (s *sharedStore) open(tb testing.TB, prefix string, opts store.Options, fill func(ctx context.Context, st *store.Store) error) *Engine {
	s.once.Do(func() {
		s.start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if s.dir, s.err = os.MkdirTemp("", prefix); s.err != nil {
			return
		}
		if s.st, s.err = store.Open(s.dir, opts); s.err != nil {
			return
		}
		s.err = fill(context.Background(), s.st)
	})
	if s.err != nil {
		tb.Fatal(s.err)
	}
	return &Engine{Store: s.st}
}

func (s *sharedStore) remove() {
	if s.st != nil {
		s.st.Close(context.Background())
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// benchSize is the raw line bytes of the benchmark set (150 MB; set
// LOGSIFT_BENCH_MB to change it).
func benchSize() int64 {
	var mb int64 = 150
	if v := os.Getenv("LOGSIFT_BENCH_MB"); v != "" {
		fmt.Sscan(v, &mb)
	}
	return mb << 20
}

func TestMain(m *testing.M) {
	code := m.Run()
	benchData.remove()
	jsonBench.remove()
	accessBench.remove()
	accessLevelsBench.remove()
	accessLZ4Bench.remove()
	accessCompactedBench.remove()
	fuzzData.remove()
	os.Exit(code)
}

func accessLine(r *rand.Rand, b []byte, t time.Time) []byte {
	paths := []string{"/", "/login", "/api/v1/orders", "/api/v1/orders/%d", "/api/v1/users/%d", "/static/app.js", "/static/logo.png", "/healthz", "/api/v1/search?q=%d", "/checkout"}
	agents := []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"curl/8.5.0", "Prometheus/2.53.0", "Go-http-client/1.1",
	}
	p := paths[r.IntN(len(paths))]
	if p[len(p)-1] == 'd' {
		p = fmt.Sprintf(p, r.IntN(100000))
	}
	status := 200
	switch x := r.IntN(100); {
	case x < 3:
		status = 500 + r.IntN(4)
	case x < 10:
		status = 404
	case x < 14:
		status = 301 + r.IntN(3)
	}
	method := "GET"
	if r.IntN(5) == 0 {
		method = "POST"
	}
	return fmt.Appendf(b, `%d.%d.%d.%d - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s" rt=%.3f`,
		10+r.IntN(180), r.IntN(256), r.IntN(256), 1+r.IntN(254), t.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		method, p, status, 200+r.IntN(50000), agents[r.IntN(len(agents))], r.Float64()*0.8)
}

func loadBenchData(b *testing.B) *Engine {
	return benchData.open(b, "logsift-metric-bench-", store.Options{}, func(ctx context.Context, st *store.Store) error {
		size := benchSize()
		r := rand.New(rand.NewPCG(1, 2))
		span := 24 * time.Hour
		const hosts = 4
		for benchData.raw < size {
			var push []store.Stream
			for h := 0; h < hosts; h++ {
				s := store.Stream{Labels: labels.New("job", "x", "host", fmt.Sprintf("web-%d", h))}
				arena := make([]byte, 0, 1<<20)
				for k := 0; k < 2000; k++ {
					frac := float64(benchData.raw) / float64(size)
					t := benchData.start.Add(time.Duration(frac*float64(span)) + time.Duration(r.IntN(int(time.Second))))
					start := len(arena)
					arena = accessLine(r, arena, t)
					line := arena[start:len(arena):len(arena)]
					s.Entries = append(s.Entries, chunk.Entry{Timestamp: t.UnixNano(), Line: line})
					benchData.raw += int64(len(line))
					benchData.lines++
				}
				push = append(push, s)
			}
			if err := st.Append(ctx, "t", push); err != nil {
				return err
			}
		}
		return st.Flush(ctx)
	})
}

func benchMetric(b *testing.B, q string) {
	benchQuery(b, loadBenchData(b), &benchData, q)
}

// benchQuery runs q over the 24 hours of set; b.SetBytes is the set's raw
// size, so MB/s is the scan rate over raw lines.
func benchQuery(b *testing.B, eng *Engine, set *sharedStore, q string) {
	p := Params{Tenant: "t", Query: q, Start: set.start, End: set.start.Add(24 * time.Hour)}
	ctx := context.Background()
	res, err := eng.Exec(ctx, p)
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Matrix) == 0 {
		b.Fatalf("%s: no series; the benchmark would time an empty answer", q)
	}
	b.SetBytes(set.raw)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := eng.Exec(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(res.Matrix)), "series")
	b.ReportMetric(float64(res.Stats.DecompressedBytes)/float64(set.raw), "decompressed/raw")
	// Per 10^9 bytes, as the MB/s column (before 2026-11-27: per GiB).
	perGB := float64(b.Elapsed()) / float64(b.N) * 1e9 / float64(set.raw)
	b.ReportMetric(perGB/1e6, "ms/GB")
}

// BenchmarkSumCountOverTime is the first speed target: under 50 ms for 1 GB.
func BenchmarkSumCountOverTime(b *testing.B) {
	benchMetric(b, `sum(count_over_time({job="x"}[1m]))`)
}

// BenchmarkSumByStatusPattern is the second: under 400 ms for 1 GB.
func BenchmarkSumByStatusPattern(b *testing.B) {
	benchMetric(b, `sum by (status) (count_over_time({job="x"} | pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <size> <_>" [1h]))`)
}

// BenchmarkRateLineFilter: a line filter over every line.
func BenchmarkRateLineFilter(b *testing.B) {
	benchMetric(b, `sum by (host) (rate({job="x"} |= "POST" [5m]))`)
}

// BenchmarkQuantileUnwrap keeps samples per window.
func BenchmarkQuantileUnwrap(b *testing.B) {
	benchMetric(b, `quantile_over_time(0.99, {job="x"} | regexp "rt=(?P<rt>[0-9.]+)" | unwrap rt [5m]) by (host)`)
}
