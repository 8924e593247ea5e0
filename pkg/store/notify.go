package store

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Write notifications tell the result cache which time ranges of which
// tenant received entries, late writes (imports of old logs) above all.
// The write paths report every batch (noteAppended, noteWrite); a
// background goroutine coalesces them and calls the registered functions
// at most once per interval per tenant and range, so that heavy ingest
// costs one mutex and a few comparisons per WAL record.

// DefaultWriteNotifyInterval is how often OnWrite's functions are called
// at most, per tenant and range.
const DefaultWriteNotifyInterval = 100 * time.Millisecond

// maxPendingSpans bounds the ranges held per tenant between two calls.
// More than one, so that live ingest (now) and an import (last month)
// running together are not reported as everything in between.
const maxPendingSpans = 4

// mergeGap joins pending ranges closer than this: live ingest sends ranges
// that touch or nearly touch.
const mergeGap = int64(time.Second)

type writeSpan struct{ lo, hi int64 }

type writeNotifier struct {
	interval time.Duration

	mu      sync.Mutex
	pending map[string][]writeSpan
	fns     map[int]func(tenant string, minT, maxT int64)
	next    int
	stop    chan struct{}
	done    chan struct{}
}

// notifiers holds the notifier of each store that has one; the Store
// struct stays as it is. notifying counts them, so that writes to a store
// without one pay an atomic load and nothing else. notifyMu serialises
// registration.
var (
	notifiers sync.Map // *Store -> *writeNotifier
	notifying atomic.Int32
	notifyMu  sync.Mutex
)

// OnWrite registers fn to learn that entries with timestamps in [minT,
// maxT] (ns) were written for tenant and are visible to queries. Calls
// come from one goroutine, at most once per interval (0: the default) per
// tenant and range, after the entries became visible; a range may be wider
// than what was written, never narrower. The returned function
// unregisters fn, after reporting what was written until then; the
// store's goroutine ends with the last registration. The interval of the
// first registration holds for all.
func (s *Store) OnWrite(interval time.Duration, fn func(tenant string, minT, maxT int64)) (stop func()) {
	if interval <= 0 {
		interval = DefaultWriteNotifyInterval
	}
	notifyMu.Lock()
	var n *writeNotifier
	if v, ok := notifiers.Load(s); ok {
		n = v.(*writeNotifier)
	} else {
		n = &writeNotifier{
			interval: interval,
			pending:  map[string][]writeSpan{},
			fns:      map[int]func(string, int64, int64){},
			stop:     make(chan struct{}),
			done:     make(chan struct{}),
		}
		notifiers.Store(s, n)
		notifying.Add(1)
		go n.loop(n.stop, n.done)
	}
	n.mu.Lock()
	id := n.next
	n.next++
	n.fns[id] = fn
	n.mu.Unlock()
	notifyMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			notifyMu.Lock()
			n.mu.Lock()
			last := len(n.fns) == 1
			if !last {
				delete(n.fns, id)
			}
			n.mu.Unlock()
			if last {
				notifiers.Delete(s)
				notifying.Add(-1)
			}
			notifyMu.Unlock()
			if last {
				close(n.stop)
				<-n.done
				n.mu.Lock()
				delete(n.fns, id)
				n.mu.Unlock()
			}
		})
	}
}

func (n *writeNotifier) loop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(n.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			n.flush() // what was written before the stop is still reported
			return
		case <-t.C:
			n.flush()
		}
	}
}

func (n *writeNotifier) flush() {
	n.mu.Lock()
	if len(n.pending) == 0 {
		n.mu.Unlock()
		return
	}
	pending := n.pending
	n.pending = map[string][]writeSpan{}
	fns := make([]func(string, int64, int64), 0, len(n.fns))
	for _, fn := range n.fns {
		fns = append(fns, fn)
	}
	n.mu.Unlock()
	for tenant, spans := range pending {
		for _, sp := range spans {
			for _, fn := range fns {
				fn(tenant, sp.lo, sp.hi)
			}
		}
	}
}

func (n *writeNotifier) add(tenant string, lo, hi int64) {
	n.mu.Lock()
	n.pending[tenant] = addWriteSpan(n.pending[tenant], lo, hi)
	n.mu.Unlock()
}

// addWriteSpan merges [lo, hi] into a short list of disjoint ranges.
func addWriteSpan(ss []writeSpan, lo, hi int64) []writeSpan {
	for i := range ss {
		if lo <= satAdd(ss[i].hi, mergeGap) && satAdd(hi, mergeGap) >= ss[i].lo {
			ss[i].lo, ss[i].hi = min(ss[i].lo, lo), max(ss[i].hi, hi)
			return ss
		}
	}
	ss = append(ss, writeSpan{lo, hi})
	if len(ss) <= maxPendingSpans {
		return ss
	}
	// Too many: merge the two closest.
	slices.SortFunc(ss, func(a, b writeSpan) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	best, bestGap := 0, uint64(math.MaxUint64)
	for i := 0; i+1 < len(ss); i++ {
		if g := uint64(ss[i+1].lo) - uint64(ss[i].hi); g < bestGap {
			best, bestGap = i, g
		}
	}
	ss[best].hi = max(ss[best].hi, ss[best+1].hi)
	return slices.Delete(ss, best+1, best+2)
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func (s *Store) notifier() *writeNotifier {
	if notifying.Load() == 0 {
		return nil
	}
	v, ok := notifiers.Load(s)
	if !ok {
		return nil
	}
	return v.(*writeNotifier)
}

// noteWrite reports that entries with timestamps in [minT, maxT] were
// written for tenant and are visible to queries. PutChunk calls it with
// the chunk's range, retention with the dropped partition's.
func (s *Store) noteWrite(tenant string, minT, maxT int64) {
	if n := s.notifier(); n != nil {
		n.add(tenant, min(minT, maxT), max(minT, maxT))
	}
}

// noteAppended reports the entries of one applied WAL record: apply calls
// it once at its end.
func (s *Store) noteAppended(tenant string, streams []Stream) {
	n := s.notifier()
	if n == nil {
		return
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, st := range streams {
		for _, e := range st.Entries {
			lo = min(lo, e.Timestamp)
			hi = max(hi, e.Timestamp)
		}
	}
	if lo <= hi {
		n.add(tenant, lo, hi)
	}
}

// noteDeleted reports that streams of tenant were deleted: results over
// any time range may have changed. DeleteStreams calls it once the
// streams are invisible to queries.
func (s *Store) noteDeleted(tenant string) {
	s.noteWrite(tenant, math.MinInt64, math.MaxInt64)
}

// noteDropped reports that a partition (one day) of tenant was removed.
func (s *Store) noteDropped(tenant string, day int32) {
	lo := int64(day) * dayNanos
	s.noteWrite(tenant, lo, lo+dayNanos-1)
}
