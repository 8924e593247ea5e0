// Package query plans and runs queries against the store: it selects
// streams by their label postings, chunks by time, prunes chunks with their
// substring filters, scans what is left on every core, and merges the
// matches in the requested direction, stopping early at the limit.
package query

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/pipeline"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tracing"
)

// Direction is the order of log results.
type Direction int

// Loki's two directions: forward is oldest first, backward newest first.
const (
	Backward Direction = iota
	Forward
)

// LogRequest is a planned log query.
type LogRequest struct {
	Tenant   string
	Matchers []*labels.Matcher
	// Needles is a conjunction of clauses, each a disjunction: a chunk can
	// be skipped when, for some clause, its filter rules out every needle.
	Needles []logql.Clause
	// Pipeline is the compiled log pipeline; nil keeps every entry as it is.
	Pipeline  *pipeline.Pipeline
	Start     int64 // inclusive, ns
	End       int64 // exclusive, ns
	Limit     int
	Direction Direction
}

// Entry is one result entry.
type Entry struct {
	Timestamp int64
	Line      []byte
	Metadata  labels.Labels // structured metadata
	Parsed    labels.Labels // labels the pipeline extracted or formatted
}

// StreamResult is the entries of one result stream, in the requested
// direction. Labels are the stream labels after the pipeline (drop, keep
// and label_format can change them); each entry carries its structured
// metadata and parsed labels apart, as Loki's categorized responses do.
type StreamResult struct {
	Labels  labels.Labels
	Entries []Entry
}

// LogResult is the answer to a log query.
type LogResult struct {
	Streams []StreamResult
	Stats   Stats
}

// Stats are counted as Loki counts them, so its `stats` block can be
// filled in.
type Stats struct {
	ChunksRef          int64 // chunks in the selected streams and range
	ChunksPruned       int64 // ruled out by their filters
	ChunksDecoded      int64
	BlocksPruned       int64
	CompressedBytes    int64
	DecompressedBytes  int64 // line bytes looked at in chunks
	DecompressedLines  int64
	HeadChunkBytes     int64
	HeadChunkLines     int64
	PostFilterLines    int64
	Duplicates         int64
	EntriesReturned    int64
	Streams            int64
	ExecTime           time.Duration
	StoreFilterReadDur time.Duration

	// MetadataSkipped counts blocks whose structured metadata a metric
	// query left undecoded, none of it able to change the answer (not a
	// figure Loki reports).
	MetadataSkipped int64
}

// Engine runs queries against a store.
type Engine struct {
	Store       *store.Store
	Parallelism int // default GOMAXPROCS
}

// source is one unit of scanning work: a stored chunk or a head snapshot.
type source struct {
	stream     int
	minT, maxT int64
	ref        *store.ChunkRef
	head       []chunk.Entry
}

// Logs runs a log query.
func (e *Engine) Logs(ctx context.Context, req LogRequest) (res *LogResult, err error) {
	ctx, span := tracing.Start(ctx, "query.logs")
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
	if req.End <= req.Start {
		return &LogResult{}, nil
	}
	streams := e.Store.Select(req.Tenant, req.Matchers, req.Start, req.End)
	var sources []source
	var st Stats
	for i := range streams {
		for j := range streams[i].Chunks {
			ref := &streams[i].Chunks[j]
			sources = append(sources, source{stream: i, minT: ref.MinTime, maxT: ref.MaxTime, ref: ref})
		}
		if h := streams[i].Head; len(h) > 0 {
			sources = append(sources, source{stream: i, minT: h[0].Timestamp, maxT: h[len(h)-1].Timestamp, head: h})
		}
		st.ChunksRef += int64(len(streams[i].Chunks))
	}
	// Work in the order results are wanted, so that the limit can stop the
	// scan: once the collector is full, a source that starts after its
	// worst entry cannot improve the answer.
	if req.Direction == Forward {
		slices.SortFunc(sources, func(a, b source) int { return cmpInt64(a.minT, b.minT) })
	} else {
		slices.SortFunc(sources, func(a, b source) int { return cmpInt64(b.maxT, a.maxT) })
	}
	plan := newScanPlan(&req)
	col := newCollector(req.Limit, req.Direction)
	par := e.Parallelism
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	stats := make([]Stats, par)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func(ws *Stats) {
			defer wg.Done()
			sc := newScanner(e, &req, plan, col, ws, streams)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sources) || ctx.Err() != nil {
					return
				}
				src := &sources[i]
				if col.cannotImprove(src.minT, src.maxT) {
					// Sources are ordered, so no later one can improve either.
					return
				}
				if err := sc.scan(ctx, src); err != nil {
					errOnce.Do(func() { runErr = err; cancel() })
					return
				}
			}
		}(&stats[w])
	}
	wg.Wait()
	if runErr != nil {
		return nil, runErr
	}
	if err := parent.Err(); err != nil {
		return nil, err
	}
	for _, s := range stats {
		st.add(s)
	}
	res = &LogResult{Streams: col.result(req.Direction)}
	st.Duplicates = col.dups
	for _, s := range res.Streams {
		st.EntriesReturned += int64(len(s.Entries))
	}
	st.Streams = int64(len(res.Streams))
	st.ExecTime = time.Since(start)
	res.Stats = st
	return res, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Stats) add(o Stats) {
	s.ChunksPruned += o.ChunksPruned
	s.ChunksDecoded += o.ChunksDecoded
	s.BlocksPruned += o.BlocksPruned
	s.CompressedBytes += o.CompressedBytes
	s.DecompressedBytes += o.DecompressedBytes
	s.DecompressedLines += o.DecompressedLines
	s.HeadChunkBytes += o.HeadChunkBytes
	s.HeadChunkLines += o.HeadChunkLines
	s.PostFilterLines += o.PostFilterLines
	s.MetadataSkipped += o.MetadataSkipped
	s.StoreFilterReadDur += o.StoreFilterReadDur
}

// scanner is one worker's reusable state.
type scanner struct {
	e       *Engine
	req     *LogRequest
	plan    *scanPlan
	col     *collector
	stats   *Stats
	streams []store.StreamData
	buf     []byte
	fbuf    []byte
	bb      chunk.BlockBuffer
	hits    []hit
	hitIdx  []int
	// With a pipeline that does more than filter lines, each stream gets a
	// processor of this worker's pipeline worker, created on first use.
	pw    *pipeline.Worker
	sps   map[int]*pipeline.StreamPipeline
	arena []byte // kept lines of the current run, until the collector copies them
}

// hit is an entry that passed the pipeline, with its result stream.
type hit struct {
	group  uint64 // hash of the result stream labels
	labels labels.Labels
	e      Entry
}

func newScanner(e *Engine, req *LogRequest, plan *scanPlan, col *collector, st *Stats, streams []store.StreamData) *scanner {
	sc := &scanner{e: e, req: req, plan: plan, col: col, stats: st, streams: streams}
	if p := req.Pipeline; p != nil && !p.LineFilterOnly() {
		sc.pw = p.NewWorker()
		sc.sps = map[int]*pipeline.StreamPipeline{}
	}
	return sc
}

// process runs the pipeline on one entry in range and appends it to
// sc.hits when it is kept.
func (sc *scanner) process(stream int, e *chunk.Entry) {
	p := sc.req.Pipeline
	sd := &sc.streams[stream]
	if sc.pw == nil {
		if p != nil && !p.MatchLine(e.Line) {
			return
		}
		sc.hits = append(sc.hits, hit{group: sd.Hash, labels: sd.Labels, e: Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: e.Metadata}})
		return
	}
	sp := sc.sps[stream]
	if sp == nil {
		sp = sc.pw.ForStream(sd.Labels)
		sc.sps[stream] = sp
	}
	line, lr, keep := sp.Process(e.Timestamp, e.Line, e.Metadata)
	if !keep {
		return
	}
	// A formatted line lives in a buffer the next Process call reuses.
	start := len(sc.arena)
	sc.arena = append(sc.arena, line...)
	line = sc.arena[start:len(sc.arena):len(sc.arena)]
	sc.hits = append(sc.hits, hit{group: lr.Stream.Hash(), labels: lr.Stream, e: Entry{Timestamp: e.Timestamp, Line: line, Metadata: lr.StructuredMetadata, Parsed: lr.Parsed}})
}

func (sc *scanner) scan(ctx context.Context, src *source) error {
	if src.head != nil {
		for _, e := range src.head {
			sc.stats.HeadChunkBytes += int64(len(e.Line))
		}
		sc.stats.HeadChunkLines += int64(len(src.head))
		sc.offer(src.stream, src.head)
		return nil
	}
	ref := src.ref
	if len(sc.req.Needles) > 0 {
		t := time.Now()
		f, fb, err := sc.e.Store.ReadFilter(*ref, sc.fbuf)
		sc.fbuf = fb
		sc.stats.StoreFilterReadDur += time.Since(t)
		if err != nil {
			return fmt.Errorf("query: %w", err)
		}
		if !sc.plan.mayMatch(func(nd *chunk.Needle) bool { return f.MayContainNeedle(nd) }) {
			sc.stats.ChunksPruned++
			return nil
		}
	}
	c, b, err := sc.e.Store.ReadChunk(*ref, sc.buf)
	sc.buf = b
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	sc.stats.ChunksDecoded++
	sc.stats.CompressedBytes += int64(ref.Size)
	meta := c.Meta()
	filter := c.Filter()
	nb := len(meta.Blocks)
	for k := 0; k < nb; k++ {
		i := k
		if sc.req.Direction == Backward {
			i = nb - 1 - k
		}
		bm := meta.Blocks[i]
		if bm.MaxTime < sc.req.Start || bm.MinTime >= sc.req.End {
			continue
		}
		if sc.col.cannotImprove(bm.MinTime, bm.MaxTime) {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(sc.req.Needles) > 0 && !sc.plan.mayMatch(func(nd *chunk.Needle) bool { return filter.BlockMayContainNeedle(i, nd) }) {
			sc.stats.BlocksPruned++
			continue
		}
		es, err := c.ReadBlock(i, &sc.bb)
		if err != nil {
			return fmt.Errorf("query: chunk %x block %d: %w", ref.ID[:8], i, err)
		}
		sc.stats.DecompressedLines += int64(len(es))
		sc.stats.DecompressedBytes += int64(bm.RawBytes)
		if sc.plan.search != nil {
			sc.offerSearched(src.stream, es, sc.bb.Lines())
		} else {
			sc.offer(src.stream, es)
		}
	}
	return nil
}

// offer runs a time-sorted run of entries through the pipeline and hands
// the kept ones to the collector, which copies what it admits.
func (sc *scanner) offer(stream int, es []chunk.Entry) {
	req := sc.req
	search := sc.plan.search
	sc.hits = sc.hits[:0]
	// A line without the search string cannot pass: test it here, before
	// the pipeline's per-entry work.
	visit := func(e *chunk.Entry) {
		if e.Timestamp >= req.Start && e.Timestamp < req.End && (search == nil || bytes.Contains(e.Line, search)) {
			sc.process(stream, e)
		}
	}
	if req.Direction == Forward {
		for i := range es {
			visit(&es[i])
		}
	} else {
		for i := len(es) - 1; i >= 0; i-- {
			visit(&es[i])
		}
	}
	sc.flushHits()
}

func (sc *scanner) flushHits() {
	sc.stats.PostFilterLines += int64(len(sc.hits))
	if len(sc.hits) > 0 {
		sc.col.add(sc.hits)
	}
	sc.arena = sc.arena[:0]
}

// scanPlan is what every scan worker shares: the needles compiled for the
// chunk filters, and the substring used to search whole blocks at once.
type scanPlan struct {
	clauses [][]*chunk.Needle
	// search is a substring every kept line contains, case-sensitively;
	// nil when the query has none. A block's lines are searched for it in
	// one pass and only the lines it hits go through the pipeline.
	search []byte
}

func newScanPlan(req *LogRequest) *scanPlan {
	p := &scanPlan{}
	for _, cl := range req.Needles {
		cc := make([]*chunk.Needle, len(cl))
		for i, n := range cl {
			cc[i] = chunk.CompileNeedle(n.Text, n.Fold)
		}
		p.clauses = append(p.clauses, cc)
		if len(cl) == 1 && !cl[0].Fold && len(cl[0].Text) > len(p.search) {
			p.search = cl[0].Text
		}
	}
	return p
}

// mayMatch evaluates the needle clauses against a filter.
func (p *scanPlan) mayMatch(may func(*chunk.Needle) bool) bool {
	for _, clause := range p.clauses {
		any := false
		for _, n := range clause {
			if may(n) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	return true
}

// offerSearched is offer for a decoded block whose lines lie back to back
// in buf, offering only the lines searchLines finds.
func (sc *scanner) offerSearched(stream int, es []chunk.Entry, buf []byte) {
	req := sc.req
	found := searchLines(es, buf, sc.plan.search, sc.hitIdx[:0])
	n := 0
	for _, k := range found {
		if t := es[k].Timestamp; t >= req.Start && t < req.End {
			found[n] = k
			n++
		}
	}
	sc.hitIdx = found[:n]
	// The pipeline runs in the query's direction, so that a stage that
	// reuses its output buffer never sees entries out of order.
	sc.hits = sc.hits[:0]
	if req.Direction == Forward {
		for _, k := range sc.hitIdx {
			sc.process(stream, &es[k])
		}
	} else {
		for j := len(sc.hitIdx) - 1; j >= 0; j-- {
			sc.process(stream, &es[sc.hitIdx[j]])
		}
	}
	sc.flushHits()
}

func lineStart(e chunk.Entry, base uintptr) int {
	if len(e.Line) == 0 {
		return -1 // an empty line holds no match; -1 keeps it out of range
	}
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(e.Line))) - base)
}

func lineEnd(e chunk.Entry, base uintptr) int {
	if len(e.Line) == 0 {
		return -1
	}
	return lineStart(e, base) + len(e.Line)
}

// searchLines returns the entries of a decoded block whose line contains
// needle, found with one bytes.Index pass over the block's lines, which lie
// back to back in buf: lines without the needle cost no per-line work at
// all. Log and metric queries with a line filter both scan this way.
func searchLines(es []chunk.Entry, buf, needle []byte, hits []int) []int {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	k := 0
	for pos := 0; pos < len(buf); {
		i := bytes.Index(buf[pos:], needle)
		if i < 0 {
			break
		}
		hit := pos + i
		for k < len(es) && lineEnd(es[k], base) <= hit {
			k++
		}
		if k == len(es) {
			break
		}
		start, end := lineStart(es[k], base), lineEnd(es[k], base)
		if hit < start || hit+len(needle) > end {
			pos = hit + 1 // across two lines: a match of neither
			continue
		}
		hits = append(hits, k)
		pos = end
		k++
	}
	return hits
}

// collector keeps the best `limit` entries seen so far: the oldest for
// forward queries, the newest for backward ones. It drops exact duplicates
// (same result stream, timestamp, line and metadata), as Loki does for
// replicated writes; this also makes a client's resend after a lost
// acknowledgement harmless.
type collector struct {
	mu    sync.Mutex
	limit int
	dir   Direction
	h     entryHeap
	seen  map[dedupKey]struct{}
	bound atomic.Int64 // worst timestamp kept once full
	full  atomic.Bool
	dups  int64
}

type dedupKey struct {
	group uint64
	ts    int64
	line  uint64
}

type heldEntry struct {
	key    dedupKey
	labels labels.Labels
	e      Entry
}

// entryHeap has the worst kept entry on top: the newest for forward
// queries, the oldest for backward ones.
type entryHeap struct {
	items []heldEntry
	dir   Direction
}

func (h *entryHeap) Len() int { return len(h.items) }
func (h *entryHeap) Less(i, j int) bool {
	a, b := h.items[i].e.Timestamp, h.items[j].e.Timestamp
	if h.dir == Forward {
		return a > b
	}
	return a < b
}
func (h *entryHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *entryHeap) Push(x any)    { h.items = append(h.items, x.(heldEntry)) }
func (h *entryHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}

func newCollector(limit int, dir Direction) *collector {
	return &collector{limit: limit, dir: dir, h: entryHeap{dir: dir}, seen: map[dedupKey]struct{}{}}
}

// better reports whether ts would beat the worst kept timestamp w.
func (c *collector) better(ts, w int64) bool {
	if c.dir == Forward {
		return ts < w
	}
	return ts > w
}

// cannotImprove reports whether a source spanning [minT, maxT] can no
// longer contribute, because the collector is full of better entries.
func (c *collector) cannotImprove(minT, maxT int64) bool {
	if !c.full.Load() {
		return false
	}
	w := c.bound.Load()
	if c.dir == Forward {
		return minT > w
	}
	return maxT < w
}

// contentHash identifies an entry's line and metadata for deduplication.
func contentHash(e *Entry) uint64 {
	if len(e.Metadata) == 0 {
		return xxhash.Sum64(e.Line)
	}
	d := xxhash.New()
	_, _ = d.Write(e.Line)
	for _, m := range e.Metadata {
		_, _ = d.Write([]byte{0})
		_, _ = d.WriteString(m.Name)
		_, _ = d.Write([]byte{1})
		_, _ = d.WriteString(m.Value)
	}
	return d.Sum64()
}

// add takes hits that come in the query's direction.
func (c *collector) add(hits []hit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range hits {
		h := &hits[i]
		if len(c.h.items) >= c.limit && !c.better(h.e.Timestamp, c.h.items[0].e.Timestamp) {
			// Hits come in the query's direction, so the rest are worse too.
			break
		}
		k := dedupKey{group: h.group, ts: h.e.Timestamp, line: contentHash(&h.e)}
		if _, dup := c.seen[k]; dup {
			c.dups++
			continue
		}
		c.seen[k] = struct{}{}
		held := heldEntry{key: k, labels: h.labels, e: Entry{
			Timestamp: h.e.Timestamp,
			Line:      slices.Clone(h.e.Line),
			Metadata:  cloneLabels(h.e.Metadata),
			Parsed:    h.e.Parsed, // shared, read-only results of the pipeline
		}}
		if len(c.h.items) < c.limit {
			heap.Push(&c.h, held)
		} else {
			old := c.h.items[0]
			delete(c.seen, old.key)
			c.h.items[0] = held
			heap.Fix(&c.h, 0)
		}
	}
	if len(c.h.items) >= c.limit {
		c.bound.Store(c.h.items[0].e.Timestamp)
		c.full.Store(true)
	}
}

// cloneLabels copies a label set and its strings: metadata read from a
// block points into the block's buffer, which the next block reuses.
func cloneLabels(ls labels.Labels) labels.Labels {
	if len(ls) == 0 {
		return nil
	}
	out := make(labels.Labels, len(ls))
	for i, l := range ls {
		out[i] = labels.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
	}
	return out
}

// result groups the kept entries by result stream, each in the query's
// direction, streams in label order.
func (c *collector) result(dir Direction) []StreamResult {
	idx := map[uint64]int{}
	var out []StreamResult
	for _, it := range c.h.items {
		i, ok := idx[it.key.group]
		if !ok {
			i = len(out)
			idx[it.key.group] = i
			out = append(out, StreamResult{Labels: it.labels})
		}
		out[i].Entries = append(out[i].Entries, it.e)
	}
	for _, s := range out {
		slices.SortStableFunc(s.Entries, func(a, b Entry) int {
			if dir == Forward {
				return cmpInt64(a.Timestamp, b.Timestamp)
			}
			return cmpInt64(b.Timestamp, a.Timestamp)
		})
	}
	slices.SortFunc(out, func(a, b StreamResult) int { return labels.Compare(a.Labels, b.Labels) })
	return out
}
