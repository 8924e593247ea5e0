package auth

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// heapSampleEvery is how often the live heap is read at most: the value
// changes only once per GC cycle, and reading it costs more than a load.
const heapSampleEvery = 100 * time.Millisecond

// liveHeapMetric is the heap the last GC found reachable: unlike the heap
// in use, it does not count garbage, so it rises only when the server
// really holds more, which is what should make it refuse work.
const liveHeapMetric = "/gc/heap/live:bytes"

// heapGauge reads the live heap at most every heapSampleEvery.
type heapGauge struct {
	mu     sync.Mutex
	sample []metrics.Sample
	value  atomic.Uint64
	at     atomic.Int64 // unix ns of the last read
	read   func() uint64
}

func newHeapGauge() *heapGauge {
	g := &heapGauge{sample: []metrics.Sample{{Name: liveHeapMetric}}}
	g.read = g.readRuntime
	return g
}

func (g *heapGauge) readRuntime() uint64 {
	metrics.Read(g.sample)
	if g.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return g.sample[0].Value.Uint64()
}

// get returns the live heap, from a sample at most heapSampleEvery old.
func (g *heapGauge) get(now time.Time) uint64 {
	ns := now.UnixNano()
	if ns-g.at.Load() < int64(heapSampleEvery) {
		return g.value.Load()
	}
	// One reader at a time; the others use the previous value.
	if !g.mu.TryLock() {
		return g.value.Load()
	}
	defer g.mu.Unlock()
	v := g.read()
	g.value.Store(v)
	g.at.Store(ns)
	return v
}

// defaultHighWater derives the live-heap mark from the Go memory limit:
// 90% of it, the point where the collector runs almost constantly. No
// memory limit set means no mark.
func defaultHighWater() uint64 {
	limit := debug.SetMemoryLimit(-1)
	if limit <= 0 || limit == math.MaxInt64 {
		return 0
	}
	return uint64(limit) / 10 * 9
}
