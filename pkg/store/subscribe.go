package store

import (
	"sync"
	"sync/atomic"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// Subscription delivers entries as they are appended, for live tailing.
// Entries arrive in the order they were made durable: within a stream in
// push order. A subscriber that falls behind loses batches rather than
// slowing ingest; Dropped counts them.
type Subscription struct {
	C        <-chan []Stream
	c        chan []Stream
	tenant   *tenantDB
	matchers []*labels.Matcher
	dropped  atomic.Int64
	once     sync.Once
}

// Dropped is the number of entries that could not be delivered because
// the subscriber did not keep up.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Close ends the subscription; C is closed.
func (s *Subscription) Close() {
	s.once.Do(func() {
		t := s.tenant
		t.subMu.Lock()
		delete(t.subs, s)
		t.subMu.Unlock()
		close(s.c)
	})
}

// Subscribe returns a subscription to the entries appended from now on to
// the tenant's streams that match every matcher. buffer is the number of
// batches held for a slow reader.
func (s *Store) Subscribe(tenantID string, ms []*labels.Matcher, buffer int) *Subscription {
	t := s.tenant(tenantID, true)
	if buffer <= 0 {
		buffer = 64
	}
	c := make(chan []Stream, buffer)
	sub := &Subscription{C: c, c: c, tenant: t, matchers: ms}
	t.subMu.Lock()
	if t.subs == nil {
		t.subs = map[*Subscription]struct{}{}
	}
	t.subs[sub] = struct{}{}
	t.subMu.Unlock()
	return sub
}

// publish hands the streams of one applied WAL record to the tenant's
// subscribers. Entries point into head slabs, which are never written
// again, so subscribers may keep them.
func (t *tenantDB) publish(streams []Stream, heads func(i int) []chunk.Entry) {
	t.subMu.Lock()
	defer t.subMu.Unlock()
	if len(t.subs) == 0 {
		return
	}
	for sub := range t.subs {
		var batch []Stream
		n := 0
		for i, st := range streams {
			if labels.MatchLabels(st.Labels, sub.matchers) {
				es := heads(i)
				if len(es) > 0 {
					batch = append(batch, Stream{Labels: st.Labels, Entries: es})
					n += len(es)
				}
			}
		}
		if len(batch) == 0 {
			continue
		}
		select {
		case sub.c <- batch:
		default:
			sub.dropped.Add(int64(n))
		}
	}
}
