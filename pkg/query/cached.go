package query

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/maypok86/otter/v2"
	"github.com/zeebo/xxh3"

	"github.com/logsift/logsift/pkg/cache"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// The result cache of metric range queries.
//
// A range query's steps are cut into buckets of N steps, aligned to
// multiples of N·step (plus the query's phase, start mod step), so that
// queries over different ranges share buckets. A bucket's value at its
// steps depends only on the entries in its window: from its first step
// back by the longest range plus offset to its last step less the
// smallest offset. A bucket whose window ends before now minus the
// freshness lag is settled: it is cached under a key of the tenant, the
// query's canonical form (the AST printed, so spacing and spelling do not
// matter), the step and the bucket's start, together with the wall-clock
// time at which it was computed. It is used while nothing was written into
// its window since (cache.Writes), so a late write into a cached range
// makes the next query compute the bucket again. Buckets that are not
// settled (the tail near now) are computed every time; a query computes
// its missing buckets in as few engine runs as possible.

// ResultCacheConfig tunes the result cache.
type ResultCacheConfig struct {
	// FreshnessLag: only buckets whose window ends this long before now
	// are cached (default 1m), as data near now keeps arriving.
	FreshnessLag time.Duration `yaml:"freshness_lag"`
	// Bucket is the target length of a bucket (default 1h); a bucket is a
	// whole number of steps, at most 1000.
	Bucket time.Duration `yaml:"bucket"`
	// AlignStep moves start and end of metric range queries down to a
	// multiple of the step, as Loki's align_queries_with_step: a
	// dashboard re-issuing now-6h..now then hits the same buckets every
	// time. Without it only queries whose start has the same phase share
	// buckets.
	AlignStep bool `yaml:"align_queries_with_step"`
	// TTL is how long a bucket is kept (default: the Writes' MaxAge).
	TTL time.Duration `yaml:"ttl"`
	// EventInterval is the least time between two CacheHit (or CacheMiss,
	// or CacheInvalidated) events (default 1s), so that 10,000 queries a
	// second do not flood the bus.
	EventInterval time.Duration `yaml:"event_interval"`
	// MemoBytes bounds the memo of whole answers (default 16 MiB;
	// negative: no memo). A query repeated exactly (same tenant,
	// normalised query, aligned range and step) over a settled range is
	// answered from it without looking up, decoding and merging its
	// buckets, as long as nothing was written into its window since.
	MemoBytes int64 `yaml:"memo_bytes"`
}

// DefaultResultCacheConfig is the configuration logsift runs with.
func DefaultResultCacheConfig() ResultCacheConfig {
	return ResultCacheConfig{FreshnessLag: time.Minute, Bucket: time.Hour, AlignStep: true, EventInterval: time.Second}
}

// ResultCache caches the settled buckets of metric range queries; attach
// it to an Engine with UseResultCache.
type ResultCache struct {
	mu      sync.Mutex
	flights map[string]*flight

	cfg    ResultCacheConfig
	cache  cache.Cache
	writes *cache.Writes
	bus    events.Bus
	gates  [3]eventGate // hit, miss, invalidated
	memo   *otter.Cache[string, memoEntry]
	set    *metrics.Set // the memo's gauges
	closed sync.Once
}

// memoEntry is a whole answer over a settled range: its matrix is shared
// by every caller and never modified. It is true while each of its
// buckets is (stamps: the windows of its buckets, neighbours computed at
// the same time joined).
type memoEntry struct {
	matrix []Series
	stamps []stamp
	// encoded keeps the API's encoding of matrix (Result.Encoded), so
	// that a repeated dashboard query is not formatted again.
	encoded *atomic.Pointer[[]byte]
}

// stamp says that a result over the entries in [lo, hi] was computed at
// at (wall clock, ns).
type stamp struct{ lo, hi, at int64 }

func (rc *ResultCache) memoValid(tenant string, m *memoEntry) bool {
	for _, s := range m.stamps {
		if !rc.writes.Valid(tenant, s.lo, s.hi, s.at) {
			return false
		}
	}
	return true
}

// memoWeight approximates the bytes an answer holds.
func memoWeight(k string, e memoEntry) uint32 {
	n := len(k) + 64 + 24*len(e.stamps)
	for _, s := range e.matrix {
		n += 48 + 16*len(s.Points)
		for _, l := range s.Labels {
			n += 32 + len(l.Name) + len(l.Value)
		}
	}
	return uint32(min(n, math.MaxUint32))
}

// maxBucketSteps bounds the steps of a bucket: its value is decoded whole
// for every query that touches it.
const maxBucketSteps = 1000

// bucketKeyVersion starts every key; change it with the value format.
const bucketKeyVersion = "q1:"

// NewResultCache returns a result cache over c, judging validity with w.
// bus, when not nil, receives the (sampled) cache events.
func NewResultCache(c cache.Cache, w *cache.Writes, bus events.Bus, cfg ResultCacheConfig) *ResultCache {
	if cfg.FreshnessLag <= 0 {
		cfg.FreshnessLag = time.Minute
	}
	if cfg.Bucket <= 0 {
		cfg.Bucket = time.Hour
	}
	if cfg.TTL <= 0 || cfg.TTL > w.MaxAge() {
		cfg.TTL = w.MaxAge()
	}
	if cfg.EventInterval <= 0 {
		cfg.EventInterval = time.Second
	}
	if cfg.MemoBytes == 0 {
		cfg.MemoBytes = 16 << 20
	}
	rc := &ResultCache{cfg: cfg, cache: c, writes: w, bus: bus}
	if cfg.MemoBytes > 0 {
		memo, err := otter.New(&otter.Options[string, memoEntry]{
			MaximumWeight:    uint64(cfg.MemoBytes),
			Weigher:          memoWeight,
			ExpiryCalculator: otter.ExpiryWriting[string, memoEntry](cfg.TTL),
		})
		if err == nil { // the options are valid by construction
			rc.memo = memo
			rc.set = metrics.NewSet()
			rc.set.NewGauge(`logsift_query_cache_memo_bytes`, func() float64 { return float64(memo.WeightedSize()) })
			rc.set.NewGauge(`logsift_query_cache_memo_items`, func() float64 { return float64(memo.EstimatedSize()) })
			rc.set.NewGauge(`logsift_query_cache_memo_max_bytes`, func() float64 { return float64(cfg.MemoBytes) })
			metrics.RegisterSet(rc.set)
		}
	}
	return rc
}

// Close stops the memo's background work and removes its metrics. The
// levels are the caller's.
func (rc *ResultCache) Close() {
	rc.closed.Do(func() {
		if rc.memo != nil {
			metrics.UnregisterSet(rc.set, true)
			rc.memo.InvalidateAll()
			rc.memo.StopAllGoroutines()
		}
	})
}

// resultCaches maps engines to their result cache. Engine lives in
// logs.go; keeping the link here leaves that file alone. (A field on
// Engine would do the same.)
var resultCaches sync.Map // *Engine -> *ResultCache

// UseResultCache makes Exec serve metric range queries through rc; nil
// turns it off.
func (e *Engine) UseResultCache(rc *ResultCache) {
	if rc == nil {
		resultCaches.Delete(e)
		return
	}
	resultCaches.Store(e, rc)
}

func (e *Engine) resultCache() *ResultCache {
	v, ok := resultCaches.Load(e)
	if !ok {
		return nil
	}
	return v.(*ResultCache)
}

var (
	bucketHits        = metrics.NewCounter(`logsift_query_cache_buckets_total{result="hit"}`)
	bucketMisses      = metrics.NewCounter(`logsift_query_cache_buckets_total{result="miss"}`)
	bucketStale       = metrics.NewCounter(`logsift_query_cache_buckets_total{result="stale"}`)
	bucketUncacheable = metrics.NewCounter(`logsift_query_cache_buckets_total{result="uncacheable"}`)
	bucketDecodeErrs  = metrics.NewCounter(`logsift_query_cache_decode_errors_total`)
	queriesBypassed   = metrics.NewCounter(`logsift_query_cache_queries_total{result="bypass"}`)
	queriesFullHit    = metrics.NewCounter(`logsift_query_cache_queries_total{result="hit"}`)
	queriesPartial    = metrics.NewCounter(`logsift_query_cache_queries_total{result="partial"}`)
	queriesFallback   = metrics.NewCounter(`logsift_query_cache_queries_total{result="fallback"}`)
	queriesMemo       = metrics.NewCounter(`logsift_query_cache_queries_total{result="memo"}`)
	cacheLookupTime   = metrics.NewHistogram(`logsift_query_cache_lookup_duration_seconds`)
	flightsShared     = metrics.NewCounter(`logsift_query_cache_shared_runs_total`)
	engineRuns        = metrics.NewCounter(`logsift_query_cache_engine_runs_total`)
)

// bucket is one bucket of a query: its steps are bs, bs+step, ... be; the
// query asks for qs..qe of them.
type bucket struct {
	bs, be    int64
	qs, qe    int64
	lo, hi    int64 // its window, for cache.Writes
	settled   bool  // its window ended before now less the freshness lag
	cacheable bool  // settled, and worth storing
	// computedAt is when its value was computed (wall clock, ns).
	computedAt int64
	key        string
	series     []Series // its points, once found or computed
	done       bool
}

// plan is a query cut into buckets.
type plan struct {
	p          Params
	step       int64
	n          int64 // steps per bucket
	normalized string
	buckets    []bucket
}

// makePlan cuts p into buckets; ok is false when the cache does not apply
// and the query runs as it is.
func (rc *ResultCache) makePlan(p Params, expr logql.SampleExpr) (*plan, bool) {
	if p.Instant {
		return nil, false
	}
	step := p.Step
	if step == 0 {
		step = defaultStep(p.Start, p.End)
	}
	start, end := p.Start.UnixNano(), p.End.UnixNano()
	// Points carry milliseconds: steps below one would share a point
	// time. Times before 1970 or near the end of the int64 clock are left
	// to the engine.
	if step < time.Millisecond || start < 0 || end < start || end > math.MaxInt64/4 {
		return nil, false
	}
	s := int64(step)
	if rc.cfg.AlignStep {
		start -= start % s
		end -= end % s
	}
	if (end-start)/s > maxPoints {
		return nil, false
	}
	back, fwd, ranges := int64(0), int64(math.MinInt64), 0
	logql.Walk(expr, func(n logql.Node) bool {
		if r, ok := n.(*logql.LogRangeExpr); ok {
			ranges++
			back = max(back, int64(r.Interval)+int64(r.Offset))
			fwd = max(fwd, -int64(r.Offset))
		}
		return true
	})
	if ranges == 0 || back > math.MaxInt64/4 || fwd > math.MaxInt64/4 {
		return nil, false // nothing read from the store, nothing to save
	}
	n := int64(max(1, min(maxBucketSteps, int((int64(rc.cfg.Bucket)+s-1)/s))))
	w := n * s
	phase := start % s
	pl := &plan{p: p, step: s, n: n, normalized: normalizedQuery(expr)}
	pl.p.Start, pl.p.End, pl.p.Step = time.Unix(0, start), time.Unix(0, end), step
	cutoff := rc.writes.Now().Add(-rc.cfg.FreshnessLag).UnixNano()
	requested := (end-start)/s + 1
	for b := (start - phase) / w; ; b++ {
		bs := phase + b*w
		if bs > end {
			break
		}
		bk := bucket{bs: bs, be: bs + w - s, qs: max(bs, start), qe: min(bs+w-s, end)}
		bk.lo, bk.hi = bk.bs-back, bk.be+fwd
		extra := n - ((bk.qe-bk.qs)/s + 1)
		// A bucket only partly asked for is computed whole (and cached)
		// when that at most doubles the query's steps; a short query
		// must not pay for hours it did not ask for.
		bk.settled = bk.hi < cutoff
		bk.cacheable = bk.settled && extra <= requested
		pl.buckets = append(pl.buckets, bk)
	}
	return pl, true
}

// normalizedQuery prints expr with the parts whose order does not matter
// sorted: the matchers of each selector, the labels of by/without,
// on/ignoring and group_left/right. The printer already fixes spacing,
// quoting and durations ([60s] and [1m] print alike). expr is changed
// only while it is printed.
func normalizedQuery(expr logql.Expr) string {
	var undo []func()
	sortStrings := func(p *[]string) {
		if len(*p) < 2 || slices.IsSorted(*p) {
			return
		}
		old := *p
		*p = slices.Sorted(slices.Values(old))
		undo = append(undo, func() { *p = old })
	}
	logql.Walk(expr, func(n logql.Node) bool {
		switch n := n.(type) {
		case *logql.LogSelectorExpr:
			cmp := func(a, b *labels.Matcher) int {
				if c := strings.Compare(a.Name, b.Name); c != 0 {
					return c
				}
				if a.Type != b.Type {
					return int(a.Type) - int(b.Type)
				}
				return strings.Compare(a.Value, b.Value)
			}
			if !slices.IsSortedFunc(n.Matchers, cmp) {
				old := n.Matchers
				n.Matchers = slices.SortedFunc(slices.Values(old), cmp)
				undo = append(undo, func() { n.Matchers = old })
			}
		case *logql.RangeAggregationExpr:
			if n.Grouping != nil {
				sortStrings(&n.Grouping.Labels)
			}
		case *logql.VectorAggregationExpr:
			if n.Grouping != nil {
				sortStrings(&n.Grouping.Labels)
			}
		case *logql.BinaryExpr:
			if n.Matching != nil {
				sortStrings(&n.Matching.Labels)
				sortStrings(&n.Matching.Include)
			}
		}
		return true
	})
	out := expr.String()
	for _, f := range undo {
		f()
	}
	return out
}

// bucketKey is the cache key of a bucket: a hash of everything its value
// depends on. Step and bucket start fix the phase and the bucket width
// (the width is N·step with N a function of the step).
func bucketKey(tenant, normalized string, step, bs int64) string {
	h := xxh3.New()
	var num [8]byte
	_, _ = h.WriteString(bucketKeyVersion)
	binary.LittleEndian.PutUint64(num[:], uint64(len(tenant)))
	_, _ = h.Write(num[:])
	_, _ = h.WriteString(tenant)
	binary.LittleEndian.PutUint64(num[:], uint64(len(normalized)))
	_, _ = h.Write(num[:])
	_, _ = h.WriteString(normalized)
	binary.LittleEndian.PutUint64(num[:], uint64(step))
	_, _ = h.Write(num[:])
	binary.LittleEndian.PutUint64(num[:], uint64(bs))
	_, _ = h.Write(num[:])
	sum := h.Sum128().Bytes()
	var out [len(bucketKeyVersion) + 32]byte
	copy(out[:], bucketKeyVersion)
	hex.Encode(out[len(bucketKeyVersion):], sum[:])
	return string(out[:])
}

// exec answers a metric range query from cached buckets and computes the
// rest.
func (rc *ResultCache) exec(ctx context.Context, e *Engine, p Params, expr logql.SampleExpr) (*Result, error) {
	pl, ok := rc.makePlan(p, expr)
	if !ok || p.NoCache {
		queriesBypassed.Inc()
		return e.execMetric(ctx, p, expr)
	}
	began := time.Now()
	memoKey := ""
	if rc.memo != nil && pl.settled() {
		memoKey = answerKey(pl)
		if m, ok := rc.memo.GetIfPresent(memoKey); ok {
			if rc.memoValid(pl.p.Tenant, &m) {
				queriesMemo.Inc()
				return &Result{Type: ResultMatrix, Matrix: m.matrix, Encoded: m.encoded, Stats: Stats{Streams: int64(len(m.matrix)), ExecTime: time.Since(began)}}, nil
			}
			rc.memo.Invalidate(memoKey)
		}
	}
	rc.lookup(ctx, pl)
	// The buckets not found are computed in runs of consecutive buckets,
	// each within the engine's bound on steps; separate runs (holes
	// between cached buckets, or a range too long for one run) go in
	// parallel.
	type run struct {
		i, j  int
		stats Stats
		err   error
	}
	var runs []run
	for i := 0; i < len(pl.buckets); {
		if pl.buckets[i].done {
			i++
			continue
		}
		j := i + 1
		for j < len(pl.buckets) && !pl.buckets[j].done && int64(j-i+1)*pl.n <= maxPoints {
			j++
		}
		runs = append(runs, run{i: i, j: j})
		i = j
	}
	if len(runs) == 1 {
		r := &runs[0]
		r.stats, r.err = rc.compute(ctx, e, pl, pl.buckets[r.i:r.j], expr)
	} else if len(runs) > 1 {
		cctx, cancel := context.WithCancel(ctx)
		par := e.Parallelism
		if par <= 0 {
			par = runtime.GOMAXPROCS(0)
		}
		sem := make(chan struct{}, par)
		var wg sync.WaitGroup
		for k := range runs {
			wg.Add(1)
			sem <- struct{}{}
			go func(r *run) {
				defer func() { <-sem; wg.Done() }()
				// Each run writes only its own buckets.
				r.stats, r.err = rc.compute(cctx, e, pl, pl.buckets[r.i:r.j], expr)
				if r.err != nil {
					cancel()
				}
			}(&runs[k])
		}
		wg.Wait()
		cancel()
	}
	var stats Stats
	computed := len(runs) > 0
	var firstErr error
	for _, r := range runs {
		if r.err == nil {
			stats.add(r.stats)
			stats.ChunksRef += r.stats.ChunksRef
			stats.Duplicates += r.stats.Duplicates
			continue
		}
		var qe *Error
		if errors.As(r.err, &qe) && ctx.Err() == nil && padded(pl.buckets[r.i:r.j]) {
			// The query may fail only because of steps added to fill a
			// bucket; the engine on the asked range decides.
			queriesFallback.Inc()
			return e.execMetric(ctx, pl.p, expr)
		}
		// A run cancelled because another failed reports the other's
		// error, not its own cancellation.
		if firstErr == nil || (errors.Is(firstErr, context.Canceled) && !errors.Is(r.err, context.Canceled)) {
			firstErr = r.err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if computed {
		queriesPartial.Inc()
	} else {
		queriesFullHit.Inc()
	}
	mat := mergeBuckets(pl)
	if lim := (&evaluator{p: p}).maxSeries(); lim > 0 && len(mat) > lim {
		return nil, seriesLimitError(lim)
	}
	stats.Streams = int64(len(mat))
	stats.ExecTime = time.Since(began)
	if memoKey != "" {
		var stamps []stamp
		for i := range pl.buckets {
			b := &pl.buckets[i]
			if n := len(stamps); n > 0 && stamps[n-1].at == b.computedAt {
				stamps[n-1].hi = max(stamps[n-1].hi, b.hi)
				continue
			}
			stamps = append(stamps, stamp{b.lo, b.hi, b.computedAt})
		}
		enc := new(atomic.Pointer[[]byte])
		rc.memo.Set(memoKey, memoEntry{matrix: mat, stamps: stamps, encoded: enc})
		return &Result{Type: ResultMatrix, Matrix: mat, Encoded: enc, Stats: stats}, nil
	}
	return &Result{Type: ResultMatrix, Matrix: mat, Stats: stats}, nil
}

// settled says whether every bucket of the plan is settled: its answer
// changes only through late writes.
func (pl *plan) settled() bool {
	for i := range pl.buckets {
		if !pl.buckets[i].settled {
			return false
		}
	}
	return len(pl.buckets) > 0
}

// answerKey is the memo key of a whole answer: the bucket key's inputs
// plus the asked range and the series limit, which decide what the
// answer holds.
func answerKey(pl *plan) string {
	h := xxh3.New()
	var num [8]byte
	for _, v := range []int64{int64(len(pl.p.Tenant)), int64(len(pl.normalized)), pl.step, pl.p.Start.UnixNano(), pl.p.End.UnixNano(), int64(pl.p.MaxSeries)} {
		binary.LittleEndian.PutUint64(num[:], uint64(v))
		_, _ = h.Write(num[:])
	}
	_, _ = h.WriteString(pl.p.Tenant)
	_, _ = h.WriteString(pl.normalized)
	sum := h.Sum128().Bytes()
	return string(sum[:])
}

// lookup fills the cacheable buckets found valid in the cache.
func (rc *ResultCache) lookup(ctx context.Context, pl *plan) {
	start := time.Now()
	var keys []string
	var idx []int
	for i := range pl.buckets {
		b := &pl.buckets[i]
		if !b.cacheable {
			bucketUncacheable.Inc()
			continue
		}
		b.key = bucketKey(pl.p.Tenant, pl.normalized, pl.step, b.bs)
		keys = append(keys, b.key)
		idx = append(idx, i)
	}
	if len(keys) == 0 {
		return
	}
	hits := make([]cache.Hit, len(keys))
	rc.cache.GetMulti(ctx, keys, hits)
	var hit cache.Level
	misses := 0
	for k, h := range hits {
		b := &pl.buckets[idx[k]]
		if h.Level == cache.Miss {
			misses++
			continue
		}
		computedAt, series, err := decodeBucket(h.Value)
		if err != nil {
			bucketDecodeErrs.Inc()
			misses++
			continue
		}
		if !rc.writes.Valid(pl.p.Tenant, b.lo, b.hi, computedAt) {
			bucketStale.Inc()
			rc.cache.Delete(ctx, b.key)
			rc.event(2, events.CacheInvalidated, pl.p.Tenant, b.key, h.Level, "written since cached")
			misses++
			continue
		}
		b.series, b.done, b.computedAt = series, true, computedAt
		hit = max(hit, h.Level)
	}
	bucketHits.Add(len(keys) - misses)
	bucketMisses.Add(misses)
	if hit != cache.Miss {
		rc.event(0, events.CacheHit, pl.p.Tenant, keys[0], hit, "")
	}
	if misses > 0 {
		rc.event(1, events.CacheMiss, pl.p.Tenant, keys[0], cache.Miss, "")
	}
	cacheLookupTime.UpdateDuration(start)
}

// padded says whether computing bs evaluates steps the query did not ask
// for: a bucket only partly asked for is computed whole to be cached.
func padded(bs []bucket) bool {
	first, last := &bs[0], &bs[len(bs)-1]
	return (first.cacheable && first.bs < first.qs) || (last.cacheable && last.be > last.qe)
}

// compute runs the engine over consecutive buckets, splits the result and
// caches the cacheable ones.
func (rc *ResultCache) compute(ctx context.Context, e *Engine, pl *plan, bs []bucket, expr logql.SampleExpr) (Stats, error) {
	first, last := &bs[0], &bs[len(bs)-1]
	sub := pl.p
	from, to := first.qs, last.qe
	if first.cacheable {
		from = first.bs
	}
	if last.cacheable {
		to = last.be
	}
	sub.Start, sub.End = time.Unix(0, from), time.Unix(0, to)
	lo, hi := first.lo, last.hi
	res, computedAt, shared, err := rc.run(ctx, e, pl, sub, expr, lo, hi)
	if err != nil {
		return Stats{}, err
	}
	if shared {
		// The leader stored the buckets and counted the work.
		for i := range bs {
			bs[i].cacheable = false
		}
		res = &Result{Matrix: res.Matrix}
	}
	pos := make([]int, len(res.Matrix)) // next point of each series
	for i := range bs {
		b := &bs[i]
		loMs, hiMs := msOf(b.bs), msOf(b.be)
		var out []Series
		for si := range res.Matrix {
			s := &res.Matrix[si]
			k := pos[si]
			for k < len(s.Points) && s.Points[k].T < loMs {
				k++
			}
			j := k
			for j < len(s.Points) && s.Points[j].T <= hiMs {
				j++
			}
			if j > k {
				out = append(out, Series{Labels: s.Labels, Points: s.Points[k:j:j]})
			}
			pos[si] = j
		}
		b.series, b.done, b.computedAt = out, true, computedAt
		if b.cacheable {
			rc.cache.Set(ctx, b.key, encodeBucket(nil, computedAt, out), rc.cfg.TTL)
		}
	}
	return res.Stats, nil
}

// flight is one engine run that identical concurrent runs wait for
// instead of repeating it: a dashboard opened by many people at once, or
// the first queries after a late write invalidated its buckets.
type flight struct {
	done       chan struct{}
	res        *Result
	err        error
	computedAt int64
}

// run runs the engine over sub, or waits for an identical run in flight.
// A waiter takes the leader's result only if it would take it from the
// cache: when nothing was written into the window since the leader began
// (cache.Writes.Valid). shared reports a result taken from a leader.
func (rc *ResultCache) run(ctx context.Context, e *Engine, pl *plan, sub Params, expr logql.SampleExpr, lo, hi int64) (res *Result, computedAt int64, shared bool, err error) {
	key := bucketKey(pl.p.Tenant, pl.normalized, pl.step, sub.Start.UnixNano()) + strconv.FormatInt(sub.End.UnixNano(), 36)
	rc.mu.Lock()
	if f, ok := rc.flights[key]; ok && rc.writes.Valid(pl.p.Tenant, lo, hi, f.computedAt) {
		rc.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil && rc.writes.Valid(pl.p.Tenant, lo, hi, f.computedAt) {
				flightsShared.Inc()
				return f.res, f.computedAt, true, nil
			}
		case <-ctx.Done():
			return nil, 0, false, ctx.Err()
		}
		rc.mu.Lock()
	}
	// Taken before the engine reads the store: a write it does not see
	// is one made after this time.
	f := &flight{done: make(chan struct{}), computedAt: rc.writes.Now().UnixNano()}
	if rc.flights == nil {
		rc.flights = map[string]*flight{}
	}
	if _, busy := rc.flights[key]; !busy {
		rc.flights[key] = f
	}
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		if rc.flights[key] == f {
			delete(rc.flights, key)
		}
		rc.mu.Unlock()
		close(f.done)
	}()
	engineRuns.Inc()
	f.res, f.err = e.execMetric(ctx, sub, expr)
	return f.res, f.computedAt, false, f.err
}

// mergeBuckets joins the buckets' series, keeping the asked steps only.
// Each bucket's series are sorted by labels; a first pass merges the label
// sets and counts their points, so that every output series is allocated
// once.
func mergeBuckets(pl *plan) []Series {
	type out struct {
		labels labels.Labels
		n      int
	}
	merged, next := make([]out, 0), make([]out, 0)
	for i := range pl.buckets {
		b := &pl.buckets[i]
		loMs, hiMs := msOf(b.qs), msOf(b.qe)
		next = next[:0]
		m := 0
		for _, s := range b.series {
			n := len(trimPoints(s.Points, loMs, hiMs))
			if n == 0 {
				continue
			}
			for m < len(merged) && labels.Compare(merged[m].labels, s.Labels) < 0 {
				next = append(next, merged[m])
				m++
			}
			if m < len(merged) && labels.Compare(merged[m].labels, s.Labels) == 0 {
				next = append(next, out{merged[m].labels, merged[m].n + n})
				m++
				continue
			}
			next = append(next, out{s.Labels, n})
		}
		next = append(next, merged[m:]...)
		merged, next = next, merged
	}
	res := make([]Series, len(merged))
	total := 0
	for _, o := range merged {
		total += o.n
	}
	slab := make([]Point, total)
	for k, o := range merged {
		res[k] = Series{Labels: o.labels, Points: slab[:0:o.n]}
		slab = slab[o.n:]
	}
	for i := range pl.buckets {
		b := &pl.buckets[i]
		loMs, hiMs := msOf(b.qs), msOf(b.qe)
		m := 0
		for _, s := range b.series {
			pts := trimPoints(s.Points, loMs, hiMs)
			if len(pts) == 0 {
				continue
			}
			for labels.Compare(res[m].Labels, s.Labels) != 0 {
				m++
			}
			res[m].Points = append(res[m].Points, pts...)
		}
	}
	return res
}

func trimPoints(pts []Point, loMs, hiMs int64) []Point {
	i := 0
	for i < len(pts) && pts[i].T < loMs {
		i++
	}
	j := len(pts)
	for j > i && pts[j-1].T > hiMs {
		j--
	}
	return pts[i:j]
}

// Bucket values: a version byte, the wall-clock time the bucket was
// computed (varint ns), then the series: count, and per series its labels
// (count, then length-prefixed names and values) and points (count, then
// per point its time in ms and its value's bits, 8 bytes each, little
// endian). Fixed-width points decode with two loads each, and a bucket is
// decoded for every query that uses it.
const bucketFormat = 2

func encodeBucket(b []byte, computedAt int64, series []Series) []byte {
	b = append(b, bucketFormat)
	b = binary.AppendVarint(b, computedAt)
	b = binary.AppendUvarint(b, uint64(len(series)))
	for _, s := range series {
		b = binary.AppendUvarint(b, uint64(len(s.Labels)))
		for _, l := range s.Labels {
			b = binary.AppendUvarint(b, uint64(len(l.Name)))
			b = append(b, l.Name...)
			b = binary.AppendUvarint(b, uint64(len(l.Value)))
			b = append(b, l.Value...)
		}
		b = binary.AppendUvarint(b, uint64(len(s.Points)))
		for _, p := range s.Points {
			b = binary.LittleEndian.AppendUint64(b, uint64(p.T))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.V))
		}
	}
	return b
}

// bucketReader decodes a bucket value without trusting it: every count is
// checked against the bytes left before anything is allocated for it.
type bucketReader struct {
	b   []byte
	off int
	err error
}

func (r *bucketReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("cached bucket: bad %s at byte %d", what, r.off)
	}
}

func (r *bucketReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := uvarintMinimal(r.b[r.off:])
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.off += n
	return v
}

// uvarintMinimal is binary.Uvarint that also refuses a number spelled with
// more bytes than needed (a last byte of zero), so that every value has
// one encoding: what decodes is exactly what encodeBucket writes.
func uvarintMinimal(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 1 && b[n-1] == 0 {
		return 0, 0
	}
	return v, n
}

// count reads a count of items taking at least minSize bytes each.
func (r *bucketReader) count(what string, minSize int) int {
	v := r.uvarint(what)
	if r.err == nil && v > uint64((len(r.b)-r.off)/minSize) {
		r.fail(what + " count")
		return 0
	}
	return int(v)
}

// str reads a length-prefixed string as a slice of all, the value's
// label bytes converted to one string once.
func (r *bucketReader) str(what string, all string, base int) string {
	n := r.count(what, 1)
	if r.err != nil {
		return ""
	}
	v := all[r.off-base : r.off-base+n]
	r.off += n
	return v
}

// decodeBucket decodes a bucket value. The points of all series share one
// allocation, and so do the labels and their strings.
func decodeBucket(b []byte) (computedAt int64, series []Series, err error) {
	if len(b) == 0 || b[0] != bucketFormat {
		return 0, nil, errors.New("cached bucket: unknown format")
	}
	r := &bucketReader{b: b, off: 1}
	ux, n := uvarintMinimal(b[1:])
	if n <= 0 {
		return 0, nil, errors.New("cached bucket: bad time")
	}
	computedAt = int64(ux >> 1) // zig-zag, as binary.Varint
	if ux&1 != 0 {
		computedAt = ^computedAt
	}
	r.off += n
	ns := r.count("series", 2)
	if r.err != nil {
		return 0, nil, r.err
	}
	// A first pass finds the sizes, so that the second allocates once.
	type extent struct{ labels, lstart, points, pstart int }
	var extBuf [16]extent
	ext := extBuf[:0]
	if ns > len(extBuf) {
		ext = make([]extent, 0, ns)
	}
	ext = ext[:ns]
	totalLabels, totalPoints := 0, 0
	for k := range ns {
		nl := r.count("labels", 2)
		ext[k].labels, ext[k].lstart = nl, r.off
		for range 2 * nl {
			n := r.count("label", 1)
			r.off += n
		}
		np := r.count("points", 16)
		if r.err != nil {
			return 0, nil, r.err
		}
		ext[k].points, ext[k].pstart = np, r.off
		r.off += 16 * np
		totalLabels += nl
		totalPoints += np
	}
	if r.off != len(b) {
		return 0, nil, fmt.Errorf("cached bucket: %d bytes after the end", len(b)-r.off)
	}
	allLabels := make(labels.Labels, totalLabels)
	pts := make([]Point, totalPoints)
	series = make([]Series, ns)
	first := 0
	if ns > 0 {
		first = ext[0].lstart
	}
	strs := string(b[first:]) // label bytes for every series, one copy
	for k, e := range ext {
		r.off = e.lstart
		ls := allLabels[:e.labels:e.labels]
		allLabels = allLabels[e.labels:]
		for i := range ls {
			ls[i].Name = r.str("label name", strs, first)
			ls[i].Value = r.str("label value", strs, first)
			if i > 0 && ls[i].Name <= ls[i-1].Name {
				return 0, nil, fmt.Errorf("cached bucket: label names out of order at byte %d", r.off)
			}
		}
		// mergeBuckets relies on the series being sorted by labels and
		// distinct, as the engine returns them.
		if k > 0 && labels.Compare(series[k-1].Labels, ls) >= 0 {
			return 0, nil, fmt.Errorf("cached bucket: series out of order at byte %d", r.off)
		}
		p := pts[:e.points:e.points]
		pts = pts[e.points:]
		off := e.pstart
		for i := range p {
			p[i].T = int64(binary.LittleEndian.Uint64(b[off:]))
			p[i].V = math.Float64frombits(binary.LittleEndian.Uint64(b[off+8:]))
			if i > 0 && p[i].T <= p[i-1].T {
				return 0, nil, fmt.Errorf("cached bucket: points out of order at byte %d", off)
			}
			off += 16
		}
		series[k] = Series{Labels: ls, Points: p}
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	return computedAt, series, nil
}

// eventGate lets one event through per interval and counts the rest.
type eventGate struct {
	last    atomic.Int64
	skipped atomic.Int64
}

func (rc *ResultCache) event(gate int, typ events.Type, tenant, key string, level cache.Level, reason string) {
	if rc.bus == nil {
		return
	}
	g := &rc.gates[gate]
	now := time.Now().UnixNano()
	last := g.last.Load()
	if now-last < int64(rc.cfg.EventInterval) || !g.last.CompareAndSwap(last, now) {
		g.skipped.Add(1)
		return
	}
	n := g.skipped.Swap(0)
	if reason != "" {
		reason += "; "
	}
	reason += "sampled, " + strconv.FormatInt(n, 10) + " more since the previous event"
	ev := &events.Event{Type: typ, Tenant: tenant, Cache: &events.Cache{Key: key, Reason: reason}}
	if level != cache.Miss {
		ev.Cache.Level = level.String()
	}
	// A bus that waits (NATS under pressure) must not hold the query.
	go func() { _ = rc.bus.Publish(context.Background(), ev) }()
}
