package query

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/pipeline"
	"github.com/logsift/logsift/pkg/store"
)

// rangeOptions adapt a range aggregation to the expression around it.
type rangeOptions struct {
	noLabels    bool            // the caller sums every series into one
	grouping    *logql.Grouping // the caller sums by/without these
	seriesLimit int             // > 0: fail past this many series
}

// fastMode says what a range aggregation can learn without decompressing
// lines: with no pipeline, every entry counts 1 (count_over_time, rate,
// absent_over_time) or its line length (bytes_over_time, bytes_rate), so
// entry counts and byte sizes of whole chunks and blocks, and timestamps,
// answer it.
type fastMode uint8

const (
	fastNone fastMode = iota
	fastCount
	fastBytes
)

// rangeScan is one range aggregation run over the store on every core.
//
// Duplicates: a query with a pipeline drops exact duplicates (same stream,
// timestamp, line and metadata) as log queries do: within a chunk or head
// by comparing the entries of one timestamp, and across the chunks and
// heads of a stream, where their time ranges overlap, through a shared
// set. The fast path never sees lines, so count_over_time, rate,
// bytes_over_time and the like without a pipeline count every stored entry,
// duplicates included. The store keeps duplicates only when a client
// resends entries after a lost acknowledgement (or after a crash), which
// is rare; dropping them at ingest would make both paths agree.
type rangeScan struct {
	ev      *evaluator
	r       *logql.RangeAggregationExpr
	x       *pipeline.SampleExtractor
	kind    accKind
	fast    fastMode
	dedup   bool
	g       *paneGrid
	streams []store.StreamData
	// metaFree[i]: the series of stream i's entries cannot depend on
	// structured metadata, so the fast path need not look at it.
	metaFree []bool
	overlaps [][]tspan // per stream: where its sources overlap
	// shared[i] holds the timestamps inside overlaps[i] that two sources
	// of stream i hold (collide.go); only entries with those can be
	// duplicates across sources. With sharedKnown[i] false (too many
	// entries to look) every entry inside the overlaps is checked.
	shared      [][]int64
	sharedKnown []bool
	plan        *scanPlan // nil without needles
	dd          *dedupSet
	opts        rangeOptions
	budget      *memBudget
}

// tspan is an inclusive time range.
type tspan struct{ lo, hi int64 }

func (ev *evaluator) rangeAggregation(ctx context.Context, r *logql.RangeAggregationExpr, opts rangeOptions) (*matrix, error) {
	x, err := pipeline.NewSampleExtractorWith(r, pipeline.SampleOptions{Grouping: opts.grouping, NoLabels: opts.noLabels})
	if err != nil {
		return nil, &Error{Msg: err.Error(), Err: err}
	}
	off := int64(r.Range.Offset)
	ends := make([]int64, len(ev.steps))
	for j, t := range ev.steps {
		ends[j] = t - off
	}
	g := newPaneGrid(ends, int64(r.Range.Interval))
	sel := r.Range.Selector
	rs := &rangeScan{ev: ev, r: r, x: x, kind: kindOf(r), g: g, opts: opts, budget: ev.budget}
	switch {
	case x.CountOnly():
		rs.fast = fastCount
	case len(sel.Stages) == 0 && r.Range.Unwrap == nil && (r.Op == logql.RangeBytes || r.Op == logql.RangeBytesRate):
		rs.fast = fastBytes
	}
	rs.dedup = rs.fast == fastNone
	if needles := logql.RequiredNeedles(sel, minNeedle); len(needles) > 0 {
		rs.plan = newScanPlan(&LogRequest{Needles: needles})
	}
	// Samples lie in (b[0], b[last]]; Select takes [from, through).
	from, through := g.b[0]+1, g.b[len(g.b)-1]+1
	rs.streams = ev.e.Store.Select(ev.p.Tenant, sel.Matchers, from, through)
	sets, err := rs.run(ctx)
	if err != nil {
		return nil, err
	}
	set := sets[0]
	for _, o := range sets[1:] {
		set.mergeInto(o, rs.kind, ev.budget)
	}
	if err := ev.budget.err(); err != nil {
		return nil, err
	}
	f := &windowFunc{op: r.Op, kind: rs.kind, rangeSec: r.Range.Interval.Seconds()}
	if r.Param != nil {
		f.param = *r.Param
	}
	series := finalize(set.list, g, f, ev.par)
	var points int64
	for _, s := range series {
		points += int64(len(s.pts))
	}
	ev.budget.charge(points * int64(unsafe.Sizeof(spoint{})))
	if err := ev.budget.err(); err != nil {
		return nil, err
	}
	if r.Op == logql.RangeAbsent {
		return ev.absent(sel, series), nil
	}
	return &matrix{series: series}, nil
}

// absent is absent_over_time: 1 at the steps where the selector had no
// sample at all, with the labels its equality matchers name, as
// Prometheus' absent(): a name matched more than once or other than by
// equality is left out.
func (ev *evaluator) absent(sel *logql.LogSelectorExpr, series []*mseries) *matrix {
	present := make([]bool, len(ev.steps))
	for _, s := range series {
		for _, p := range s.pts {
			present[p.j] = true
		}
	}
	var ls labels.Labels
	drop := map[string]bool{}
	for _, m := range sel.Matchers {
		if m.Type == labels.MatchEqual && !ls.Has(m.Name) {
			ls = append(ls, labels.Label{Name: m.Name, Value: m.Value})
		} else {
			drop[m.Name] = true
		}
	}
	out := labels.Labels{}
	for _, l := range ls {
		if !drop[l.Name] {
			out = append(out, l)
		}
	}
	s := &mseries{labels: out.Sort()}
	for j, ok := range present {
		if !ok {
			s.pts = append(s.pts, spoint{j: j, v: 1})
		}
	}
	return &matrix{series: []*mseries{s}}
}

// run scans every source of the selected streams on every core and
// returns each worker's series.
func (rs *rangeScan) run(ctx context.Context) ([]*seriesSet, error) {
	ev := rs.ev
	var sources []source
	rs.metaFree = make([]bool, len(rs.streams))
	rs.overlaps = make([][]tspan, len(rs.streams))
	for i := range rs.streams {
		sd := &rs.streams[i]
		first := len(sources)
		for j := range sd.Chunks {
			ref := &sd.Chunks[j]
			sources = append(sources, source{stream: i, minT: ref.MinTime, maxT: ref.MaxTime, ref: ref})
		}
		if h := sd.Head; len(h) > 0 {
			sources = append(sources, source{stream: i, minT: h[0].Timestamp, maxT: h[len(h)-1].Timestamp, head: h})
		}
		ev.stats.ChunksRef += int64(len(sd.Chunks))
		rs.metaFree[i] = rs.seriesIgnoresMetadata(sd.Labels)
		if rs.dedup {
			rs.overlaps[i] = overlapSpans(sources[first:])
		}
	}
	if rs.dedup {
		rs.dd = newDedupSet(rs.budget)
		if err := rs.findShared(ctx, sources); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(sources, func(a, b source) int { return cmpInt64(a.minT, b.minT) })

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	par := min(ev.par, max(len(sources), 1))
	workers := make([]*scanWorker, par)
	for k := range workers {
		w := newScanWorker(rs)
		workers[k] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sources) || ctx.Err() != nil {
					return
				}
				err := w.scan(ctx, &sources[i])
				if err == nil {
					err = w.flushCharges()
				}
				if err != nil {
					errOnce.Do(func() { runErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, w := range workers {
		w.release()
	}
	if runErr != nil && parent.Err() == nil {
		return nil, runErr
	}
	if err := parent.Err(); err != nil {
		return nil, err
	}
	sets := make([]*seriesSet, len(workers))
	for k, w := range workers {
		ev.stats.add(w.st)
		ev.stats.Duplicates += w.st.Duplicates
		sets[k] = w.set
	}
	return sets, nil
}

// seriesIgnoresMetadata reports whether every entry of a stream with
// labels ls falls in the same series whatever structured metadata it
// carries: when the labels are summed away, or grouped by stream labels
// only (metadata named like a stream label becomes name_extracted).
func (rs *rangeScan) seriesIgnoresMetadata(ls labels.Labels) bool {
	switch g := rs.opts.grouping; {
	case rs.fast == fastNone:
		return false
	case rs.opts.noLabels:
		return true
	case g == nil || g.Without:
		return false
	default:
		for _, n := range g.Labels {
			if !ls.Has(n) {
				return false
			}
		}
		return true
	}
}

// overlapSpans returns the time ranges covered by two or more of the
// sources of one stream, merged.
func overlapSpans(srcs []source) []tspan {
	if len(srcs) < 2 {
		return nil
	}
	s := slices.Clone(srcs)
	slices.SortFunc(s, func(a, b source) int { return cmpInt64(a.minT, b.minT) })
	var out []tspan
	reach := s[0].maxT
	for _, src := range s[1:] {
		if src.minT <= reach {
			sp := tspan{src.minT, min(reach, src.maxT)}
			if n := len(out); n > 0 && sp.lo <= out[n-1].hi {
				out[n-1].hi = max(out[n-1].hi, sp.hi)
			} else {
				out = append(out, sp)
			}
		}
		reach = max(reach, src.maxT)
	}
	return out
}

func inSpans(sp []tspan, ts int64) bool {
	i, _ := slices.BinarySearchFunc(sp, ts, func(s tspan, t int64) int { return cmpInt64(s.hi, t) })
	return i < len(sp) && sp[i].lo <= ts
}

// dedupSet holds the entries seen where sources of a stream overlap; its
// keys count against the query's memory budget.
type dedupSet struct {
	budget *memBudget
	shards [16]struct {
		mu sync.Mutex
		m  map[dedupKey]struct{}
	}
}

func newDedupSet(b *memBudget) *dedupSet {
	d := &dedupSet{budget: b}
	for i := range d.shards {
		d.shards[i].m = map[dedupKey]struct{}{}
	}
	return d
}

// seen records k and reports whether it was there already.
func (d *dedupSet) seen(k dedupKey) bool {
	s := &d.shards[k.line&15]
	s.mu.Lock()
	_, dup := s.m[k]
	if !dup {
		s.m[k] = struct{}{}
	}
	s.mu.Unlock()
	if !dup {
		d.budget.charge(48) // key and map overhead
	}
	return dup
}

// dupRun finds duplicates among the entries of one timestamp within a
// source. The first entry of a run is hashed only when a second one with
// its timestamp arrives, so runs of one cost nothing.
type dupRun struct {
	ok     bool
	ts     int64
	first  *chunk.Entry
	hashes []uint64
}

func hashChunkEntry(e *chunk.Entry) uint64 {
	return contentHash(&Entry{Line: e.Line, Metadata: e.Metadata})
}

func (r *dupRun) dup(e *chunk.Entry) bool {
	if !r.ok || e.Timestamp != r.ts {
		r.ok, r.ts, r.first, r.hashes = true, e.Timestamp, e, r.hashes[:0]
		return false
	}
	r.settle()
	h := hashChunkEntry(e)
	if slices.Contains(r.hashes, h) {
		return true
	}
	r.hashes = append(r.hashes, h)
	return false
}

// settle hashes the run's first entry before its block buffer is reused.
func (r *dupRun) settle() {
	if r.first != nil {
		r.hashes = append(r.hashes, hashChunkEntry(r.first))
		r.first = nil
	}
}

func (r *dupRun) reset() { r.ok, r.first, r.hashes = false, nil, r.hashes[:0] }

// scanWorker is one goroutine's state.
type scanWorker struct {
	rs       *rangeScan
	st       Stats
	pw       *pipeline.Worker
	sxs      map[int]*pipeline.StreamSampleExtractor
	set      *seriesSet
	lastLR   *pipeline.LabelsResult
	lastAcc  *seriesAcc
	byResult map[*pipeline.LabelsResult]*seriesAcc
	cur      paneCursor
	*scanBuffers
	hits    []int
	run     dupRun
	err     error
	pending int64 // bytes of kept samples not yet charged to the budget
}

// scanBuffers are a worker's buffers for chunk bytes and decoded blocks.
// They outlive the query in scanBufferPool: sized for the largest block
// seen, a megabyte or two each, they made a query's garbage and the
// zeroing of fresh memory a few percent of a scan of every line, which
// a server under its memory limit pays again in collections.
type scanBuffers struct {
	buf  []byte
	fbuf []byte
	bb   chunk.BlockBuffer
	ts   []int64
}

var scanBufferPool = sync.Pool{New: func() any { return new(scanBuffers) }}

func newScanWorker(rs *rangeScan) *scanWorker {
	return &scanWorker{rs: rs, pw: rs.x.NewWorker(), sxs: map[int]*pipeline.StreamSampleExtractor{}, set: newSeriesSet(),
		byResult: map[*pipeline.LabelsResult]*seriesAcc{}, cur: newPaneCursor(rs.g),
		scanBuffers: scanBufferPool.Get().(*scanBuffers)}
}

// release returns the worker's buffers to the pool. Nothing the query
// keeps points into them: series labels are copied out of the lines they
// came from, as a worker already reuses the buffers from block to block.
func (w *scanWorker) release() {
	if b := w.scanBuffers; b != nil {
		w.scanBuffers = nil
		scanBufferPool.Put(b)
	}
}

func (w *scanWorker) extractor(stream int) *pipeline.StreamSampleExtractor {
	sx := w.sxs[stream]
	if sx == nil {
		sx = w.rs.x.ForWorkerStream(w.pw, w.rs.streams[stream].Labels)
		w.sxs[stream] = sx
	}
	return sx
}

// fail records the first error of this worker; scanning stops at the next
// block.
func (w *scanWorker) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *scanWorker) flushCharges() error {
	if w.pending > 0 {
		w.rs.budget.charge(w.pending)
		w.pending = 0
	}
	if w.err != nil {
		return w.err
	}
	return w.rs.budget.err()
}

// series returns the accumulator of a sample's series. The pipeline
// hands out one shared *LabelsResult per label set and stream, so the
// pointer finds the series without hashing or comparing labels.
func (w *scanWorker) series(lr *pipeline.LabelsResult) *seriesAcc {
	if lr == w.lastLR {
		return w.lastAcc
	}
	a := w.byResult[lr]
	if a == nil {
		var created bool
		a, created = w.set.get(lr.Hash, lr.Labels, w.rs.budget)
		if lim := w.rs.opts.seriesLimit; created && lim > 0 && len(w.set.list) > lim {
			w.fail(seriesLimitError(lim))
		}
		w.byResult[lr] = a
	}
	w.lastLR, w.lastAcc = lr, a
	return a
}

// addN adds n entries of total line length size to pane p of a, for the
// fast path.
func (w *scanWorker) addN(a *seriesAcc, p int, n int, size int64) {
	if w.rs.kind == kindCount {
		*a.cnt.at(p, w.rs.budget) += float64(n)
		return
	}
	c := a.acc.at(p, w.rs.budget)
	c.n += float64(n)
	c.a += float64(size)
}

// process runs one entry through deduplication and the sample extractor
// and adds its sample.
func (w *scanWorker) process(sx *pipeline.StreamSampleExtractor, stream int, e *chunk.Entry) {
	rs := w.rs
	p := w.cur.find(e.Timestamp)
	if !rs.g.useful(p) {
		return
	}
	if rs.dedup && w.duplicate(stream, e) {
		w.st.Duplicates++
		return
	}
	v, lr, ok := sx.Process(e.Timestamp, e.Line, e.Metadata)
	if !ok {
		return
	}
	if lr.Err != "" {
		pe := pipeline.NewPipelineError(lr)
		w.fail(&Error{Msg: pe.Error(), Err: pe})
		return
	}
	w.st.PostFilterLines++
	a := w.series(lr)
	switch k := rs.kind; k {
	case kindCount:
		*a.cnt.at(p, rs.budget)++
	case kindSamples:
		s := a.smp.at(p, rs.budget)
		*s = append(*s, tv{t: e.Timestamp, v: v})
		w.pending += 16
		if w.pending >= 1<<20 {
			rs.budget.charge(w.pending)
			w.pending = 0
		}
	default:
		a.acc.at(p, rs.budget).add(k, e.Timestamp, v)
	}
}

func (w *scanWorker) duplicate(stream int, e *chunk.Entry) bool {
	rs := w.rs
	if sp := rs.overlaps[stream]; len(sp) > 0 && (!rs.sharedKnown[stream] || len(rs.shared[stream]) > 0) && inSpans(sp, e.Timestamp) {
		if _, shared := slices.BinarySearch(rs.shared[stream], e.Timestamp); shared || !rs.sharedKnown[stream] {
			w.loadMetadata()
			return rs.dd.seen(dedupKey{group: rs.streams[stream].Hash, ts: e.Timestamp, line: hashChunkEntry(e)})
		}
	}
	if w.run.ok && e.Timestamp == w.run.ts {
		w.loadMetadata() // dup hashes this entry and the run's first
	}
	return w.run.dup(e)
}

// skipUnneededMetadata lets the scan leave undecoded the structured
// metadata of blocks where it cannot change a sample; a test turns it off
// to check that the answers are the same.
var skipUnneededMetadata = true

// loadMetadata decodes the structured metadata the block buffer left
// undecoded (NeedMetadata) before an entry is hashed for deduplication:
// the hash covers the metadata, so it must not depend on whether the
// query needed it.
func (w *scanWorker) loadMetadata() {
	if err := w.bb.LoadMetadata(); err != nil {
		w.fail(fmt.Errorf("query: %w", err))
	}
}

func (w *scanWorker) scan(ctx context.Context, src *source) error {
	rs := w.rs
	g := rs.g
	if !g.anyUseful(src.minT, src.maxT) {
		return nil
	}
	sx := w.extractor(src.stream)
	w.run.reset()
	if src.head != nil {
		w.scanHead(sx, src)
		return w.err
	}
	ref := src.ref
	metaFree := rs.metaFree[src.stream]
	if rs.fast != fastNone && metaFree {
		if p, ok := g.onePane(ref.MinTime, ref.MaxTime); ok {
			w.addN(w.series(sx.StreamLabels()), p, ref.Entries, ref.RawBytes)
			return w.err
		}
	}
	if rs.fast == fastCount && rs.plan == nil {
		if ok, err := w.countSections(ctx, sx, ref, metaFree); ok || err != nil {
			if err != nil {
				return fmt.Errorf("query: %w", err)
			}
			return w.err
		}
	}
	if rs.plan != nil {
		t := time.Now()
		f, fb, err := rs.ev.e.Store.ReadFilter(*ref, w.fbuf)
		w.fbuf = fb
		w.st.StoreFilterReadDur += time.Since(t)
		if err != nil {
			return fmt.Errorf("query: %w", err)
		}
		if !rs.plan.mayMatch(func(nd *chunk.Needle) bool { return f.MayContainNeedle(nd) }) {
			w.st.ChunksPruned++
			return nil
		}
	}
	c, b, err := rs.ev.e.Store.ReadChunk(*ref, w.buf)
	w.buf = b
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	w.st.ChunksDecoded++
	w.st.CompressedBytes += int64(ref.Size)
	meta := c.Meta()
	filter := c.Filter()
	switch {
	case !skipUnneededMetadata:
		w.bb.NeedMetadata(nil, true)
	case metaFree:
		w.bb.NeedMetadata(nil, false)
	default:
		w.bb.NeedMetadata(rs.x.MetadataNames())
	}
	for i := range meta.Blocks {
		bm := &meta.Blocks[i]
		if !g.anyUseful(bm.MinTime, bm.MaxTime) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if w.err != nil {
			return w.err
		}
		if rs.plan != nil && !rs.plan.mayMatch(func(nd *chunk.Needle) bool { return filter.BlockMayContainNeedle(i, nd) }) {
			w.st.BlocksPruned++
			continue
		}
		if rs.fast != fastNone && (metaFree || bm.MetadataBytes == 0) {
			if p, ok := g.onePane(bm.MinTime, bm.MaxTime); ok {
				w.addN(w.series(sx.StreamLabels()), p, bm.Entries, int64(bm.RawBytes))
				continue
			}
			if rs.fast == fastCount {
				ts, err := c.BlockTimestamps(i, w.ts[:0])
				w.ts = ts
				if err != nil {
					return fmt.Errorf("query: chunk %x: %w", ref.ID[:8], err)
				}
				w.countTimestamps(ts, w.series(sx.StreamLabels()))
				continue
			}
		}
		var es []chunk.Entry
		if rs.fast == fastCount {
			// A count reads no line, only the metadata it groups by.
			es, err = c.ReadBlockWithoutLines(i, &w.bb)
		} else {
			es, err = c.ReadBlock(i, &w.bb)
			w.st.DecompressedLines += int64(len(es))
			w.st.DecompressedBytes += int64(bm.RawBytes)
		}
		if err != nil {
			return fmt.Errorf("query: chunk %x block %d: %w", ref.ID[:8], i, err)
		}
		if w.bb.MetadataPending() {
			w.st.MetadataSkipped++
		}
		if rs.plan != nil && rs.plan.search != nil {
			w.hits = searchLines(es, w.bb.Lines(), rs.plan.search, w.hits[:0])
			for _, k := range w.hits {
				w.process(sx, src.stream, &es[k])
			}
		} else {
			for k := range es {
				w.process(sx, src.stream, &es[k])
			}
		}
		// A run of equal timestamps goes on into the next block only
		// when that block starts at the run's timestamp (entries are in
		// order); otherwise it ends here, and its first entry need never
		// be hashed, nor its block's metadata decoded for that.
		if i+1 < len(meta.Blocks) && w.run.ok && meta.Blocks[i+1].MinTime == w.run.ts {
			w.loadMetadata()
			w.run.settle()
		} else {
			w.run.reset()
		}
	}
	return w.err
}

// countSections answers a count without a line filter from the chunk's
// header and the timestamp sections of the blocks that straddle panes,
// read alone: the line sections are neither read nor decompressed. It
// reports false, having counted nothing, when some block must be decoded
// whole (structured metadata that the query's labels depend on).
func (w *scanWorker) countSections(ctx context.Context, sx *pipeline.StreamSampleExtractor, ref *store.ChunkRef, metaFree bool) (bool, error) {
	g := w.rs.g
	st := w.rs.ev.e.Store
	h, buf, err := st.ReadHeader(*ref, w.buf)
	w.buf = buf
	if err != nil {
		return false, err
	}
	blocks := h.Meta().Blocks
	if !metaFree {
		for i := range blocks {
			if blocks[i].MetadataBytes > 0 && g.anyUseful(blocks[i].MinTime, blocks[i].MaxTime) {
				return false, nil
			}
		}
	}
	w.st.ChunksDecoded++
	w.st.CompressedBytes += int64(len(buf))
	a := w.series(sx.StreamLabels())
	for i := range blocks {
		bm := &blocks[i]
		if !g.anyUseful(bm.MinTime, bm.MaxTime) {
			continue
		}
		if p, ok := g.onePane(bm.MinTime, bm.MaxTime); ok {
			w.addN(a, p, bm.Entries, int64(bm.RawBytes))
			continue
		}
		if err := ctx.Err(); err != nil {
			return true, err
		}
		off, n, err := h.TimestampSection(i)
		if err != nil {
			return true, err
		}
		if w.fbuf, err = st.ReadSection(*ref, off, n, w.fbuf); err != nil {
			return true, err
		}
		w.st.CompressedBytes += int64(n)
		if w.ts, err = h.BlockTimestamps(i, w.fbuf, w.ts[:0]); err != nil {
			return true, fmt.Errorf("chunk %x: %w", ref.ID[:8], err)
		}
		w.countTimestamps(w.ts, a)
	}
	return true, nil
}

// countTimestamps counts the entries with timestamps ts (rising, as a
// block holds them) per pane: a binary search finds where each pane's run
// ends, so the cost grows with the panes a block crosses, not its entries.
func (w *scanWorker) countTimestamps(ts []int64, a *seriesAcc) {
	g := w.rs.g
	for i := 0; i < len(ts); {
		p := w.cur.find(ts[i])
		hi := w.cur.hi // the pane holds (lo, hi]
		n := len(ts) - i
		if hi < ts[len(ts)-1] {
			n, _ = slices.BinarySearch(ts[i:], hi+1) // first entry past the pane
		}
		if g.useful(p) {
			*a.cnt.at(p, w.rs.budget) += float64(n)
		}
		i += n
	}
}

func (w *scanWorker) scanHead(sx *pipeline.StreamSampleExtractor, src *source) {
	rs := w.rs
	for k := range src.head {
		w.st.HeadChunkBytes += int64(len(src.head[k].Line))
	}
	w.st.HeadChunkLines += int64(len(src.head))
	fast := rs.fast != fastNone
	metaFree := rs.metaFree[src.stream]
	var a *seriesAcc
	for k := range src.head {
		e := &src.head[k]
		if fast && (metaFree || len(e.Metadata) == 0) {
			p := w.cur.find(e.Timestamp)
			if !rs.g.useful(p) {
				continue
			}
			if a == nil {
				a = w.series(sx.StreamLabels())
			}
			w.addN(a, p, 1, int64(len(e.Line)))
			continue
		}
		w.process(sx, src.stream, e)
	}
}
