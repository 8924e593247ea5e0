package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/maypok86/otter/v2"
)

// MemoryConfig configures the in-process level.
type MemoryConfig struct {
	// MaxBytes bounds the keys and values held (default 64 MiB). A value
	// larger than a sixteenth of it is not kept: one huge result must not
	// push out everything else.
	MaxBytes int64 `yaml:"max_bytes"`
	// Name labels the metrics (default "results").
	Name string `yaml:"-"`
}

// entryOverhead approximates what otter and the map spend per entry
// besides the key and value bytes, so that many tiny entries cannot exceed
// the bound.
const entryOverhead = 96

type memEntry struct {
	value []byte
	ttl   time.Duration
}

// Memory is the in-process level: W-TinyLFU (otter) bounded by bytes, with
// a lifetime per entry.
//
// Why otter: it bounds by weight (our bytes) with a weigher, has per-entry
// expiry, reads without a global lock, and its admission policy keeps the
// frequently used dashboard buckets when a one-off scan of many ranges
// passes through — better than LRU for this load. ristretto may drop a Set
// (asynchronous admission), which makes the cache harder to reason about;
// golang-lru would need our own byte accounting and takes one lock per
// read.
type Memory struct {
	c        *otter.Cache[string, memEntry]
	maxEntry int
	m        *levelMetrics
	set      *metrics.Set
}

// NewMemory returns an empty in-process cache.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.Name == "" {
		cfg.Name = "results"
	}
	set := metrics.NewSet()
	m := &Memory{maxEntry: int(min(cfg.MaxBytes/16, 1<<31)), set: set}
	m.m = newLevelMetrics(set, cfg.Name, "l1")
	evictions := set.NewCounter(fmt.Sprintf(`logsift_cache_evictions_total{cache=%q,level="l1"}`, cfg.Name))
	c, err := otter.New(&otter.Options[string, memEntry]{
		MaximumWeight: uint64(cfg.MaxBytes),
		Weigher: func(k string, v memEntry) uint32 {
			return uint32(len(k) + len(v.value) + entryOverhead)
		},
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[string, memEntry]) time.Duration {
			return e.Value.ttl
		}),
		OnDeletion: func(e otter.DeletionEvent[string, memEntry]) {
			if e.Cause == otter.CauseOverflow {
				evictions.Inc()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("in-process cache: %w", err)
	}
	m.c = c
	set.NewGauge(fmt.Sprintf(`logsift_cache_bytes{cache=%q,level="l1"}`, cfg.Name), func() float64 { return float64(c.WeightedSize()) })
	set.NewGauge(fmt.Sprintf(`logsift_cache_items{cache=%q,level="l1"}`, cfg.Name), func() float64 { return float64(c.EstimatedSize()) })
	set.NewGauge(fmt.Sprintf(`logsift_cache_max_bytes{cache=%q,level="l1"}`, cfg.Name), func() float64 { return float64(cfg.MaxBytes) })
	metrics.RegisterSet(set)
	return m, nil
}

// Get implements Cache.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool) {
	start := time.Now()
	e, ok := m.c.GetIfPresent(key)
	m.m.observe(start, ok)
	return e.value, ok
}

// GetMulti implements Cache.
func (m *Memory) GetMulti(_ context.Context, keys []string, out []Hit) {
	for i, k := range keys {
		start := time.Now()
		e, ok := m.c.GetIfPresent(k)
		m.m.observe(start, ok)
		if ok {
			out[i] = Hit{Value: e.value, Level: L1}
		} else {
			out[i] = Hit{}
		}
	}
}

// Set implements Cache.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) {
	if len(key)+len(value) > m.maxEntry || ttl <= 0 {
		m.m.skipped.Inc()
		return
	}
	m.c.Set(key, memEntry{value: value, ttl: ttl})
	m.m.sets.Inc()
}

// Delete implements Cache.
func (m *Memory) Delete(_ context.Context, key string) { m.c.Invalidate(key) }

// Bytes is the weight held: keys, values and the per-entry overhead.
func (m *Memory) Bytes() int64 {
	m.c.CleanUp()
	return int64(m.c.WeightedSize())
}

// Len is the number of entries held.
func (m *Memory) Len() int {
	m.c.CleanUp()
	return m.c.EstimatedSize()
}

// Close stops the cache's background work and removes its metrics.
func (m *Memory) Close() {
	m.c.InvalidateAll()
	m.c.StopAllGoroutines()
	metrics.UnregisterSet(m.set, true)
}

// levelMetrics are the lookups, their latency and the writes of one level.
type levelMetrics struct {
	hits, misses, sets, skipped *metrics.Counter
	latency                     *metrics.Histogram
}

func newLevelMetrics(set *metrics.Set, name, level string) *levelMetrics {
	l := fmt.Sprintf(`cache=%q,level=%q`, name, level)
	return &levelMetrics{
		hits:    set.NewCounter(`logsift_cache_requests_total{` + l + `,result="hit"}`),
		misses:  set.NewCounter(`logsift_cache_requests_total{` + l + `,result="miss"}`),
		sets:    set.NewCounter(`logsift_cache_sets_total{` + l + `}`),
		skipped: set.NewCounter(`logsift_cache_sets_skipped_total{` + l + `}`),
		latency: set.NewHistogram(`logsift_cache_lookup_duration_seconds{` + l + `}`),
	}
}

func (l *levelMetrics) observe(start time.Time, hit bool) {
	l.latency.UpdateDuration(start)
	if hit {
		l.hits.Inc()
	} else {
		l.misses.Inc()
	}
}
