package store

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// tenantDB is one tenant's part of the store: its streams, their label
// postings, and its partitions. Tenants share nothing else, which is what
// makes isolation absolute.
type tenantDB struct {
	name string
	dir  string

	mu       sync.RWMutex
	streams  map[uint64]*stream
	postings map[string]map[string][]*stream // label name -> value -> streams
	ids      map[chunk.ID]struct{}
	writing  map[chunk.ID]chan struct{} // received chunks being written
	parts    map[int32]*partition
	active   int // streams with a non-empty head

	subMu sync.Mutex
	subs  map[*Subscription]struct{}

	delMu        sync.Mutex        // one deletion at a time
	tomb         map[uint64]uint64 // stream -> WAL sequence up to which it was deleted
	pendingTombs []tombstone       // deletions to finish at Open
}

// stream is one label set with its chunks and heads.
type stream struct {
	hash   uint64
	labels labels.Labels

	mu         sync.Mutex
	chunks     []ChunkRef // sorted by MinTime
	heads      map[int32]*head
	flushing   []*head
	flushedSeq map[int32]uint64 // WAL watermark per partition day
	deletedSeq atomic.Uint64    // entries up to this WAL sequence were deleted
	minT, maxT int64
	live       bool // counted in tenantDB.active
}

// head is the unsealed chunk of one stream for one partition day.
type head struct {
	day        int32
	entries    []chunk.Entry
	slab       []byte
	raw        int64
	minT, maxT int64
	firstSeg   uint32 // oldest WAL segment holding one of its entries
	lastSeq    uint64 // newest WAL record applied to it
	created    int64  // wall clock, ns
	lastAppend int64
}

// entryOverhead approximates the memory of one entry besides its bytes.
const entryOverhead = 64

func (h *head) memBytes() int64 { return h.raw + int64(len(h.entries))*entryOverhead }

// slabSize is the unit in which heads copy lines; lines are copied so that
// a head does not pin whole request buffers.
const slabSize = 64 << 10

func (h *head) copyBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > slabSize/4 {
		return append([]byte(nil), b...)
	}
	if cap(h.slab)-len(h.slab) < len(b) {
		h.slab = make([]byte, 0, slabSize)
	}
	start := len(h.slab)
	h.slab = append(h.slab, b...)
	return h.slab[start:len(h.slab):len(h.slab)]
}

func countMetadata(es []chunk.Entry) int {
	n := 0
	for i := range es {
		n += len(es[i].Metadata)
	}
	return n
}

// copyString copies s into the head's slabs. Slab bytes are never written
// again, so the string may share them.
func (h *head) copyString(s string) string {
	b := h.copyBytes([]byte(s))
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func newTenantDB(name, dir string) *tenantDB {
	return &tenantDB{
		name:     name,
		dir:      dir,
		streams:  map[uint64]*stream{},
		postings: map[string]map[string][]*stream{},
		ids:      map[chunk.ID]struct{}{},
		parts:    map[int32]*partition{},
		tomb:     map[uint64]uint64{},
	}
}

// streamFor returns the stream with these labels, registering it.
func (t *tenantDB) streamFor(hash uint64, ls labels.Labels) *stream {
	t.mu.RLock()
	st := t.streams[hash]
	t.mu.RUnlock()
	if st != nil {
		return st
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if st = t.streams[hash]; st != nil {
		return st
	}
	st = &stream{
		hash: hash, labels: ls.Copy(),
		heads: map[int32]*head{}, flushedSeq: map[int32]uint64{},
		minT: 1<<63 - 1, maxT: -1 << 63,
	}
	t.streams[hash] = st
	for _, l := range st.labels {
		vals := t.postings[l.Name]
		if vals == nil {
			vals = map[string][]*stream{}
			t.postings[l.Name] = vals
		}
		vals[l.Value] = append(vals[l.Value], st)
	}
	return st
}

func (t *tenantDB) allStreams() []*stream {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*stream, 0, len(t.streams))
	for _, st := range t.streams {
		out = append(out, st)
	}
	return out
}

// admit drops streams that would take the tenant over its limit of live
// streams. Streams that are already live always pass.
func (t *tenantDB) admit(streams []Stream, limit int) ([]Stream, error) {
	if limit < 0 {
		return streams, nil
	}
	t.mu.RLock()
	room := limit - t.active
	var refused []labels.Labels
	kept := streams[:0:0]
	for _, s := range streams {
		st := t.streams[s.Labels.Hash()]
		if st != nil && st.live {
			kept = append(kept, s)
			continue
		}
		if room > 0 {
			room--
			kept = append(kept, s)
			continue
		}
		refused = append(refused, s.Labels)
	}
	t.mu.RUnlock()
	if len(refused) == 0 {
		return streams, nil
	}
	return kept, &StreamLimitError{Tenant: t.name, Limit: limit, Rejected: refused}
}

// apply adds the entries of one WAL record to the heads. During replay it
// skips the entries that flushed chunks already hold. It returns the number
// of entries added.
func (t *tenantDB) apply(s *Store, streams []Stream, seq uint64, seg uint32, replay bool) int {
	now := time.Now().UnixNano()
	added := 0
	var bytes int64
	t.subMu.Lock()
	tailing := len(t.subs) > 0 && !replay
	t.subMu.Unlock()
	var published [][]chunk.Entry
	if tailing {
		published = make([][]chunk.Entry, len(streams))
	}
	for si, in := range streams {
		st := t.streamFor(in.Labels.Hash(), in.Labels)
		// One backing array for the metadata of the whole batch, instead
		// of one allocation per entry.
		var mdPool labels.Labels
		if n := countMetadata(in.Entries); n > 0 {
			mdPool = make(labels.Labels, 0, n)
		}
		st.mu.Lock()
		for _, e := range in.Entries {
			day := dayOf(e.Timestamp)
			if replay && (seq <= st.flushedSeq[day] || seq <= t.tomb[st.hash]) {
				continue
			}
			h := st.heads[day]
			if h == nil {
				h = &head{day: day, firstSeg: seg, created: now, minT: e.Timestamp, maxT: e.Timestamp}
				st.heads[day] = h
			}
			if len(h.entries) == 0 && !st.live {
				// live is written under t.mu (admit reads it there) and
				// st.mu (held here), so either lock suffices to read it.
				t.mu.Lock()
				st.live = true
				t.active++
				t.mu.Unlock()
			}
			ce := chunk.Entry{Timestamp: e.Timestamp, Line: h.copyBytes(e.Line)}
			if len(e.Metadata) > 0 {
				// Copy the strings too: they may point into the request's
				// decoded body, which a head must not keep alive.
				start := len(mdPool)
				for _, m := range e.Metadata {
					mdPool = append(mdPool, labels.Label{Name: h.copyString(m.Name), Value: h.copyString(m.Value)})
				}
				ce.Metadata = mdPool[start:len(mdPool):len(mdPool)]
			}
			h.entries = append(h.entries, ce)
			if tailing {
				published[si] = append(published[si], ce)
			}
			h.raw += int64(len(e.Line))
			for _, m := range e.Metadata {
				h.raw += int64(len(m.Name) + len(m.Value))
			}
			h.minT = min(h.minT, e.Timestamp)
			h.maxT = max(h.maxT, e.Timestamp)
			h.lastSeq = seq
			h.lastAppend = now
			st.minT = min(st.minT, e.Timestamp)
			st.maxT = max(st.maxT, e.Timestamp)
			added++
			bytes += int64(len(e.Line)) + entryOverhead
		}
		// Cut full heads at record boundaries, so that a chunk's watermark
		// covers whole records.
		for day, h := range st.heads {
			if h.raw >= s.opts.TargetChunkSize {
				s.detachLocked(t, st, day, h)
			}
		}
		st.mu.Unlock()
	}
	s.headBytes.Add(bytes)
	s.m.appendedBytes.Add(int(bytes))
	if tailing {
		t.publish(streams, func(i int) []chunk.Entry { return published[i] })
	}
	return added
}

// headDetached updates the live-stream count after a head left st.heads.
// The caller holds st.mu.
func (t *tenantDB) headDetached(st *stream) {
	if len(st.heads) == 0 && st.live {
		t.mu.Lock()
		st.live = false
		t.active--
		t.mu.Unlock()
	}
}

// flushed records that head h of st is now the chunk ref.
func (t *tenantDB) flushed(st *stream, h *head, ref ChunkRef) {
	t.mu.Lock()
	t.ids[ref.ID] = struct{}{}
	t.mu.Unlock()
	st.mu.Lock()
	st.addRefLocked(ref)
	if h.lastSeq > st.flushedSeq[h.day] {
		st.flushedSeq[h.day] = h.lastSeq
	}
	st.flushing = slices.DeleteFunc(st.flushing, func(x *head) bool { return x == h })
	st.mu.Unlock()
}

func (st *stream) addRef(ref ChunkRef) {
	st.mu.Lock()
	st.addRefLocked(ref)
	st.mu.Unlock()
}

func (st *stream) addRefLocked(ref ChunkRef) {
	i, _ := slices.BinarySearchFunc(st.chunks, ref.MinTime, func(c ChunkRef, t int64) int {
		if c.MinTime < t {
			return -1
		}
		if c.MinTime > t {
			return 1
		}
		return 0
	})
	st.chunks = slices.Insert(st.chunks, i, ref)
	st.minT = min(st.minT, ref.MinTime)
	st.maxT = max(st.maxT, ref.MaxTime)
}

// addChunk registers a chunk that arrived whole.
func (t *tenantDB) addChunk(ls labels.Labels, ref ChunkRef) {
	st := t.streamFor(ls.Hash(), ls)
	st.addRef(ref)
}

// claimID reserves a chunk ID for writing. stored reports that the chunk
// is already stored; a non-nil wait means another call is writing it right
// now: wait for the channel to close and claim again.
func (t *tenantDB) claimID(id chunk.ID) (stored bool, wait <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.ids[id]; ok {
		return true, nil
	}
	if ch, ok := t.writing[id]; ok {
		return false, ch
	}
	if t.writing == nil {
		t.writing = map[chunk.ID]chan struct{}{}
	}
	t.writing[id] = make(chan struct{})
	return false, nil
}

// finishClaim ends a claim: the ID is stored when ok, free again if not.
func (t *tenantDB) finishClaim(id chunk.ID, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		t.ids[id] = struct{}{}
	}
	close(t.writing[id])
	delete(t.writing, id)
}

// partition returns the partition for a day, creating it in memory (its
// directory appears with the first write).
func (t *tenantDB) partition(day int32) *partition {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[day]
	if p == nil {
		p = openPartition(t.dir+"/"+partitionDirName(day), day)
		t.parts[day] = p
	}
	return p
}

func (t *tenantDB) partitions() []*partition {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*partition, 0, len(t.parts))
	for _, p := range t.parts {
		out = append(out, p)
	}
	return out
}

// oldestWALSegment is the oldest WAL segment a head of this tenant still
// needs, or 0 when none does.
func (t *tenantDB) oldestWALSegment() uint32 {
	var oldest uint32
	for _, st := range t.allStreams() {
		st.mu.Lock()
		for _, h := range st.heads {
			if len(h.entries) > 0 && (oldest == 0 || h.firstSeg < oldest) {
				oldest = h.firstSeg
			}
		}
		for _, h := range st.flushing {
			if oldest == 0 || h.firstSeg < oldest {
				oldest = h.firstSeg
			}
		}
		st.mu.Unlock()
	}
	return oldest
}

func (t *tenantDB) expiredPartitions(cutoff int64) []*partition {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []*partition
	for _, p := range t.parts {
		p.mu.Lock()
		expired := p.maxT < cutoff && p.maxT != -1<<63
		p.mu.Unlock()
		if expired {
			out = append(out, p)
		}
	}
	return out
}

// dropPartition forgets a partition and every chunk ref into it.
func (t *tenantDB) dropPartition(p *partition) {
	t.mu.Lock()
	delete(t.parts, p.day)
	streams := make([]*stream, 0, len(t.streams))
	for _, st := range t.streams {
		streams = append(streams, st)
	}
	t.mu.Unlock()
	for _, st := range streams {
		st.mu.Lock()
		var dropped []chunk.ID
		st.chunks = slices.DeleteFunc(st.chunks, func(c ChunkRef) bool {
			if c.part == p {
				dropped = append(dropped, c.ID)
				return true
			}
			return false
		})
		st.mu.Unlock()
		if len(dropped) > 0 {
			t.mu.Lock()
			for _, id := range dropped {
				delete(t.ids, id)
			}
			t.mu.Unlock()
		}
	}
}
