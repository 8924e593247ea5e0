package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/cache"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/store"
)

// countingCache counts what the result cache asks of its cache, and can
// run a function just before a value is stored.
type countingCache struct {
	cache.Cache
	hits, misses, sets atomic.Int64
	l2hits             atomic.Int64
	beforeSet          func()
}

func (c *countingCache) GetMulti(ctx context.Context, keys []string, out []cache.Hit) {
	c.Cache.GetMulti(ctx, keys, out)
	for _, h := range out {
		if h.Level == cache.Miss {
			c.misses.Add(1)
		} else {
			c.hits.Add(1)
		}
		if h.Level == cache.L2 {
			c.l2hits.Add(1)
		}
	}
}

func (c *countingCache) Set(ctx context.Context, key string, v []byte, ttl time.Duration) {
	if f := c.beforeSet; f != nil {
		c.beforeSet = nil
		f()
	}
	c.sets.Add(1)
	c.Cache.Set(ctx, key, v, ttl)
}

func (c *countingCache) reset() {
	c.hits.Store(0)
	c.misses.Store(0)
	c.sets.Store(0)
	c.l2hits.Store(0)
}

// testClock is the wall clock of a test: settable, safe for concurrent use.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cachedFixture is one store with two engines over it, one with a result
// cache, and the write record the cache judges with.
type cachedFixture struct {
	st       *store.Store
	plain    *Engine
	cached   *Engine
	cache    *countingCache
	writes   *cache.Writes
	clock    *testClock
	rc       *ResultCache
	memory   *cache.Memory
	tenant   string
	maxDelta float64
}

func newCachedFixture(t testing.TB, flush bool, cfg ResultCacheConfig, streams ...testStream) *cachedFixture {
	t.Helper()
	return newCachedFixtureAt(t, t0.Add(30*24*time.Hour), flush, cfg, streams...)
}

// newCachedFixtureAt starts the clock a minute before now.
func newCachedFixtureAt(t testing.TB, now time.Time, flush bool, cfg ResultCacheConfig, streams ...testStream) *cachedFixture {
	t.Helper()
	plain := newEngine(t, flush, store.Options{TargetChunkSize: 48 << 10, Chunk: chunk.Options{BlockSize: 4 << 10}}, streams...)
	clk := &testClock{t: now.Add(-time.Minute)}
	w := cache.NewWrites(cache.WritesConfig{Now: clk.now, MaxAge: 1000 * 24 * time.Hour})
	clk.add(time.Minute) // past the floor
	mem, err := cache.NewMemory(cache.MemoryConfig{MaxBytes: 64 << 20, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mem.Close)
	cc := &countingCache{Cache: &cache.Tiered{L1: mem}}
	if cfg.MemoBytes == 0 {
		// The tests count bucket lookups; the memo of whole answers
		// would answer repeats without any. TestCachedMemo has it on.
		cfg.MemoBytes = -1
	}
	rc := NewResultCache(cc, w, nil, cfg)
	t.Cleanup(rc.Close)
	cached := &Engine{Store: plain.Store}
	cached.UseResultCache(rc)
	t.Cleanup(func() { cached.UseResultCache(nil) })
	return &cachedFixture{st: plain.Store, plain: plain, cached: cached, cache: cc, writes: w, clock: clk, rc: rc, memory: mem, tenant: "t"}
}

// append writes entries and reports them as the store's hook would.
func (f *cachedFixture) append(t testing.TB, record bool, ls labels.Labels, es ...chunk.Entry) {
	t.Helper()
	if err := f.st.Append(context.Background(), f.tenant, []store.Stream{{Labels: ls, Entries: es}}); err != nil {
		t.Fatal(err)
	}
	if record {
		lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
		for _, e := range es {
			lo, hi = min(lo, e.Timestamp), max(hi, e.Timestamp)
		}
		f.writes.Record(f.tenant, lo, hi, f.clock.now())
	}
}

func (f *cachedFixture) params(q string, start, end time.Time, step time.Duration) Params {
	return Params{Tenant: f.tenant, Query: q, Start: start, End: end, Step: step}
}

// check runs p through both engines and compares the matrices.
func (f *cachedFixture) check(t testing.TB, p Params) *Result {
	t.Helper()
	want, werr := f.plain.Exec(context.Background(), p)
	got, gerr := f.cached.Exec(context.Background(), p)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s [%s..%s/%s]: uncached error %v, cached error %v", p.Query, p.Start.Format(time.TimeOnly), p.End.Format(time.TimeOnly), p.Step, werr, gerr)
	}
	if werr != nil {
		if werr.Error() != gerr.Error() {
			t.Fatalf("%s: uncached error %q, cached error %q", p.Query, werr, gerr)
		}
		return nil
	}
	if d := diffMatrix(want.Matrix, got.Matrix); d != "" {
		t.Fatalf("%s [%s..%s step %s]: cached result differs: %s\nuncached:\n%s\ncached:\n%s", p.Query,
			p.Start.Format(time.DateTime), p.End.Format(time.DateTime), p.Step, d, fmtMatrix(want.Matrix), fmtMatrix(got.Matrix))
	}
	if got.Type != ResultMatrix || got.Matrix == nil {
		t.Fatalf("cached result type %s, matrix nil: %v", got.Type, got.Matrix == nil)
	}
	return got
}

// diffMatrix compares two matrices: same series, same point times, values
// equal up to the last bits of float sums (windows are summed pane by
// pane, in an order that depends on where evaluation started).
func diffMatrix(want, got []Series) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d series, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if labels.Compare(w.Labels, g.Labels) != 0 {
			return fmt.Sprintf("series %d is %s, want %s", i, g.Labels, w.Labels)
		}
		if len(w.Points) != len(g.Points) {
			return fmt.Sprintf("series %s: %d points, want %d", w.Labels, len(g.Points), len(w.Points))
		}
		for j := range w.Points {
			wp, gp := w.Points[j], g.Points[j]
			if wp.T != gp.T || !sameValue(wp.V, gp.V) {
				return fmt.Sprintf("series %s point %d: (%d, %v), want (%d, %v)", w.Labels, j, gp.T, gp.V, wp.T, wp.V)
			}
		}
	}
	return ""
}

func sameValue(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

var cachedQueries = []string{
	`count_over_time({job="gen"}[1m])`,
	`sum(rate({job="gen"}[5m]))`,
	`sum by (level) (count_over_time({job="gen"} | logfmt [2m]))`,
	`sum by (stream) (bytes_over_time({job="gen"} |= "status=5" [90s] offset 5m))`,
	`avg_over_time({job="gen"} | logfmt | unwrap latency [3m])`,
	`sum by (status) (sum_over_time({job="gen"} | logfmt | unwrap size [1m]))`,
	`quantile_over_time(0.9, {job="gen"} | logfmt | unwrap latency [5m]) by (stream)`,
	`max_over_time({job="gen"} | logfmt | unwrap latency [1m]) by (level)`,
	`topk(2, sum by (msg) (count_over_time({job="gen"} | logfmt [10m])))`,
	`sum(count_over_time({job="gen"} |= "error" [1m])) / sum(count_over_time({job="gen"}[1m]))`,
	`rate({job="gen"} | logfmt | unwrap ctr [5m]) > 0`,
	`absent_over_time({job="gen", stream="9"}[1m])`,
	`label_replace(sum by (level) (count_over_time({job="gen"} | logfmt [1m])), "lvl", "$1", "level", "(.*)")`,
	`sum(count_over_time({job="gen"}[1m] offset 30m)) + 1`,
	`first_over_time({job="gen"} | logfmt | unwrap size [4m])`,
}

// TestCachedMatchesUncached runs many queries over many ranges through
// the cache, cold, warm and shifted, and compares every answer with the
// engine's.
func TestCachedMatchesUncached(t *testing.T) {
	streams, _ := genData(11)
	// Heads (unflushed) and chunks read differently; both are covered, one
	// with each alignment.
	for _, align := range []bool{false, true} {
		cfg := ResultCacheConfig{Bucket: 20 * time.Minute, AlignStep: align}
		for _, flush := range []bool{align} {
			f := newCachedFixture(t, flush, cfg, streams...)
			ranges := []struct {
				start, end float64
				step       time.Duration
			}{
				{-600, 8000, 2 * time.Minute},
				{17, 7000, 45 * time.Second},
				{1234.5, 5000, 30 * time.Second},
				{3000, 3100, 10 * time.Second},
				{600, 600, time.Minute},
				{0, 7200, 0}, // the default step
				{100, 7100, 7 * time.Minute},
			}
			for _, q := range cachedQueries {
				for _, r := range ranges {
					p := f.params(q, at(r.start), at(r.end), r.step)
					f.check(t, alignFor(align, p)) // cold
					f.cache.reset()
					res := f.check(t, alignFor(align, p)) // warm
					if res != nil && (f.cache.sets.Load() != 0 || f.cache.misses.Load() != 0) {
						t.Fatalf("%s [%v..%v/%s] warm: %d misses, %d sets; want none", q, r.start, r.end, r.step, f.cache.misses.Load(), f.cache.sets.Load())
					}
					// Shifted by a bit more than a bucket: partly cached.
					p.Start, p.End = p.Start.Add(23*time.Minute), p.End.Add(23*time.Minute)
					f.check(t, alignFor(align, p))
				}
			}
		}
	}
}

// alignFor is the query the engine must answer to compare with a cache
// that aligns queries to their step: start and end moved down to a
// multiple of the step (since the Unix epoch).
func alignFor(align bool, p Params) Params {
	if !align {
		return p
	}
	step := p.Step
	if step == 0 {
		step = defaultStep(p.Start, p.End)
	}
	s, e := p.Start.UnixNano(), p.End.UnixNano()
	p.Start, p.End = time.Unix(0, s-s%int64(step)), time.Unix(0, e-e%int64(step))
	return p
}

// TestCachedLateWrites writes entries into a range whose buckets are
// cached: once the write is reported the cache answers the new numbers.
func TestCachedLateWrites(t *testing.T) {
	streams, _ := genData(3)
	f := newCachedFixture(t, true, ResultCacheConfig{Bucket: 30 * time.Minute}, streams...)
	ls := labels.New("job", "gen", "stream", "late")
	queries := []string{
		`sum(count_over_time({job="gen"}[1m]))`,
		`sum by (stream) (count_over_time({job="gen"} |= "late" [5m]))`,
		`count_over_time({job="gen", stream="late"}[10m] offset 1h)`,
	}
	p := func(q string) Params { return f.params(q, at(0), at(7200), time.Minute) }
	for _, q := range queries {
		f.check(t, p(q))
	}
	before, _ := f.cached.Exec(context.Background(), p(queries[0]))

	// An import of old lines lands in the middle of the cached range, and
	// is reported.
	var es []chunk.Entry
	for i := range 300 {
		es = append(es, entry(3000+float64(i), "late import line"))
	}
	f.append(t, true, ls, es...)
	f.clock.add(5 * time.Second) // queries after the report
	for _, q := range queries {
		f.check(t, p(q))
	}
	after, _ := f.cached.Exec(context.Background(), p(queries[0]))
	if diffMatrix(before.Matrix, after.Matrix) == "" {
		t.Fatal("the late write did not change the answer: the test proves nothing")
	}

	// A write the cache is not told about is not seen (the staleness the
	// notifications exist to remove): this is what makes the check above
	// meaningful.
	f.append(t, false, ls, entry(3500.5, "late import line, unreported"))
	got, _ := f.cached.Exec(context.Background(), p(queries[0]))
	if diffMatrix(after.Matrix, got.Matrix) != "" {
		t.Fatal("an unreported write changed a cached answer: was it cached at all?")
	}
	f.writes.Record(f.tenant, at(3500.5).UnixNano(), at(3500.5).UnixNano(), f.clock.now())
	f.clock.add(5 * time.Second)
	f.check(t, p(queries[0]))

	// A write far from the range (outside every window) keeps it cached.
	f.check(t, p(queries[0]))
	f.cache.reset()
	f.append(t, true, ls, entry(-86400, "a day before"))
	f.clock.add(5 * time.Second)
	f.check(t, p(queries[0]))
	if f.cache.misses.Load() != 0 {
		t.Fatalf("a write outside the query's windows invalidated %d buckets", f.cache.misses.Load())
	}
}

// TestCachedWriteDuringCompute lands a write after the engine read the
// store but before the bucket is stored: the stored bucket must not be
// used.
func TestCachedWriteDuringCompute(t *testing.T) {
	streams, _ := genData(5)
	f := newCachedFixture(t, false, ResultCacheConfig{Bucket: time.Hour}, streams...)
	p := f.params(`sum(count_over_time({job="gen"}[1m]))`, at(0), at(7200), time.Minute)
	f.cache.beforeSet = func() {
		f.clock.add(time.Second)
		f.append(t, true, labels.New("job", "gen", "stream", "race"), entry(1800, "raced in"))
		f.clock.add(5 * time.Second)
	}
	f.cached.Exec(context.Background(), p) // stores buckets computed without the write
	f.check(t, p)
}

// TestCachedMovingRange re-issues now-6h..now every 10 seconds, as a
// dashboard does: settled buckets come from the cache, only the tail is
// computed.
func TestCachedMovingRange(t *testing.T) {
	streams, _ := genData(9)
	// "now" is 3h after the data starts; live entries keep arriving.
	f := newCachedFixtureAt(t, at(3*3600), true, ResultCacheConfig{Bucket: time.Hour, AlignStep: true, FreshnessLag: time.Minute}, streams...)
	live := labels.New("job", "gen", "stream", "live")
	q := `sum by (stream) (count_over_time({job="gen"}[1m]))`
	for i := 0; i < 60; i++ {
		now := f.clock.now()
		f.append(t, true, live, chunk.Entry{Timestamp: now.Add(-2 * time.Second).UnixNano(), Line: []byte("live")})
		f.clock.add(time.Second) // the hook's report lands
		p := f.params(q, now.Add(-6*time.Hour), now, 15*time.Second)
		p = alignFor(true, p)
		f.cache.reset()
		f.check(t, p)
		if i > 0 {
			// 7 buckets touch the range; the one holding now and the
			// freshness lag is computed, the rest should hit. A query
			// whose lag reaches back across a bucket boundary computes
			// two.
			h, m, s := f.cache.hits.Load(), f.cache.misses.Load(), f.cache.sets.Load()
			if h < 5 || m > 1 || s > m {
				t.Fatalf("refresh %d: %d bucket hits, %d misses, %d computed and stored; want the settled buckets from the cache", i, h, m, s)
			}
		}
		f.clock.add(9 * time.Second)
	}
}

func TestCachedNormalisedQuery(t *testing.T) {
	streams, _ := genData(2)
	f := newCachedFixture(t, true, ResultCacheConfig{}, streams...)
	f.check(t, f.params(`sum by (level) (count_over_time({job="gen"} | logfmt [1m]))`, at(0), at(7200), time.Minute))
	f.cache.reset()
	f.check(t, f.params("sum   by(level)(\n\tcount_over_time( {job=\"gen\"}|logfmt[60s] ) )", at(0), at(7200), time.Minute))
	if f.cache.misses.Load() != 0 {
		t.Fatalf("the same query spelled differently missed %d buckets", f.cache.misses.Load())
	}
	// Matchers and by/on labels are sets: their order does not matter.
	f.check(t, f.params(`sum by (level, stream) (count_over_time({job="gen", stream=~".+"}[1m])) / on (stream, level) group_left () sum by (stream, level) (count_over_time({stream=~".+", job="gen"}[1m]))`, at(0), at(7200), time.Minute))
	f.cache.reset()
	f.check(t, f.params(`sum by (stream, level) (count_over_time({stream=~".+", job="gen"}[1m])) / on (level, stream) group_left () sum by (level, stream) (count_over_time({job="gen", stream=~".+"}[1m]))`, at(0), at(7200), time.Minute))
	if f.cache.misses.Load() != 0 || f.cache.hits.Load() == 0 {
		t.Fatalf("the same query with matchers and labels reordered: %d misses, %d hits", f.cache.misses.Load(), f.cache.hits.Load())
	}
	// Different queries stay different, and the printed query is left as
	// it was (the engine runs it after the key is made).
	for _, pair := range [][2]string{
		{`count_over_time({job="gen", stream="1"}[1m])`, `count_over_time({job="gen", stream!="1"}[1m])`},
		{`sum by (level) (count_over_time({job="gen"}[1m]))`, `sum without (level) (count_over_time({job="gen"}[1m]))`},
		{`sum by (level) (count_over_time({job="gen"}[1m]))`, `sum by (level, stream) (count_over_time({job="gen"}[1m]))`},
	} {
		a, _ := logql.ParseExpr(pair[0])
		b, _ := logql.ParseExpr(pair[1])
		if normalizedQuery(a) == normalizedQuery(b) {
			t.Fatalf("%s and %s normalise alike", pair[0], pair[1])
		}
	}
	e, _ := logql.ParseExpr(`sum by (b, a) (count_over_time({z="1", a="2"}[1m]))`)
	before := e.String()
	if n := normalizedQuery(e); n != `sum by (a, b) (count_over_time({a="2", z="1"}[1m]))` {
		t.Fatalf("normalised to %s", n)
	}
	if e.String() != before {
		t.Fatalf("normalising changed the query to %s", e.String())
	}
}

func TestCachedTenantIsolation(t *testing.T) {
	streams, _ := genData(2)
	f := newCachedFixture(t, true, ResultCacheConfig{}, streams...)
	q := `sum(count_over_time({job="gen"}[1m]))`
	f.check(t, f.params(q, at(0), at(7200), time.Minute))
	p := f.params(q, at(0), at(7200), time.Minute)
	p.Tenant = "other"
	res, err := f.cached.Exec(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matrix) != 0 {
		t.Fatalf("tenant other sees %d series of tenant t", len(res.Matrix))
	}
}

func TestCachedLimitsAndBypass(t *testing.T) {
	streams, _ := genData(4)
	f := newCachedFixture(t, true, ResultCacheConfig{Bucket: 10 * time.Minute}, streams...)
	// Each bucket has few series, the whole range more than allowed.
	p := f.params(`sum by (msg) (count_over_time({job="gen"} | logfmt [1m]))`, at(0), at(7200), time.Minute)
	p.MaxSeries = 20
	f.check(t, p) // cold: both fail
	f.check(t, p) // warm: the merged buckets fail the same way
	var sl *SeriesLimitError
	if _, err := f.cached.Exec(context.Background(), p); !errors.As(err, &sl) {
		t.Fatalf("error %v, want the series limit", err)
	}
	// Instant queries, log queries and queries without a range are not
	// cached, and answer as before.
	f.cache.reset()
	if _, err := f.cached.Exec(context.Background(), Params{Tenant: "t", Query: `count_over_time({job="gen"}[1m])`, End: at(3600), Instant: true}); err != nil {
		t.Fatal(err)
	}
	f.check(t, f.params(`vector(1) + 1`, at(0), at(600), time.Minute))
	if _, err := f.cached.Exec(context.Background(), Params{Tenant: "t", Query: `{job="gen"}`, Start: at(0), End: at(60), Limit: 10}); err != nil {
		t.Fatal(err)
	}
	if n := f.cache.hits.Load() + f.cache.misses.Load() + f.cache.sets.Load(); n != 0 {
		t.Fatalf("queries the cache does not serve touched it %d times", n)
	}
	// Too many points is the engine's error.
	f.check(t, f.params(`count_over_time({job="gen"}[1m])`, at(0), at(7200), 100*time.Millisecond))
	// A short query inside a long bucket is not padded to the whole bucket.
	g := newCachedFixture(t, true, ResultCacheConfig{Bucket: 24 * time.Hour}, streams...)
	g.check(t, g.params(`count_over_time({job="gen"}[1m])`, at(600), at(900), time.Minute))
	if g.cache.sets.Load() != 0 {
		t.Fatal("a 5-minute query was padded to a 1000-step bucket")
	}
}

func TestCachedNotSettled(t *testing.T) {
	streams, _ := genData(6)
	// The data's second hour is "now".
	f := newCachedFixtureAt(t, at(3600), true, ResultCacheConfig{Bucket: 30 * time.Minute, FreshnessLag: 10 * time.Minute}, streams...)
	p := f.params(`sum(count_over_time({job="gen"}[5m]))`, at(0), at(3600), time.Minute)
	f.check(t, p)
	f.cache.reset()
	f.check(t, p)
	// Buckets 0:00-0:29 settled (window ends 0:29 < 0:50); 0:30-0:59 ends
	// after now-lag, as does the single step at 1:00.
	if h, s := f.cache.hits.Load(), f.cache.sets.Load(); h != 1 || s != 0 {
		t.Fatalf("%d hits, %d sets; want the one settled bucket from the cache and nothing else stored", h, s)
	}
}

func TestBucketCodec(t *testing.T) {
	series := []Series{
		{Labels: labels.Labels{}, Points: []Point{{T: 1000, V: 1}, {T: 61000, V: math.NaN()}, {T: 121000, V: math.Inf(-1)}}},
		{Labels: labels.New("a", "b", "level", "error"), Points: []Point{{T: 5, V: -2.5}}},
		{Labels: labels.New("x", ""), Points: nil},
	}
	b := encodeBucket(nil, 1234567890, series)
	at, got, err := decodeBucket(b)
	if err != nil {
		t.Fatal(err)
	}
	if at != 1234567890 {
		t.Fatalf("computedAt %d", at)
	}
	if d := diffMatrix(series, got); d != "" {
		t.Fatal(d)
	}
	for i := range len(b) {
		if _, _, err := decodeBucket(b[:i]); err == nil {
			t.Fatalf("a value cut at %d of %d bytes decoded", i, len(b))
		}
	}
	if _, _, err := decodeBucket(append(b, 0)); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	// Values the encoder never writes are refused: mergeBuckets needs
	// sorted, distinct series, and every value has one spelling.
	one := func(ls labels.Labels, t int64) Series { return Series{Labels: ls, Points: []Point{{T: t, V: 1}}} }
	for name, bad := range map[string][]byte{
		"series out of order":      encodeBucket(nil, 1, []Series{one(labels.New("a", "2"), 1), one(labels.New("a", "1"), 1)}),
		"duplicate series":         encodeBucket(nil, 1, []Series{one(labels.New("a", "1"), 1), one(labels.New("a", "1"), 2)}),
		"label names out of order": encodeBucket(nil, 1, []Series{one(labels.Labels{{Name: "b", Value: "1"}, {Name: "a", Value: "1"}}, 1)}),
		"overlong varint":          {bucketFormat, 0x30, 0x80, 0x00},
	} {
		if _, _, err := decodeBucket(bad); err == nil {
			t.Fatalf("%s: decoded", name)
		}
	}
}

func FuzzDecodeBucket(f *testing.F) {
	f.Add(encodeBucket(nil, 1, []Series{{Labels: labels.New("a", "b"), Points: []Point{{T: 1, V: 2}, {T: 3, V: 4}}}}))
	f.Add(encodeBucket(nil, -5, nil))
	f.Add([]byte{bucketFormat, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		at, series, err := decodeBucket(b)
		if err != nil {
			return
		}
		for _, s := range series {
			for i := 1; i < len(s.Points); i++ {
				if s.Points[i].T <= s.Points[i-1].T {
					t.Fatal("decoded points out of order")
				}
			}
		}
		// What decodes re-encodes to the same bytes: the format has one
		// encoding per value, so a hostile value cannot smuggle anything
		// the encoder would not write.
		if again := encodeBucket(nil, at, series); string(again) != string(b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
		// Whatever decodes can be merged with itself, as two buckets of a
		// query would be, without a panic and without losing a point.
		pl := &plan{buckets: []bucket{
			{qs: math.MinInt64, qe: 0, series: series},
			{qs: int64(time.Millisecond), qe: math.MaxInt64, series: series},
		}}
		merged := mergeBuckets(pl)
		want, wantSeries := 0, 0
		for _, s := range series {
			n := len(trimPoints(s.Points, msOf(math.MinInt64), msOf(math.MaxInt64)))
			want += n
			if n > 0 {
				wantSeries++ // a series without points is not returned
			}
		}
		got := 0
		for _, s := range merged {
			got += len(s.Points)
		}
		if len(merged) != wantSeries || got != want {
			t.Fatalf("merging two halves: %d series with %d points, want %d with %d", len(merged), got, wantSeries, want)
		}
	})
}

func TestBucketKey(t *testing.T) {
	k := bucketKey("t", "q", int64(time.Minute), 0)
	if !strings.HasPrefix(k, bucketKeyVersion) || len(k) != len(bucketKeyVersion)+32 {
		t.Fatalf("key %q", k)
	}
	seen := map[string]bool{k: true}
	for _, other := range []string{
		bucketKey("u", "q", int64(time.Minute), 0),
		bucketKey("t", "q2", int64(time.Minute), 0),
		bucketKey("t", "q", int64(time.Second), 0),
		bucketKey("t", "q", int64(time.Minute), int64(time.Hour)),
		bucketKey("tq", "", int64(time.Minute), 0), // no ambiguity from concatenation
	} {
		if seen[other] {
			t.Fatalf("key collision: %q", other)
		}
		seen[other] = true
	}
}

// BenchmarkCachedQueryWarm is a dashboard panel answered in process:
// from the memo of whole answers, or (memo off) from its buckets in L1:
// key computation, lookups, validity checks, decoding and merging. p99-µs
// is the per-query latency.
func BenchmarkCachedQueryWarm(b *testing.B) {
	for _, bc := range []struct {
		name string
		memo int64
	}{{"memo", 16 << 20}, {"buckets", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			streams, _ := genData(8)
			cfg := DefaultResultCacheConfig()
			cfg.MemoBytes = bc.memo
			f := newCachedFixture(b, true, cfg, streams...)
			p := f.params(`sum by (stream) (count_over_time({job="gen"}[1m]))`, at(-4*3600), at(2*3600), time.Minute)
			ctx := context.Background()
			if _, err := f.cached.Exec(ctx, p); err != nil {
				b.Fatal(err)
			}
			f.cache.reset()
			lat := make([]time.Duration, 0, 1<<20)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if _, err := f.cached.Exec(ctx, p); err != nil {
					b.Fatal(err)
				}
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(start))
				}
			}
			b.StopTimer()
			if f.cache.misses.Load() != 0 || f.cache.sets.Load() != 0 {
				b.Fatalf("warm queries missed %d buckets and computed %d", f.cache.misses.Load(), f.cache.sets.Load())
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// TestCachedConcurrent runs the same and different queries from many
// goroutines while late writes land; every answer must be one the engine
// gives (checked after the writes stop), and nothing may race.
func TestCachedConcurrent(t *testing.T) {
	streams, _ := genData(12)
	f := newCachedFixture(t, false, ResultCacheConfig{Bucket: 15 * time.Minute}, streams...)
	queries := []string{
		`sum(count_over_time({job="gen"}[1m]))`,
		`sum by (level) (count_over_time({job="gen"} | logfmt [5m]))`,
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				p := f.params(queries[(g+i)%len(queries)], at(0), at(7200), time.Minute)
				if _, err := f.cached.Exec(context.Background(), p); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	ls := labels.New("job", "gen", "stream", "late")
	for i := range 10 {
		f.append(t, true, ls, entry(float64(100+i*600), "level=error late"))
		f.clock.add(2 * time.Second)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f.clock.add(5 * time.Second)
	for _, q := range queries {
		f.check(t, f.params(q, at(0), at(7200), time.Minute))
	}
}

// TestCachedSplitRuns covers queries whose missing buckets form several
// engine runs, computed in parallel: holes on both sides of cached
// buckets, and a range with more steps than one run may have.
func TestCachedSplitRuns(t *testing.T) {
	streams, _ := genData(17)
	f := newCachedFixture(t, true, ResultCacheConfig{Bucket: 10 * time.Minute}, streams...)
	q := `sum by (level) (count_over_time({job="gen"} | logfmt [2m]))`
	// The middle first, then the whole: the buckets before and after the
	// middle are two runs.
	f.check(t, f.params(q, at(3000), at(4200), time.Minute))
	f.cache.reset()
	runs := engineRuns.Get()
	f.check(t, f.params(q, at(0), at(7200), time.Minute))
	if h, s, r := f.cache.hits.Load(), f.cache.sets.Load(), engineRuns.Get()-runs; h < 1 || s < 2 || r != 2 {
		t.Fatalf("%d hits, %d buckets stored in %d engine runs; want the middle from the cache and both sides computed in 2 runs", h, s, r)
	}
	f.cache.reset()
	f.check(t, f.params(q, at(0), at(7200), time.Minute))
	if m := f.cache.misses.Load(); m != 0 {
		t.Fatalf("%d misses after both sides were computed", m)
	}

	// 1s steps over 2.8h: 10,202 steps, within the engine's bound of
	// 11,000, but not once padded to the 19 whole buckets of 600 steps
	// they touch (11,400): two runs.
	g := newCachedFixture(t, true, ResultCacheConfig{Bucket: 10 * time.Minute}, streams...)
	long := g.params(`sum(count_over_time({job="gen"}[10s]))`, at(-1201), at(9000), time.Second)
	runs = engineRuns.Get()
	g.check(t, long)
	if r := engineRuns.Get() - runs; r != 2 {
		t.Fatalf("the long query took %d engine runs, want 2", r)
	}
	g.cache.reset()
	g.check(t, long)
	if m, h := g.cache.misses.Load(), g.cache.hits.Load(); m != 0 || h == 0 {
		t.Fatalf("warm long query: %d misses, %d hits", m, h)
	}
}

// TestCachedMemo repeats queries over a settled range: the repeats come
// from the memo of whole answers, equal to the engine's; a late write
// into the range, a different range or a different series limit are not
// answered from it.
func TestCachedMemo(t *testing.T) {
	streams, _ := genData(29)
	f := newCachedFixture(t, true, ResultCacheConfig{Bucket: 20 * time.Minute, MemoBytes: 1 << 20}, streams...)
	q := `sum by (level) (count_over_time({job="gen"} | logfmt [2m]))`
	p := f.params(q, at(0), at(7200), time.Minute)
	f.check(t, p)
	memo := queriesMemo.Get()
	f.cache.reset()
	first := f.check(t, p)
	second := f.check(t, p)
	if got := queriesMemo.Get() - memo; got != 2 || f.cache.hits.Load()+f.cache.misses.Load() != 0 {
		t.Fatalf("%d answers from the memo and %d bucket lookups; want 2 and none", got, f.cache.hits.Load()+f.cache.misses.Load())
	}
	if &first.Matrix[0] != &second.Matrix[0] {
		t.Fatal("the memo did not share the answer")
	}
	// Another range or series limit is another answer.
	memo = queriesMemo.Get()
	f.check(t, f.params(q, at(60), at(7200), time.Minute))
	lim := p
	lim.MaxSeries = 1
	f.check(t, lim) // fails on the limit, as the engine does
	if queriesMemo.Get() != memo {
		t.Fatal("a different query was answered from the memo")
	}
	// A late write into the window: the memo's answer is not used.
	f.append(t, true, labels.New("job", "gen", "stream", "late"), entry(4000, "level=error late"))
	f.clock.add(5 * time.Second)
	memo = queriesMemo.Get()
	f.check(t, p)
	if queriesMemo.Get() != memo {
		t.Fatal("the memo answered after a write into its window")
	}
	f.check(t, p) // and the new answer is memoised
	if queriesMemo.Get() != memo+1 {
		t.Fatal("the recomputed answer was not memoised")
	}
	// Ranges reaching into the unsettled present are never memoised.
	g := newCachedFixtureAt(t, at(3600), true, ResultCacheConfig{Bucket: 20 * time.Minute, MemoBytes: 1 << 20}, streams...)
	np := g.params(q, at(0), at(3600), time.Minute)
	g.check(t, np)
	memo = queriesMemo.Get()
	g.check(t, np)
	if queriesMemo.Get() != memo {
		t.Fatal("an answer over unsettled buckets came from the memo")
	}
}

// TestCachedAcrossTenants caches a query across tenants (X-Scope-OrgID
// "t|u"): a late write into either tenant makes it compute again.
func TestCachedAcrossTenants(t *testing.T) {
	streams, _ := genData(31)
	f := newCachedFixture(t, true, ResultCacheConfig{Bucket: 20 * time.Minute}, streams...)
	ls := labels.New("job", "gen", "stream", "u")
	f.tenant = "u"
	f.append(t, true, ls, entry(100, "level=info in u"), entry(5000, "level=info in u"))
	f.clock.add(5 * time.Second)
	q := `sum by (__tenant_id__) (count_over_time({job="gen"}[5m]))`
	p := f.params(q, at(0), at(7200), time.Minute)
	p.Tenant = "t|u"
	before := f.check(t, p)
	if len(before.Matrix) != 2 {
		t.Fatalf("%d series, want one per tenant", len(before.Matrix))
	}
	f.cache.reset()
	f.check(t, p)
	if f.cache.misses.Load() != 0 {
		t.Fatal("the query across tenants was not cached")
	}
	// A late write into u alone.
	f.append(t, true, ls, entry(3000, "level=error late in u"))
	f.clock.add(5 * time.Second)
	after := f.check(t, p)
	if diffMatrix(before.Matrix, after.Matrix) == "" {
		t.Fatal("the late write did not change the answer: the test proves nothing")
	}
}
