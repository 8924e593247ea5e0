package query

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tracing"
)

// Batch is what StreamLogs hands over while a log scan runs: entries that
// are certain to be in the final answer, and how far the scan has come.
//
// Every entry of a batch comes after (in the query's direction) every
// entry of the batches before it, so that concatenating the batches'
// entries stream by stream gives the answer Logs gives (up to the order
// of entries with equal timestamps, and which of several entries at the
// limit's boundary timestamp are kept, which Logs does not fix either).
type Batch struct {
	// Streams are the batch's entries by result stream, streams in label
	// order, entries in the query's direction; empty in a batch that only
	// reports progress.
	Streams  []StreamResult
	Progress Progress
}

// Progress is the state of a streaming scan when a batch was cut.
type Progress struct {
	// Stats are the running counts; EntriesReturned counts the entries
	// sent so far, ExecTime the time since the scan started. Streams and
	// Duplicates are filled in the last batch only.
	Stats Stats
	// SourcesTotal are the chunks and unflushed head snapshots the
	// selectors and the time range chose; SourcesDone those scanned or
	// pruned by their filters; SourcesSkipped those never read because
	// the answer was already full of better entries (the limit).
	SourcesTotal   int
	SourcesDone    int
	SourcesSkipped int
	// ChunksDone are the stored chunks among SourcesDone; the stored
	// chunks selected are Stats.ChunksRef.
	ChunksDone int64
	// Start and End are the query's range, [Start, End) in Unix ns.
	Start, End int64
	// CoveredFrom and CoveredTo (Unix ns, [from, to)) are the part of the
	// query's range that is decided: every matching entry in it has been
	// sent or cannot be in the answer. A backward scan covers from the end
	// towards the start, a forward one from the start towards the end.
	// Once the limit is reached the covered part ends at the last entry
	// sent, as the rest of the range was not searched.
	CoveredFrom, CoveredTo int64
	// LimitReached tells that the answer holds Limit entries: there may
	// be more matching entries in the rest of the range.
	LimitReached bool
	// Done is set on the last batch.
	Done bool
}

// streamInterval is the least time between two batches once the first
// batch with entries is out; earlier batches go as soon as they have
// entries, so that the first results are not held back.
var streamInterval = 100 * time.Millisecond

type sourceHookKey struct{}

// WithSourceHook returns a context under which StreamLogs calls hook
// before a worker scans a source, with the source's place in scan order
// and the number of sources. It is for tests, here and in the packages
// that carry batches to clients, that must prove that results leave
// before the scan ends without relying on timing: a hook that holds the
// last source until the first batch has arrived only returns if the
// batch came first.
func WithSourceHook(ctx context.Context, hook func(i, n int)) context.Context {
	return context.WithValue(ctx, sourceHookKey{}, hook)
}

// StreamLogs runs a log query as Logs does (the same sources, filters,
// parallel workers and early termination at the limit) and calls fn with
// batches of the answer as soon as they are certain, then once more with
// Progress.Done set; it returns the whole answer, as Logs would.
//
// The sources are scanned in the query's direction (newest first for a
// backward query). Once every source up to some point in that order is
// done, no source left can hold an entry newer (older, forward) than the
// next source's newest (oldest) entry, so the kept entries beyond it are
// final: they go out in the next batch. fn runs on the calling goroutine
// while the workers scan on; an error from fn, or the end of ctx, stops
// the workers at their next block and is returned.
func (e *Engine) StreamLogs(ctx context.Context, req LogRequest, fn func(*Batch) error) (res *LogResult, err error) {
	ctx, span := tracing.Start(ctx, "query.stream_logs")
	defer func() {
		if res != nil {
			span.SetAttributes(statsAttributes(&res.Stats)...)
		}
		tracing.End(span, err)
	}()
	start := time.Now()
	if req.Limit <= 0 {
		return nil, fmt.Errorf("limit must be positive")
	}
	s := &streamScan{req: &req, start: start, fn: fn}
	if req.End > req.Start {
		s.streams = e.Store.Select(req.Tenant, req.Matchers, req.Start, req.End)
	}
	for i := range s.streams {
		for j := range s.streams[i].Chunks {
			ref := &s.streams[i].Chunks[j]
			s.sources = append(s.sources, source{stream: i, minT: ref.MinTime, maxT: ref.MaxTime, ref: ref})
		}
		if h := s.streams[i].Head; len(h) > 0 {
			s.sources = append(s.sources, source{stream: i, minT: h[0].Timestamp, maxT: h[len(h)-1].Timestamp, head: h})
		}
		s.stats.ChunksRef += int64(len(s.streams[i].Chunks))
	}
	if req.Direction == Forward {
		slices.SortFunc(s.sources, func(a, b source) int { return cmpInt64(a.minT, b.minT) })
	} else {
		slices.SortFunc(s.sources, func(a, b source) int { return cmpInt64(b.maxT, a.maxT) })
	}
	s.done = make([]bool, len(s.sources))
	s.stopAt = len(s.sources)
	s.sentTo = edge(req.Direction) // nothing is sent yet
	s.lastEmit = start
	s.col = newCollector(req.Limit, req.Direction)
	s.wake = make(chan struct{}, 1)
	return s.run(ctx, e)
}

// streamScan is the state of one StreamLogs call.
type streamScan struct {
	req     *LogRequest
	start   time.Time
	fn      func(*Batch) error
	streams []store.StreamData
	sources []source
	col     *collector

	mu sync.Mutex
	// done marks the finished sources; prefix is the length of the
	// leading run of decided sources: done, or at or past stopAt, the
	// first source a worker found could not improve the answer (the
	// sources after it, being ordered, cannot either).
	done       []bool
	prefix     int
	stopAt     int
	nDone      int
	chunksDone int64
	stats      Stats // running; a source's counts are added when it is done

	// The rest belongs to the goroutine that calls fn.
	wake        chan struct{}
	sentTo      int64 // frontier of the last batch sent: entries beyond it are out
	nSent       int64
	lastEmit    time.Time
	lastDone    int
	lastSkipped int
}

// run starts the workers and sends batches until they are done.
func (s *streamScan) run(parent context.Context, e *Engine) (*LogResult, error) {
	par := e.Parallelism
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	plan := newScanPlan(s.req)
	hook, _ := parent.Value(sourceHookKey{}).(func(i, n int))
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local Stats
			sc := newScanner(e, s.req, plan, s.col, &local, s.streams)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(s.sources) || ctx.Err() != nil {
					return
				}
				src := &s.sources[i]
				if s.col.cannotImprove(src.minT, src.maxT) {
					s.skipFrom(i)
					return
				}
				if hook != nil {
					hook(i, len(s.sources))
				}
				local = Stats{}
				if err := sc.scan(ctx, src); err != nil {
					errOnce.Do(func() { runErr = err; cancel() })
					return
				}
				s.finish(i, &local)
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var tick <-chan time.Time
loop:
	for {
		select {
		case <-s.wake:
		case <-tick:
			tick = nil
		case <-workersDone:
			break loop
		case <-ctx.Done():
			break loop
		}
		b, f, changed := s.cut(false)
		if !changed || f == past(s.req.Direction) {
			// Everything is decided: the workers are about to end, and
			// the last batch, cut then, says so.
			continue
		}
		// The first entries go at once; after them, and for progress
		// alone, at most one batch per streamInterval, so that a scan of
		// many small chunks does not become a message per chunk.
		if wait := streamInterval - time.Since(s.lastEmit); wait > 0 && (s.nSent > 0 || len(b.Streams) == 0) {
			if tick == nil {
				timer.Reset(wait)
				tick = timer.C
			}
			continue
		}
		s.commit(b, f)
		if err := s.fn(b); err != nil {
			cancel()
			<-workersDone
			return nil, err
		}
	}
	<-workersDone
	if runErr != nil {
		return nil, runErr
	}
	if err := parent.Err(); err != nil {
		return nil, err
	}
	b, f, _ := s.cut(true)
	s.commit(b, f)
	res := &LogResult{Streams: s.col.result(s.req.Direction)}
	st := &b.Progress.Stats
	st.Duplicates = s.col.dups
	st.Streams = int64(len(res.Streams))
	res.Stats = *st
	if err := s.fn(b); err != nil {
		return nil, err
	}
	return res, nil
}

// finish records a scanned source and wakes the sender when the decided
// prefix grew.
func (s *streamScan) finish(i int, st *Stats) {
	s.mu.Lock()
	s.done[i] = true
	s.nDone++
	if s.sources[i].ref != nil {
		s.chunksDone++
	}
	s.stats.add(*st)
	grew := s.advance()
	s.mu.Unlock()
	if grew {
		s.signal()
	}
}

// skipFrom records that the sources from i on cannot improve the answer.
func (s *streamScan) skipFrom(i int) {
	s.mu.Lock()
	s.stopAt = min(s.stopAt, i)
	grew := s.advance()
	s.mu.Unlock()
	if grew {
		s.signal()
	}
}

// advance extends the decided prefix; called with s.mu held.
func (s *streamScan) advance() bool {
	old := s.prefix
	for s.prefix < len(s.sources) && (s.done[s.prefix] || s.prefix >= s.stopAt) {
		s.prefix++
	}
	return s.prefix != old
}

func (s *streamScan) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// edge is the timestamp before the first one of the query's direction:
// every entry is beyond it.
func edge(dir Direction) int64 {
	if dir == Forward {
		return math.MinInt64
	}
	return math.MaxInt64
}

// past is the timestamp after the last one of the query's direction: no
// entry is beyond it.
func past(dir Direction) int64 {
	if dir == Forward {
		return math.MaxInt64
	}
	return math.MinInt64
}

// frontier is the timestamp beyond which (after it, in the query's
// direction) every kept entry is final: the newest timestamp (oldest,
// forward) of the first undecided source. Called with s.mu held.
func (s *streamScan) frontier() int64 {
	if s.prefix >= len(s.sources) {
		return past(s.req.Direction)
	}
	if s.req.Direction == Forward {
		return s.sources[s.prefix].minT
	}
	return s.sources[s.prefix].maxT
}

// beyond reports whether ts comes before f in the query's direction.
func (s *streamScan) beyond(ts, f int64) bool {
	if s.req.Direction == Forward {
		return ts < f
	}
	return ts > f
}

// cut builds the next batch: the kept entries between the last batch's
// frontier and the current one, f. changed is false when neither entries
// nor progress moved since the last batch. With final set, every kept
// entry not yet sent goes.
func (s *streamScan) cut(final bool) (b *Batch, f int64, changed bool) {
	s.mu.Lock()
	f = s.frontier()
	if final {
		f = past(s.req.Direction)
	}
	p := Progress{
		Stats:        s.stats,
		SourcesTotal: len(s.sources),
		SourcesDone:  s.nDone,
		ChunksDone:   s.chunksDone,
		Start:        s.req.Start,
		End:          max(s.req.End, s.req.Start),
		Done:         final,
	}
	for i := s.stopAt; i < len(s.sources); i++ {
		if !s.done[i] {
			p.SourcesSkipped++
		}
	}
	s.mu.Unlock()
	if !final && f == s.sentTo && p.SourcesDone == s.lastDone && p.SourcesSkipped == s.lastSkipped {
		return nil, f, false
	}
	// A kept entry beyond f is final: whatever the sources still to come
	// hold lies at or behind f, so it cannot displace it, and what the
	// collector evicted was never beyond f. So reading the collector now,
	// while the workers go on adding to it, picks exactly the final
	// entries between the two frontiers.
	var picked []heldEntry
	s.col.mu.Lock()
	for _, it := range s.col.h.items {
		if ts := it.e.Timestamp; !s.beyond(ts, s.sentTo) && (final || s.beyond(ts, f)) {
			picked = append(picked, it)
		}
	}
	full := len(s.col.h.items) >= s.col.limit
	worst := int64(0)
	if full {
		worst = s.col.h.items[0].e.Timestamp
	}
	s.col.mu.Unlock()
	p.Stats.EntriesReturned = s.nSent + int64(len(picked))
	p.Stats.ExecTime = time.Since(s.start)
	p.LimitReached = full && p.Stats.EntriesReturned >= int64(s.req.Limit)
	p.CoveredFrom, p.CoveredTo = s.covered(f, p.LimitReached, worst)
	return &Batch{Streams: groupHeld(picked, s.req.Direction), Progress: p}, f, true
}

// commit records a batch about to be sent.
func (s *streamScan) commit(b *Batch, f int64) {
	s.sentTo = f
	s.nSent = b.Progress.Stats.EntriesReturned
	s.lastDone = b.Progress.SourcesDone
	s.lastSkipped = b.Progress.SourcesSkipped
	s.lastEmit = time.Now()
}

// covered is the decided part of [Start, End) for frontier f. Once the
// limit is reached it ends at the worst entry kept.
func (s *streamScan) covered(f int64, limited bool, worst int64) (int64, int64) {
	start, end := s.req.Start, s.req.End
	if end < start {
		end = start
	}
	if s.req.Direction == Forward {
		to := f // entries at f are not decided yet
		if limited {
			to = worst + 1
		}
		return start, min(max(to, start), end)
	}
	from := f
	if f != math.MaxInt64 {
		from = f + 1
	}
	if limited {
		from = worst
	}
	return max(min(from, end), start), end
}

// groupHeld sorts entries in the direction and groups them by result
// stream, streams in label order, as collector.result does.
func groupHeld(items []heldEntry, dir Direction) []StreamResult {
	if len(items) == 0 {
		return nil
	}
	slices.SortStableFunc(items, func(a, b heldEntry) int {
		if dir == Forward {
			return cmpInt64(a.e.Timestamp, b.e.Timestamp)
		}
		return cmpInt64(b.e.Timestamp, a.e.Timestamp)
	})
	idx := map[uint64]int{}
	var out []StreamResult
	for _, it := range items {
		i, ok := idx[it.key.group]
		if !ok {
			i = len(out)
			idx[it.key.group] = i
			out = append(out, StreamResult{Labels: it.labels})
		}
		out[i].Entries = append(out[i].Entries, it.e)
	}
	slices.SortFunc(out, func(a, b StreamResult) int { return labels.Compare(a.Labels, b.Labels) })
	return out
}

// StreamQuery parses a log query and runs it with StreamLogs. Metric
// queries are refused: their results are not lines that can go out early.
func (e *Engine) StreamQuery(ctx context.Context, p Params, fn func(*Batch) error) (*LogResult, error) {
	expr, err := logql.ParseExpr(p.Query)
	if err != nil {
		return nil, err
	}
	sel, ok := expr.(*logql.LogSelectorExpr)
	if !ok {
		return nil, userError("streaming search needs a log query, not a metric query: %s", p.Query)
	}
	pl, err := compilePipeline(sel)
	if err != nil {
		return nil, err
	}
	return e.StreamLogs(ctx, LogRequest{
		Tenant:    p.Tenant,
		Matchers:  sel.Matchers,
		Needles:   logql.RequiredNeedles(sel, minNeedle),
		Pipeline:  pl,
		Start:     p.Start.UnixNano(),
		End:       p.End.UnixNano(),
		Limit:     p.Limit,
		Direction: p.Direction,
	}, fn)
}
