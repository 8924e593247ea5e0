package cache

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/pkg/events"
)

// Writes remembers, per tenant, when entries were last written into each
// stretch of the time axis, so that a reader can tell whether a result
// computed at some moment from some time window is still true: it is when
// nothing was written into the window since (Valid).
//
// This replaces deleting entries on a write: a query that read the store
// just before a late write and stores its result just after the
// invalidation would otherwise leave a stale entry behind for good. Here
// the entry carries the time it was computed, and every later write into
// its window makes it invalid, whenever it was stored. Times are wall
// clock, so entries in a Redis shared by several processes are judged the
// same way by all of them, up to Skew.
//
// What happened before this process listened is unknown, so entries
// computed before then are invalid (the floor); so are entries older than
// MaxAge, which lets Writes forget old writes.
type Writes struct {
	cfg     WritesConfig
	mu      sync.Mutex // serialises Record
	tenants sync.Map   // tenant -> *atomic.Pointer[[]span]
	floor   atomic.Int64

	recorded, resets *metrics.Counter
}

// WritesConfig tunes Writes. Zero values take the defaults.
type WritesConfig struct {
	// MaxAge is the age past which a cached result is not used (default
	// 24h); writes older than this (plus a minute) are forgotten.
	MaxAge time.Duration `yaml:"max_age"`
	// Skew is the clock difference between server processes tolerated
	// (default 1s): a result computed less than Skew after a write into
	// its window is not trusted.
	Skew time.Duration `yaml:"clock_skew"`
	// MaxSpans bounds the remembered spans per tenant (default 1024); past
	// it the closest spans are merged, which can only make more results
	// invalid, never fewer.
	MaxSpans int `yaml:"-"`
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time `yaml:"-"`
}

// span says that entries with timestamps in [lo, hi] were last written
// at wall-clock time at (ns).
type span struct{ lo, hi, at int64 }

// NewWrites returns an empty record whose floor is now.
func NewWrites(cfg WritesConfig) *Writes {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.Skew <= 0 {
		cfg.Skew = time.Second
	}
	if cfg.MaxSpans <= 0 {
		cfg.MaxSpans = 1024
	}
	cfg.MaxSpans = max(cfg.MaxSpans, 4)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Writes{
		cfg:      cfg,
		recorded: metrics.GetOrCreateCounter(`logsift_cache_writes_recorded_total`),
		resets:   metrics.GetOrCreateCounter(`logsift_cache_write_record_resets_total`),
	}
	w.floor.Store(cfg.Now().UnixNano())
	return w
}

// MaxAge is the configured maximum age of a usable result.
func (w *Writes) MaxAge() time.Duration { return w.cfg.MaxAge }

// Now is the record's clock.
func (w *Writes) Now() time.Time { return w.cfg.Now() }

// Record notes that entries with timestamps in [minT, maxT] (ns) became
// visible to queries of tenant no later than at.
func (w *Writes) Record(tenant string, minT, maxT int64, at time.Time) {
	if minT > maxT {
		minT, maxT = maxT, minT
	}
	ts := at.UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.spans(tenant, true)
	old := *p.Load()
	out := insertSpan(old, minT, maxT, ts)
	cutoff := w.cfg.Now().Add(-w.cfg.MaxAge - time.Minute).UnixNano()
	out = slices.DeleteFunc(out, func(s span) bool { return s.at < cutoff })
	if len(out) > w.cfg.MaxSpans {
		out = mergeClosest(out, w.cfg.MaxSpans/2)
	}
	p.Store(&out)
	w.recorded.Inc()
}

func (w *Writes) spans(tenant string, create bool) *atomic.Pointer[[]span] {
	if v, ok := w.tenants.Load(tenant); ok {
		return v.(*atomic.Pointer[[]span])
	}
	if !create {
		return nil
	}
	p := &atomic.Pointer[[]span]{}
	empty := []span{}
	p.Store(&empty)
	v, _ := w.tenants.LoadOrStore(tenant, p)
	return v.(*atomic.Pointer[[]span])
}

// Newest is the wall-clock time (ns) of the newest write into [lo, hi]
// for tenant; at least the floor. A query across tenants ("a|b", as
// X-Scope-OrgID names them) reads them all: the newest write into any.
func (w *Writes) Newest(tenant string, lo, hi int64) int64 {
	if strings.Contains(tenant, "|") {
		newest := w.floor.Load()
		for _, t := range strings.Split(tenant, "|") {
			if t != "" {
				newest = max(newest, w.Newest(t, lo, hi))
			}
		}
		return newest
	}
	newest := w.floor.Load()
	p := w.spans(tenant, false)
	if p == nil {
		return newest
	}
	ss := *p.Load()
	i, _ := slices.BinarySearchFunc(ss, lo, func(s span, t int64) int {
		if s.hi < t {
			return -1
		}
		return 1
	})
	for ; i < len(ss) && ss[i].lo <= hi; i++ {
		newest = max(newest, ss[i].at)
	}
	return newest
}

// Valid says whether a result computed at computedAt (wall clock, ns) from
// tenant's entries with timestamps in [lo, hi] is still true.
func (w *Writes) Valid(tenant string, lo, hi, computedAt int64) bool {
	if computedAt < w.cfg.Now().Add(-w.cfg.MaxAge).UnixNano() {
		return false
	}
	return computedAt > w.Newest(tenant, lo, hi)+int64(w.cfg.Skew)
}

// Reset makes every result computed before at invalid: the answer to
// having missed write notifications.
func (w *Writes) Reset(at time.Time) {
	ts := at.UnixNano()
	for {
		cur := w.floor.Load()
		if ts <= cur || w.floor.CompareAndSwap(cur, ts) {
			break
		}
	}
	w.resets.Inc()
}

// Spans is the number of remembered spans of tenant.
func (w *Writes) Spans(tenant string) int {
	p := w.spans(tenant, false)
	if p == nil {
		return 0
	}
	return len(*p.Load())
}

// Follow records the RangeWritten events of bus until ctx ends. It returns
// once subscribed; results computed before are invalid from then on, as
// writes before the subscription are unknown. When the subscription
// loses events, everything computed until then is invalid too.
func (w *Writes) Follow(ctx context.Context, bus events.Bus) error {
	sub, err := bus.Subscribe(ctx, events.RangeWritten)
	if err != nil {
		return fmt.Errorf("follow write events: %w", err)
	}
	w.Reset(w.cfg.Now())
	go func() {
		defer sub.Close()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var dropped int64
		checkDrops := func() {
			if d := sub.Dropped(); d != dropped {
				dropped = d
				w.Reset(w.cfg.Now())
			}
		}
		for {
			select {
			case e, ok := <-sub.C:
				if !ok {
					return
				}
				if e.Range != nil {
					at := e.Time
					if at.IsZero() {
						at = w.cfg.Now()
					}
					w.Record(e.Tenant, e.Range.MinTime, e.Range.MaxTime, at)
				}
				checkDrops()
			case <-tick.C:
				checkDrops()
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

// Hook returns the function the store calls with the ranges it wrote
// (store.OnWrite): it records them here at once and publishes them as
// RangeWritten events for the other server processes (bus may be nil).
func (w *Writes) Hook(bus events.Bus) func(tenant string, minT, maxT int64) {
	return func(tenant string, minT, maxT int64) {
		now := w.cfg.Now()
		w.Record(tenant, minT, maxT, now)
		if bus == nil {
			return
		}
		err := bus.Publish(context.Background(), &events.Event{
			Type:   events.RangeWritten,
			Time:   now,
			Tenant: tenant,
			Range:  &events.Range{MinTime: minT, MaxTime: maxT},
		})
		if err != nil {
			metrics.GetOrCreateCounter(`logsift_cache_write_events_failed_total`).Inc()
		}
	}
}

// insertSpan returns ss with [lo, hi] written at at: the parts of
// existing spans inside [lo, hi] take the later of their time and at, the
// gaps between them take at. ss is not modified.
func insertSpan(ss []span, lo, hi, at int64) []span {
	out := make([]span, 0, len(ss)+3)
	i := 0
	for ; i < len(ss) && ss[i].hi < lo; i++ {
		out = append(out, ss[i])
	}
	cur, covered := lo, false
	for ; i < len(ss) && ss[i].lo <= hi; i++ {
		s := ss[i]
		if s.lo < lo {
			out = append(out, span{s.lo, lo - 1, s.at})
		}
		if s.lo > cur {
			out = append(out, span{cur, s.lo - 1, at})
		}
		ol, oh := max(s.lo, lo), min(s.hi, hi)
		out = append(out, span{ol, oh, max(s.at, at)})
		if s.hi > hi {
			out = append(out, span{hi + 1, s.hi, s.at})
		}
		if oh == hi {
			covered = true
		} else {
			cur = oh + 1
		}
	}
	if !covered {
		out = append(out, span{cur, hi, at})
	}
	out = append(out, ss[i:]...)
	// Touching spans of the same time are one.
	j := 0
	for k := 1; k < len(out); k++ {
		if out[j].at == out[k].at && out[j].hi != math.MaxInt64 && out[j].hi+1 == out[k].lo {
			out[j].hi = out[k].hi
			continue
		}
		j++
		out[j] = out[k]
	}
	return out[:j+1]
}

// mergeClosest merges neighbouring spans, closest first, until at most
// target remain. A merged span covers the gap between its parts and takes
// the later time: conservative, since it can only make results invalid.
func mergeClosest(ss []span, target int) []span {
	for len(ss) > target {
		gaps := make([]int64, len(ss)-1)
		for i := range gaps {
			gaps[i] = gapOf(ss[i], ss[i+1])
		}
		sorted := slices.Clone(gaps)
		slices.Sort(sorted)
		limit := sorted[len(ss)-target-1]
		out := ss[:1]
		for i := 1; i < len(ss); i++ {
			last := &out[len(out)-1]
			if gaps[i-1] <= limit {
				last.hi = ss[i].hi
				last.at = max(last.at, ss[i].at)
				continue
			}
			out = append(out, ss[i])
		}
		ss = out
	}
	return ss
}

func gapOf(a, b span) int64 {
	if b.lo-a.hi < 0 { // overflow across the whole int64 range
		return math.MaxInt64
	}
	return b.lo - a.hi
}
