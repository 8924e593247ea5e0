package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/pkg/chunk"
)

// Options configure a Store. Zero values take the defaults named below.
type Options struct {
	// TargetChunkSize is the raw line bytes at which a head chunk is cut
	// (default 2 MiB).
	TargetChunkSize int64 `yaml:"target_chunk_size"`
	// MaxChunkAge cuts a head chunk this long after its first entry
	// arrived (default 1h).
	MaxChunkAge time.Duration `yaml:"max_chunk_age"`
	// IdleCut cuts a head chunk that received nothing for this long
	// (default 5m).
	IdleCut time.Duration `yaml:"chunk_idle_period"`
	// HeadBudget bounds the memory of all head chunks; above it the
	// largest heads are cut early (default 64 MiB).
	HeadBudget int64 `yaml:"head_budget"`
	// WALSegmentSize is the size at which the WAL starts a new file
	// (default 64 MiB).
	WALSegmentSize int64 `yaml:"wal_segment_size"`
	// MaxStreamsPerTenant bounds the streams with data in memory per tenant;
	// new streams above it are refused (default 20000, negative = no limit).
	MaxStreamsPerTenant int `yaml:"max_streams_per_tenant"`
	// Retention drops partitions whose newest entry is older than this.
	// Zero (the default) keeps everything: imported bundles carry old
	// timestamps and must not vanish when they land.
	Retention time.Duration `yaml:"retention_period"`
	// FlushWorkers encode and write cut chunks (default GOMAXPROCS).
	FlushWorkers int `yaml:"flush_workers"`
	// ChunkCodec compresses the chunks the store cuts: zstd (the default)
	// or lz4, whose chunks are about 40 % larger but decompress about 2.5
	// times faster, which speeds up the queries that read every line (a
	// pattern or json over whole streams) by a fifth to a third
	// (docs/formats/chunk.md). Chunks of both codecs are read alike, so a
	// change affects new chunks only.
	ChunkCodec string `yaml:"chunk_codec"`
	// Compaction re-encodes sealed chunks in the background, smaller and
	// faster to read (docs/formats/store.md). The zero value leaves it
	// off; the server's default configuration turns it on.
	Compaction CompactionOptions `yaml:"compaction"`
	// Chunk tunes the chunk encoder; ChunkCodec, when set, overrides its
	// Codec.
	Chunk chunk.Options `yaml:"-"`
	// Logger receives the store's logs (default slog.Default()).
	Logger *slog.Logger `yaml:"-"`
}

func (o *Options) setDefaults() {
	if o.TargetChunkSize <= 0 {
		o.TargetChunkSize = 2 << 20
	}
	if o.MaxChunkAge <= 0 {
		o.MaxChunkAge = time.Hour
	}
	if o.IdleCut <= 0 {
		o.IdleCut = 5 * time.Minute
	}
	if o.HeadBudget <= 0 {
		o.HeadBudget = 64 << 20
	}
	if o.WALSegmentSize <= 0 {
		o.WALSegmentSize = 64 << 20
	}
	if o.MaxStreamsPerTenant == 0 {
		o.MaxStreamsPerTenant = 20000
	}
	if o.FlushWorkers <= 0 {
		o.FlushWorkers = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Compaction.setDefaults()
}

// Store is the embedded storage engine. All methods are safe for
// concurrent use.
type Store struct {
	opts   Options
	dir    string
	walDir string
	log    *slog.Logger

	mu      sync.RWMutex
	tenants map[string]*tenantDB

	walQ      chan *walRequest
	delQ      chan *deleteRequest // deletions, sequenced with the WAL
	wal       *walFile
	walActive atomic.Uint32      // number of the segment being written
	rotateQ   chan chan struct{} // asks the WAL writer to start a new segment
	seq       uint64             // last sequence number written; owned by the WAL writer
	flushQ    chan *flushJob
	pending   sync.WaitGroup // flush jobs queued or running

	headBytes atomic.Int64
	closing   atomic.Bool
	// putMu is held shared by every PutChunk while it writes, so that
	// Close waits for chunk writes already past the closing check
	// instead of closing their partitions under them.
	putMu   sync.RWMutex
	truncMu sync.Mutex // one truncateWAL at a time
	// compactMu is held by a compaction run: one at a time, and Close
	// waits for the one in progress to stop.
	compactMu sync.Mutex
	stop      chan struct{}
	bg        sync.WaitGroup
	lock      *os.File

	m storeMetrics
}

type storeMetrics struct {
	appendedLines, appendedBytes *metrics.Counter
	walFsyncs                    *metrics.Counter
	walDuration                  *metrics.PrometheusHistogram
	chunksFlushed, flushBytes    *metrics.Counter
	flushErrors                  *metrics.Counter
	chunksReceived, chunksDup    *metrics.Counter

	compactedChunks                       *metrics.Counter
	compactBytesBefore, compactBytesAfter *metrics.Counter
	compactCorrupt, compactFailures       *metrics.Counter
	compactDuration                       *metrics.PrometheusHistogram
	// compactEncoded counts re-encoded chunks by the codec written, so
	// that an operator sees what compaction.codec auto chose.
	compactEncoded map[chunk.Codec]*metrics.Counter
}

type walRequest struct {
	rec     []byte
	tenant  *tenantDB
	streams []Stream
	done    chan error
}

type flushJob struct {
	tenant *tenantDB
	stream *stream
	head   *head
}

// Open opens (or creates) a store in dir, replaying its write-ahead log so
// that every acknowledged entry is back before Open returns.
func Open(dir string, opts Options) (*Store, error) {
	opts.setDefaults()
	if err := opts.Compaction.parse(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if opts.ChunkCodec != "" {
		c, err := chunk.ParseCodec(opts.ChunkCodec)
		if err != nil {
			return nil, fmt.Errorf("store: chunk_codec: %w", err)
		}
		opts.Chunk.Codec = c
	}
	s := &Store{
		opts:    opts,
		dir:     dir,
		walDir:  filepath.Join(dir, "wal"),
		log:     opts.Logger,
		tenants: map[string]*tenantDB{},
		walQ:    make(chan *walRequest, 1024),
		rotateQ: make(chan chan struct{}),
		delQ:    make(chan *deleteRequest),
		flushQ:  make(chan *flushJob, 4096),
		stop:    make(chan struct{}),
	}
	s.m = storeMetrics{
		appendedLines:  metrics.GetOrCreateCounter(`logsift_store_appended_lines_total`),
		appendedBytes:  metrics.GetOrCreateCounter(`logsift_store_appended_bytes_total`),
		walFsyncs:      metrics.GetOrCreateCounter(`logsift_wal_fsyncs_total`),
		walDuration:    metrics.GetOrCreatePrometheusHistogram(`logsift_wal_write_duration_seconds`),
		chunksFlushed:  metrics.GetOrCreateCounter(`logsift_store_chunks_flushed_total`),
		flushBytes:     metrics.GetOrCreateCounter(`logsift_store_flushed_bytes_total`),
		flushErrors:    metrics.GetOrCreateCounter(`logsift_store_flush_errors_total`),
		chunksReceived: metrics.GetOrCreateCounter(`logsift_store_chunks_received_total`),
		chunksDup:      metrics.GetOrCreateCounter(`logsift_store_chunks_duplicate_total`),

		compactedChunks:    metrics.GetOrCreateCounter(`logsift_store_compacted_chunks_total`),
		compactBytesBefore: metrics.GetOrCreateCounter(`logsift_store_compaction_read_bytes_total`),
		compactBytesAfter:  metrics.GetOrCreateCounter(`logsift_store_compaction_written_bytes_total`),
		compactCorrupt:     metrics.GetOrCreateCounter(`logsift_store_compaction_undecodable_chunks_total`),
		compactFailures:    metrics.GetOrCreateCounter(`logsift_store_compaction_failures_total`),
		compactDuration:    metrics.GetOrCreatePrometheusHistogram(`logsift_store_compaction_duration_seconds`),
		compactEncoded: map[chunk.Codec]*metrics.Counter{
			chunk.CodecZstd: metrics.GetOrCreateCounter(`logsift_store_compaction_encoded_chunks_total{codec="zstd"}`),
			chunk.CodecLZ4:  metrics.GetOrCreateCounter(`logsift_store_compaction_encoded_chunks_total{codec="lz4"}`),
		},
	}
	for _, d := range []string{dir, s.walDir, filepath.Join(dir, "tenants")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.loadPartitions(); err != nil {
		s.unlock()
		return nil, err
	}
	if err := s.finishDeletes(); err != nil {
		s.unlock()
		return nil, fmt.Errorf("finish interrupted deletions: %w", err)
	}
	if err := s.replayWAL(); err != nil {
		s.unlock()
		return nil, err
	}
	for i := 0; i < opts.FlushWorkers; i++ {
		s.bg.Add(1)
		go s.flushLoop()
	}
	s.bg.Add(2)
	go s.walLoop()
	go s.tickLoop()
	if opts.Compaction.Enabled {
		s.bg.Add(1)
		go s.compactLoop()
	}
	s.enforceBudget()
	return s, nil
}

func (s *Store) unlock() {
	if s.lock != nil {
		s.lock.Close()
	}
}

// tenant returns the tenant's database, creating it when create is set.
func (s *Store) tenant(name string, create bool) *tenantDB {
	s.mu.RLock()
	t := s.tenants[name]
	s.mu.RUnlock()
	if t != nil || !create {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.tenants[name]; t == nil {
		t = newTenantDB(name, filepath.Join(s.dir, "tenants", url.PathEscape(name)))
		s.tenants[name] = t
	}
	return t
}

// Tenants lists the tenants that have data.
func (s *Store) Tenants() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.tenants))
	for name := range s.tenants {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// loadPartitions reads every partition index into memory.
func (s *Store) loadPartitions() error {
	tdirs, err := os.ReadDir(filepath.Join(s.dir, "tenants"))
	if err != nil {
		return err
	}
	for _, td := range tdirs {
		if !td.IsDir() {
			continue
		}
		name, err := url.PathUnescape(td.Name())
		if err != nil {
			return fmt.Errorf("tenant directory %q: %w", td.Name(), err)
		}
		t := s.tenant(name, true)
		tombs, err := t.loadTombstones()
		if err != nil {
			return err
		}
		pending := map[uint64]uint64{}
		for _, tb := range tombs {
			t.tomb[tb.stream] = tb.seq
			s.seq = max(s.seq, tb.seq)
			if tb.state == tombstonePending {
				t.pendingTombs = append(t.pendingTombs, tb)
				pending[tb.stream] = tb.seq
			}
		}
		pdirs, err := os.ReadDir(t.dir)
		if err != nil {
			return err
		}
		for _, pd := range pdirs {
			day, ok := parsePartitionDir(pd.Name())
			if !ok {
				continue
			}
			p := openPartition(filepath.Join(t.dir, pd.Name()), day)
			referenced := map[uint32]bool{}
			err := p.load(func(rec indexRecord) {
				referenced[rec.ref.segment] = true
				if !rec.compacted {
					p.uncompacted++
				}
				if seq, ok := pending[rec.stream]; ok && rec.watermark <= seq {
					return // deleted; the pending purge removes it from disk
				}
				st := t.streamFor(rec.stream, rec.labels)
				st.addRef(rec.ref)
				t.ids[rec.ref.ID] = struct{}{}
				if rec.watermark > st.flushedSeq[day] {
					st.flushedSeq[day] = rec.watermark
				}
				if rec.watermark > s.seq {
					s.seq = rec.watermark
				}
			})
			if err != nil {
				return fmt.Errorf("load partition: %w", err)
			}
			removed, err := p.removeUnreferenced(referenced)
			if err != nil {
				return fmt.Errorf("partition %s: remove unreferenced segments: %w", p.dir, err)
			}
			if len(removed) > 0 {
				s.log.Info("removed segments no index record references (left by an interrupted compaction or deletion)", "partition", p.dir, "segments", removed)
			}
			t.parts[day] = p
		}
	}
	return nil
}

func parsePartitionDir(name string) (int32, bool) {
	tm, err := time.Parse(partitionDirTime, name)
	if err != nil {
		return 0, false
	}
	return dayOf(tm.UnixNano()), true
}

// replayWAL rebuilds the heads from the write-ahead log, skipping entries
// that flushed chunks already hold, and opens a fresh segment for writing.
func (s *Store) replayWAL() error {
	segs, err := walSegments(s.walDir)
	if err != nil {
		return err
	}
	var lines int
	for i, n := range segs {
		path := walSegmentPath(s.walDir, n)
		good, torn, err := replayWALSegment(path, func(rec walRecord) error {
			if rec.seq > s.seq {
				s.seq = rec.seq
			}
			t := s.tenant(rec.tenant, true)
			lines += t.apply(s, rec.streams, rec.seq, n, true)
			return nil
		})
		if err != nil {
			return fmt.Errorf("replay %s: %w", path, err)
		}
		if torn != nil {
			if i != len(segs)-1 {
				// Only the newest segment can be torn by a crash; damage in an
				// older one is disk corruption. Keep going with what is intact
				// and say loudly what happened.
				s.log.Error("write-ahead log segment is damaged before its end; entries after the damage are lost", "segment", path, "reason", torn)
			}
			if err := truncateTornTail(path, good, torn); err != nil {
				return err
			}
		}
	}
	next := uint32(1)
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	w, err := createWALSegment(s.walDir, next)
	if err != nil {
		return err
	}
	s.wal = w
	s.walActive.Store(w.n)
	if lines > 0 {
		s.log.Info("replayed write-ahead log", "segments", len(segs), "entries", lines)
	}
	return nil
}

// Append stores streams for tenant and returns once they are durable in the
// write-ahead log and visible to queries. When the tenant is at its stream
// limit, new streams are refused with a *StreamLimitError and the others are
// still written.
func (s *Store) Append(ctx context.Context, tenantID string, streams []Stream) error {
	if s.closing.Load() {
		return ErrClosed
	}
	t := s.tenant(tenantID, true)
	streams, limitErr := t.admit(streams, s.opts.MaxStreamsPerTenant)
	if len(streams) == 0 {
		return limitErr
	}
	req := &walRequest{
		rec:     encodeWALRecord(make([]byte, 0, walRecordSize(tenantID, streams)), tenantID, streams),
		tenant:  t,
		streams: streams,
		done:    make(chan error, 1),
	}
	select {
	case s.walQ <- req:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the write goes ahead; waiting for it even when ctx ends
	// keeps "answered" and "durable" the same thing.
	if err := <-req.done; err != nil {
		return err
	}
	return limitErr
}

// walLoop is the only writer of the WAL. It gathers queued appends into a
// group, writes and fsyncs them once, applies them to the heads in sequence
// order and then releases their callers.
func (s *Store) walLoop() {
	defer s.bg.Done()
	var batch []*walRequest
	var buf []byte
	for {
		var first *walRequest
		select {
		case first = <-s.walQ:
		case req := <-s.delQ:
			req.reply <- s.cutDeleted(req)
			continue
		case done := <-s.rotateQ:
			if s.wal.size > 0 {
				s.rotateWAL()
			}
			close(done)
			continue
		case <-s.stop:
			// Drain what was queued before the stop so no caller hangs.
			for {
				select {
				case r := <-s.walQ:
					r.done <- ErrClosed
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		size := len(first.rec)
	gather:
		for size < 16<<20 {
			select {
			case r := <-s.walQ:
				batch = append(batch, r)
				size += len(r.rec)
			default:
				break gather
			}
		}
		start := time.Now()
		buf = buf[:0]
		seq := s.seq
		for _, r := range batch {
			seq++
			sealWALRecord(r.rec, seq)
			buf = append(buf, r.rec...)
		}
		err := s.wal.write(buf)
		s.m.walFsyncs.Inc()
		s.m.walDuration.UpdateDuration(start)
		if err != nil {
			s.log.Error("write-ahead log write failed; the pushes were not acknowledged", "err", err)
			for _, r := range batch {
				r.done <- err
			}
			continue
		}
		seq = s.seq
		for _, r := range batch {
			seq++
			n := r.tenant.apply(s, r.streams, seq, s.wal.n, false)
			s.m.appendedLines.Add(n)
			// The entries are visible to queries now: tell the result
			// cache which range of which tenant changed.
			s.noteAppended(r.tenant.name, r.streams)
			r.done <- nil
		}
		s.seq = seq
		if s.wal.size >= s.opts.WALSegmentSize {
			s.rotateWAL()
		}
		if s.headBytes.Load() > s.opts.HeadBudget {
			s.enforceBudget()
		}
	}
}

func (s *Store) rotateWAL() {
	w, err := createWALSegment(s.walDir, s.wal.n+1)
	if err != nil {
		s.log.Error("cannot start a new write-ahead log segment; continuing in the current one", "err", err)
		return
	}
	old := s.wal
	s.wal = w
	s.walActive.Store(w.n)
	if err := old.close(); err != nil {
		s.log.Warn("closing write-ahead log segment", "err", err)
	}
}

// truncateWAL deletes WAL segments that no head needs any more. It reads
// the active segment number before scanning the heads: a head created
// after that read can only need that segment or a newer one.
func (s *Store) truncateWAL() {
	// Flush and the tick loop both trim; one at a time, or the second
	// finds the first's segments gone and warns about it.
	s.truncMu.Lock()
	defer s.truncMu.Unlock()
	needed := s.walActive.Load()
	s.mu.RLock()
	for _, t := range s.tenants {
		if n := t.oldestWALSegment(); n != 0 && n < needed {
			needed = n
		}
	}
	s.mu.RUnlock()
	segs, err := walSegments(s.walDir)
	if err != nil {
		return
	}
	for _, n := range segs {
		if n >= needed {
			break
		}
		if err := os.Remove(walSegmentPath(s.walDir, n)); err != nil {
			s.log.Warn("removing flushed write-ahead log segment", "segment", n, "err", err)
		}
	}
}

// tickLoop cuts heads that are old or idle, applies retention and trims
// the WAL.
func (s *Store) tickLoop() {
	defer s.bg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastRetention := time.Time{}
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			s.cutHeads(func(h *head) bool {
				return now.UnixNano()-h.created >= int64(s.opts.MaxChunkAge) ||
					now.UnixNano()-h.lastAppend >= int64(s.opts.IdleCut)
			})
			if s.opts.Retention > 0 && now.Sub(lastRetention) > time.Minute {
				lastRetention = now
				s.applyRetention(now)
			}
			s.truncateWAL()
		}
	}
}

// cutHeads detaches every head for which pred is true and queues it for
// flushing.
func (s *Store) cutHeads(pred func(*head) bool) {
	s.mu.RLock()
	tenants := make([]*tenantDB, 0, len(s.tenants))
	for _, t := range s.tenants {
		tenants = append(tenants, t)
	}
	s.mu.RUnlock()
	for _, t := range tenants {
		for _, st := range t.allStreams() {
			st.mu.Lock()
			for day, h := range st.heads {
				if len(h.entries) > 0 && pred(h) {
					s.detachLocked(t, st, day, h)
				}
			}
			st.mu.Unlock()
		}
	}
}

// detachLocked moves a head to the stream's flushing list and queues it.
// The caller holds st.mu.
func (s *Store) detachLocked(t *tenantDB, st *stream, day int32, h *head) {
	delete(st.heads, day)
	st.flushing = append(st.flushing, h)
	t.headDetached(st)
	s.pending.Add(1)
	job := &flushJob{tenant: t, stream: st, head: h}
	select {
	case s.flushQ <- job:
	default:
		// The queue is full: flush in the background rather than block the
		// WAL writer that may be holding this path.
		go func() { s.flushQ <- job }()
	}
}

// enforceBudget cuts the largest heads until head memory is back under
// three quarters of the budget.
func (s *Store) enforceBudget() {
	over := s.headBytes.Load() - s.opts.HeadBudget*3/4
	if over <= 0 {
		return
	}
	type cand struct {
		t   *tenantDB
		st  *stream
		day int32
		h   *head
	}
	var cands []cand
	s.mu.RLock()
	for _, t := range s.tenants {
		for _, st := range t.allStreams() {
			st.mu.Lock()
			for day, h := range st.heads {
				if len(h.entries) > 0 {
					cands = append(cands, cand{t, st, day, h})
				}
			}
			st.mu.Unlock()
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(cands, func(a, b cand) int {
		return int(b.h.memBytes() - a.h.memBytes())
	})
	for _, c := range cands {
		if over <= 0 {
			break
		}
		c.st.mu.Lock()
		if c.st.heads[c.day] == c.h && len(c.h.entries) > 0 {
			over -= c.h.memBytes()
			s.detachLocked(c.t, c.st, c.day, c.h)
		}
		c.st.mu.Unlock()
	}
}

// flushLoop encodes detached heads and writes them to their partitions,
// batching what is queued together.
func (s *Store) flushLoop() {
	defer s.bg.Done()
	for {
		var job *flushJob
		select {
		case job = <-s.flushQ:
		case <-s.stop:
			return
		}
		jobs := []*flushJob{job}
	gather:
		for len(jobs) < 32 {
			select {
			case j := <-s.flushQ:
				jobs = append(jobs, j)
			default:
				break gather
			}
		}
		s.flush(jobs)
	}
}

func (s *Store) flush(jobs []*flushJob) {
	type group struct {
		t    *tenantDB
		day  int32
		jobs []*flushJob
		pcs  []pendingChunk
	}
	groups := map[[2]any]*group{}
	var order []*group
	for _, j := range jobs {
		entries := slices.Clone(j.head.entries)
		data, meta, err := chunk.Encode(j.stream.labels, entries, s.opts.Chunk)
		if err != nil {
			// Encoding our own validated entries cannot fail short of a bug;
			// keep the head (the WAL still has it) and say so.
			s.log.Error("encoding head chunk failed; it stays in memory and in the WAL", "stream", j.stream.labels.String(), "err", err)
			s.m.flushErrors.Inc()
			s.retryLater(j)
			continue
		}
		key := [2]any{j.tenant, j.head.day}
		g := groups[key]
		if g == nil {
			g = &group{t: j.tenant, day: j.head.day}
			groups[key] = g
			order = append(order, g)
		}
		g.jobs = append(g.jobs, j)
		st, lastSeq := j.stream, j.head.lastSeq
		g.pcs = append(g.pcs, pendingChunk{data: data, meta: meta, stream: st.hash, labels: st.labels, watermark: lastSeq,
			dropped: func() bool { return st.deletedSeq.Load() >= lastSeq }})
	}
	for _, g := range order {
		p := g.t.partition(g.day)
		refs, err := p.write(g.pcs)
		if err != nil {
			s.log.Error("writing chunks failed; they stay in memory and in the WAL and will be retried", "partition", p.dir, "chunks", len(g.pcs), "err", err)
			s.m.flushErrors.Inc()
			for _, j := range g.jobs {
				s.retryLater(j)
			}
			continue
		}
		for i, j := range g.jobs {
			if refs[i].Size > 0 {
				g.t.flushed(j.stream, j.head, refs[i])
			}
			s.headBytes.Add(-j.head.memBytes())
			s.m.chunksFlushed.Inc()
			s.m.flushBytes.Add(refs[i].Size)
			s.pending.Done()
		}
	}
}

func (s *Store) retryLater(j *flushJob) {
	go func() {
		select {
		case <-time.After(5 * time.Second):
			s.flushQ <- j
		case <-s.stop:
			s.pending.Done()
		}
	}()
}

// Flush cuts every head and waits until all of them are written to
// partitions; /flush and a clean shutdown use it.
func (s *Store) Flush(ctx context.Context) error {
	s.cutHeads(func(*head) bool { return true })
	done := make(chan struct{})
	go func() { s.pending.Wait(); close(done) }()
	select {
	case <-done:
		// Everything written so far is in chunks now: start a new WAL
		// segment so that the old ones, including the one that was being
		// written, can go.
		rotated := make(chan struct{})
		select {
		case s.rotateQ <- rotated:
			<-rotated
		case <-s.stop:
		}
		s.truncateWAL()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush: %w", ctx.Err())
	}
}

// ErrInvalidChunk is wrapped by PutChunk errors about the chunk itself: it
// is corrupt, hostile or breaks a rule. Resending it cannot help.
var ErrInvalidChunk = errors.New("invalid chunk")

// MaxReceivedChunkRaw bounds the raw line bytes of a chunk received whole;
// agents cut chunks far below it.
const MaxReceivedChunkRaw = 64 << 20

// PutChunk stores a chunk built elsewhere (by an agent). The chunk is
// untrusted: it is fully verified first. It returns true when a chunk with
// the same content ID was already stored, in which case nothing is written.
func (s *Store) PutChunk(ctx context.Context, tenantID string, data []byte) (duplicate bool, err error) {
	s.putMu.RLock()
	defer s.putMu.RUnlock()
	if s.closing.Load() {
		return false, ErrClosed
	}
	c, err := chunk.Decode(data)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrInvalidChunk, err)
	}
	// Verify decompresses everything; a small hostile chunk could claim a
	// lot of it, so the claim is bounded first.
	if raw := c.Meta().RawBytes; raw > MaxReceivedChunkRaw {
		return false, fmt.Errorf("%w: %d raw bytes exceed the limit of %d for a received chunk", ErrInvalidChunk, raw, MaxReceivedChunkRaw)
	}
	if err := c.Verify(); err != nil {
		return false, fmt.Errorf("%w: %w", ErrInvalidChunk, err)
	}
	meta := c.Meta()
	if err := meta.Labels.Validate(); err != nil {
		return false, fmt.Errorf("%w: labels: %w", ErrInvalidChunk, err)
	}
	if len(meta.Labels) == 0 {
		return false, fmt.Errorf("%w: a stream needs at least one label", ErrInvalidChunk)
	}
	s.m.chunksReceived.Inc()
	t := s.tenant(tenantID, true)
	// A resend can arrive while the first copy is still being written:
	// wait for that write, and take over if it failed.
	for {
		stored, wait := t.claimID(meta.ID)
		if stored {
			s.m.chunksDup.Inc()
			return true, nil
		}
		if wait == nil {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	p := t.partition(dayOf(meta.MinTime))
	refs, err := p.write([]pendingChunk{{data: data, meta: meta, stream: meta.Labels.Hash(), labels: meta.Labels}})
	t.finishClaim(meta.ID, err == nil)
	if err != nil {
		return false, err
	}
	t.addChunk(meta.Labels, refs[0])
	s.noteWrite(tenantID, meta.MinTime, meta.MaxTime)
	return false, nil
}

func (s *Store) applyRetention(now time.Time) {
	cutoff := now.Add(-s.opts.Retention).UnixNano()
	s.mu.RLock()
	tenants := make([]*tenantDB, 0, len(s.tenants))
	for _, t := range s.tenants {
		tenants = append(tenants, t)
	}
	s.mu.RUnlock()
	for _, t := range tenants {
		for _, p := range t.expiredPartitions(cutoff) {
			p.gone.Store(true) // a compaction of it stops
			t.dropPartition(p)
			s.noteDropped(t.name, p.day)
			if err := p.close(); err != nil {
				s.log.Warn("closing expired partition", "dir", p.dir, "err", err)
			}
			if err := os.RemoveAll(p.dir); err != nil {
				s.log.Error("removing expired partition", "dir", p.dir, "err", err)
				continue
			}
			s.log.Info("retention removed partition", "tenant", t.name, "dir", p.dir)
		}
	}
}

// Close flushes every head to disk (bounded by ctx) and releases the data
// directory. Whatever could not be flushed is still in the WAL.
func (s *Store) Close(ctx context.Context) error {
	if s.closing.Swap(true) {
		return nil
	}
	s.putMu.Lock() // wait for chunk writes in flight; new ones see closing
	s.putMu.Unlock()
	flushErr := s.Flush(ctx)
	close(s.stop)
	s.bg.Wait()
	// A Compact called from outside stops at its next chunk.
	s.compactMu.Lock()
	s.compactMu.Unlock() //nolint:staticcheck // waiting, not guarding

	var errs []error
	if flushErr != nil {
		errs = append(errs, flushErr)
	}
	if s.wal != nil {
		errs = append(errs, s.wal.close())
	}
	s.mu.RLock()
	for _, t := range s.tenants {
		for _, p := range t.partitions() {
			errs = append(errs, p.close())
		}
	}
	s.mu.RUnlock()
	s.unlock()
	return errors.Join(errs...)
}

// HeadBytes is the memory held by head chunks.
func (s *Store) HeadBytes() int64 { return s.headBytes.Load() }
