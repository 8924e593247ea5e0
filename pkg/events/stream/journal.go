package stream

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/pkg/events"
)

// Default bounds of a journal. 10,000 events cover minutes of a busy
// server (an import reports progress about once a second per run, a
// search two events), long enough for a proxy cut or a client restart;
// 16 MiB bounds the memory when events are unusually large (a search
// event carries its query text).
const (
	DefaultJournalEvents = 10_000
	DefaultJournalBytes  = 16 << 20
)

// entryOverhead is what an entry costs besides its encoded event and
// match key: the entry itself, the key's Event and payload structs and
// the slice and string headers, rounded up.
const entryOverhead = 256

// JournalOptions configure a journal.
type JournalOptions struct {
	// MaxEvents bounds the number of events kept (default
	// DefaultJournalEvents).
	MaxEvents int
	// MaxBytes bounds their size, counted as the encoded event plus a
	// fixed per-event overhead (default DefaultJournalBytes). The newest
	// event is kept even when it alone is larger.
	MaxBytes int64
	// Epoch names this journal's lifetime in event IDs; empty takes
	// NewEpoch(). Tests set it.
	Epoch string
	Log   *slog.Logger
}

// Journal keeps the recent events of the bus, each numbered by a
// server-wide sequence, so that the event stream can serve every client
// from one subscription and replay to a client what it missed while it
// reconnected. Its one subscriber takes every event from the bus from
// the moment StartJournal returns; the oldest events leave when a bound
// is reached.
type Journal struct {
	epoch     string
	maxEvents int
	maxBytes  int64
	log       *slog.Logger

	mu sync.Mutex
	// ring holds the retained events, oldest at head; count of them.
	ring  []entry
	head  int
	count int
	bytes int64
	// next is the sequence the next event gets; the retained events are
	// next-count .. next-1.
	next uint64
	// wake is closed (and replaced) when an event arrives, to wake the
	// readers waiting for one.
	wake chan struct{}

	done   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// entry is a retained event: its sequence, its encoding and what the
// filters need of it.
type entry struct {
	seq  uint64
	data []byte
	// key is the event without its payload but for the workspace names:
	// events.Filter.Match reads nothing else.
	key *events.Event
	typ events.Type
	// lost is the number of bus events the journal's own subscription
	// lost right before this one; every reader passing this entry
	// reports them dropped.
	lost int64
	size int64
}

// journalLost counts the bus events the journal's subscription lost (the
// subscriber metric every bus subscriber of the server exports).
var journalLost = metrics.GetOrCreateCounter(`logsift_events_subscriber_dropped_total{subscriber="journal"}`)

// StartJournal subscribes to every event on bus and keeps them until ctx
// ends, Close is called or the bus closes.
func StartJournal(ctx context.Context, bus events.Bus, o JournalOptions) (*Journal, error) {
	j := newJournal(o)
	ctx, j.cancel = context.WithCancel(ctx)
	sub, err := bus.Subscribe(ctx)
	if err != nil {
		j.cancel()
		return nil, fmt.Errorf("event journal: subscribe: %w", err)
	}
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		defer close(j.done)
		defer sub.Close()
		var seen int64
		for e := range sub.C {
			var lost int64
			if d := sub.Dropped(); d > seen {
				lost, seen = d-seen, d
				journalLost.Add(int(lost))
				j.log.Warn("event journal: the bus dropped events for the journal", "dropped", lost)
			}
			j.append(e, lost)
		}
	}()
	return j, nil
}

func newJournal(o JournalOptions) *Journal {
	j := &Journal{
		epoch: o.Epoch, maxEvents: o.MaxEvents, maxBytes: o.MaxBytes, log: o.Log,
		next: 1, wake: make(chan struct{}), done: make(chan struct{}), cancel: func() {},
	}
	if j.epoch == "" {
		j.epoch = NewEpoch()
	}
	if j.maxEvents <= 0 {
		j.maxEvents = DefaultJournalEvents
	}
	if j.maxBytes <= 0 {
		j.maxBytes = DefaultJournalBytes
	}
	if j.log == nil {
		j.log = slog.Default()
	}
	// The ring grows as events come (growLocked), up to maxEvents: an
	// idle server does not hold the whole bound.
	return j
}

// Close stops the journal's subscriber; readers see the journal end.
func (j *Journal) Close() error {
	j.cancel()
	j.wg.Wait()
	return nil
}

// Epoch is the epoch of this journal's IDs.
func (j *Journal) Epoch() string { return j.epoch }

// Done is closed when the journal stops taking events.
func (j *Journal) Done() <-chan struct{} { return j.done }

// Stats are a journal's current size.
type Stats struct {
	Events int
	Bytes  int64
	// First and Last are the sequences of the oldest and newest retained
	// events (First > Last when none is).
	First, Last uint64
}

// Stats reports what the journal holds.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Stats{Events: j.count, Bytes: j.bytes, First: j.next - uint64(j.count), Last: j.next - 1}
}

// matchKey keeps what events.Filter.Match reads of an event: tenant,
// type and workspace names.
func matchKey(e *events.Event) *events.Event {
	k := &events.Event{Type: e.Type, Tenant: e.Tenant}
	switch {
	case e.Import != nil:
		k.Import = &events.Import{Workspace: e.Import.Workspace}
	case e.Workspace != nil:
		k.Workspace = &events.Workspace{Name: e.Workspace.Name, OldName: e.Workspace.OldName}
	}
	return k
}

// append numbers e and keeps it, evicting the oldest events beyond the
// bounds. An event that does not encode is counted as lost by the next
// one: a reader cannot be sent it either.
func (j *Journal) append(e *events.Event, lost int64) {
	data, err := e.Marshal()
	if err != nil {
		j.log.Error("event journal: encode event", "type", e.Type, "err", err)
		return
	}
	k := matchKey(e)
	en := entry{data: data, key: k, typ: e.Type, lost: lost,
		size: int64(len(data)+len(k.Tenant)+len(k.Type)+len(k.WorkspaceName())) + entryOverhead}
	if k.Workspace != nil {
		en.size += int64(len(k.Workspace.OldName))
	}
	j.mu.Lock()
	for j.count > 0 && (j.count >= j.maxEvents || j.bytes+en.size > j.maxBytes) {
		j.evictLocked()
	}
	en.seq = j.next
	j.next++
	if j.count == len(j.ring) {
		j.growLocked()
	}
	j.ring[(j.head+j.count)%len(j.ring)] = en
	j.count++
	j.bytes += en.size
	wake := j.wake
	j.wake = make(chan struct{})
	j.mu.Unlock()
	close(wake)
}

// growLocked makes room for one more event in a ring whose slots are all
// taken (there are fewer than maxEvents of them: evictLocked runs first
// otherwise), doubling it up to maxEvents.
func (j *Journal) growLocked() {
	n := min(max(2*len(j.ring), 16), j.maxEvents)
	ring := make([]entry, n)
	for i := 0; i < j.count; i++ {
		ring[i] = j.ring[(j.head+i)%len(j.ring)]
	}
	j.ring, j.head = ring, 0
}

func (j *Journal) evictLocked() {
	old := &j.ring[j.head]
	j.bytes -= old.size
	*old = entry{} // let the event go
	j.head = (j.head + 1) % len(j.ring)
	j.count--
}

// position is the sequence of the newest event: a reader starting now
// continues after it.
func (j *Journal) position() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next - 1
}

// read copies into buf (up to its capacity) the retained events after
// sequence after. skipped is how many events after it the journal no
// longer holds; wake is closed when an event arrives after those
// returned.
func (j *Journal) read(after uint64, buf []entry) (out []entry, skipped uint64, wake <-chan struct{}) {
	out = buf[:0]
	j.mu.Lock()
	defer j.mu.Unlock()
	first := j.next - uint64(j.count)
	if after+1 < first {
		skipped = first - (after + 1)
		after = first - 1
	}
	for s := after + 1; s < j.next && len(out) < cap(out); s++ {
		out = append(out, j.ring[(j.head+int(s-first))%len(j.ring)])
	}
	return out, skipped, j.wake
}
