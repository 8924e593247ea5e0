package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/logsift/logsift/pkg/labels"
)

// Deleting streams (a workspace's data, for example) removes their bytes
// from disk, not just from view. It happens in four steps:
//
//  1. The WAL writer, between two groups of records, notes the sequence
//     number S of the last record applied, drops the streams' head chunks
//     and their chunk references from memory. From then on queries no
//     longer see the data.
//  2. A tombstone {stream, S, pending} is appended to the tenant's
//     tombstones file and fsynced. WAL replay skips the stream's entries
//     from records up to S, so the data cannot come back from the WAL.
//  3. Every partition holding chunks of the streams is rewritten without
//     them: the remaining chunks are copied into a new segment, a new index
//     replaces the old one atomically (rename), and the old segments are
//     unlinked.
//  4. The tombstone is marked done.
//
// A crash between 2 and 4 leaves a pending tombstone; Open finishes the
// rewrite before it serves anything. Entries written to the same labels
// after S are new data and stay. Deleted entries still sit in WAL segments
// until those are trimmed after the next flush.

const (
	tombstonesFile   = "tombstones"
	tombstoneMagic   = "LSTMB001"
	tombstonePending = 1
	tombstoneDone    = 2
)

type tombstone struct {
	stream uint64
	seq    uint64
	state  uint8
	labels labels.Labels
}

type deleteRequest struct {
	tenant *tenantDB
	ms     []*labels.Matcher
	reply  chan deleteResult
}

type deleteResult struct {
	seq     uint64
	streams []*stream
}

// DeleteStreams deletes every entry of the tenant's streams that match all
// matchers, from memory and from disk, and returns the number of streams.
// At least one matcher must reject the empty string, as in a query.
func (s *Store) DeleteStreams(ctx context.Context, tenantID string, ms []*labels.Matcher) (int, error) {
	if s.closing.Load() {
		return 0, ErrClosed
	}
	selective := false
	for _, m := range ms {
		if !m.MatchesEmpty() {
			selective = true
		}
	}
	if !selective {
		return 0, errors.New("delete needs at least one matcher that does not match the empty string")
	}
	t := s.tenant(tenantID, false)
	if t == nil {
		return 0, nil
	}
	t.delMu.Lock()
	defer t.delMu.Unlock()
	req := &deleteRequest{tenant: t, ms: ms, reply: make(chan deleteResult, 1)}
	select {
	case s.delQ <- req:
	case <-s.stop:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	res := <-req.reply
	if len(res.streams) == 0 {
		return 0, nil
	}
	tombs := make([]tombstone, len(res.streams))
	for i, st := range res.streams {
		tombs[i] = tombstone{stream: st.hash, seq: res.seq, state: tombstonePending, labels: st.labels}
	}
	if err := t.appendTombstones(tombs); err != nil {
		return 0, fmt.Errorf("delete: record tombstones: %w", err)
	}
	s.noteDeleted(tenantID)
	if err := s.purge(t, tombs); err != nil {
		return 0, fmt.Errorf("delete: rewrite partitions (the data is already invisible and will be removed on the next start): %w", err)
	}
	for i := range tombs {
		tombs[i].state = tombstoneDone
	}
	if err := t.appendTombstones(tombs); err != nil {
		return 0, fmt.Errorf("delete: mark tombstones done: %w", err)
	}
	return len(res.streams), nil
}

// cutDeleted runs on the WAL writer: with every record up to s.seq applied
// and no other applied concurrently, it drops the matching streams' heads
// and chunk references from memory.
func (s *Store) cutDeleted(req *deleteRequest) deleteResult {
	t := req.tenant
	res := deleteResult{seq: s.seq}
	for _, st := range t.match(req.ms) {
		st.mu.Lock()
		var freed int64
		for day, h := range st.heads {
			freed += h.memBytes()
			delete(st.heads, day)
		}
		t.headDetached(st)
		// Heads being flushed stay in the flush queue; their chunks are
		// dropped when written (see pendingChunk.dropped).
		// Heads being flushed give their memory back when their job ends.
		st.flushing = nil
		st.deletedSeq.Store(s.seq)
		dropped := st.chunks
		st.chunks = nil
		st.minT, st.maxT = 1<<63-1, -1<<63
		st.mu.Unlock()
		s.headBytes.Add(-freed)
		t.mu.Lock()
		for _, c := range dropped {
			delete(t.ids, c.ID)
		}
		t.tomb[st.hash] = s.seq
		t.mu.Unlock()
		res.streams = append(res.streams, st)
	}
	return res
}

// purge rewrites every partition of the tenant without the chunks the
// tombstones cover.
func (s *Store) purge(t *tenantDB, tombs []tombstone) error {
	covered := make(map[uint64]uint64, len(tombs))
	for _, tb := range tombs {
		covered[tb.stream] = tb.seq
	}
	drop := func(rec *indexRecord) bool {
		seq, ok := covered[rec.stream]
		return ok && rec.watermark <= seq
	}
	var errs []error
	for _, p := range t.partitions() {
		moved, err := p.rewrite(drop)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(moved) > 0 {
			t.relocate(p, moved)
		}
	}
	return errors.Join(errs...)
}

// refKey names a chunk's place in a partition.
type refKey struct {
	segment uint32
	offset  int64
}

// chunkPlace is where a moved chunk is now, and its encoded layout there
// (a compacted chunk has other bytes than the original).
type chunkPlace struct {
	segment              uint32
	offset               int64
	size                 int
	filterOff, filterLen uint32
}

// relocate points the references of chunks that a rewrite or a compaction
// moved at their new place. Queries that copied a reference before keep
// reading the old segment, which stays open for segmentGrace.
func (t *tenantDB) relocate(p *partition, moved map[refKey]chunkPlace) {
	for _, st := range t.allStreams() {
		st.mu.Lock()
		for i := range st.chunks {
			c := &st.chunks[i]
			if c.part != p {
				continue
			}
			if to, ok := moved[refKey{c.segment, c.offset}]; ok {
				c.segment, c.offset, c.Size = to.segment, to.offset, to.size
				c.filterOff, c.filterLen = to.filterOff, to.filterLen
			}
		}
		st.mu.Unlock()
	}
}

// rewrite copies the chunks that drop does not select into a new segment
// and replaces the index with one that lists only them. It returns where
// each kept chunk went; nil when nothing was dropped.
func (p *partition) rewrite(drop func(*indexRecord) bool) (map[refKey]chunkPlace, error) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	var recs []indexRecord
	if err := p.load(func(r indexRecord) { recs = append(recs, r) }); err != nil {
		return nil, err
	}
	keep := recs[:0:0]
	for i := range recs {
		if !drop(&recs[i]) {
			keep = append(keep, recs[i])
		}
	}
	if len(keep) == len(recs) {
		return nil, nil
	}
	ids, err := p.segmentIDs()
	if err != nil {
		return nil, err
	}
	newID := uint32(1)
	if len(ids) > 0 {
		newID = ids[len(ids)-1] + 1
	}
	// New writes go to a fresh segment after this one.
	p.closeWriters()
	seg, err := os.OpenFile(p.segmentPath(newID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, classifyIOError(err)
	}
	w := bufio.NewWriterSize(seg, 1<<20)
	off := int64(len(segmentMagic))
	_, _ = w.WriteString(segmentMagic)
	moved := map[refKey]chunkPlace{}
	var buf []byte
	var ibuf []byte
	ibuf = append(ibuf, indexMagic...)
	p.minT, p.maxT = 1<<63-1, -1<<63
	for i := range keep {
		r := &keep[i]
		buf = grow(buf, r.ref.Size)
		if err := p.readAt(r.ref.segment, r.ref.offset, buf); err != nil {
			seg.Close()
			os.Remove(p.segmentPath(newID))
			return nil, err
		}
		if _, err := w.Write(buf); err != nil {
			seg.Close()
			os.Remove(p.segmentPath(newID))
			return nil, classifyIOError(err)
		}
		moved[refKey{r.ref.segment, r.ref.offset}] = chunkPlace{newID, off, r.ref.Size, r.ref.filterOff, r.ref.filterLen}
		r.ref.segment, r.ref.offset = newID, off
		off += int64(r.ref.Size)
		ibuf = encodeIndexRecord(ibuf, r)
		p.minT = min(p.minT, r.ref.MinTime)
		p.maxT = max(p.maxT, r.ref.MaxTime)
	}
	if err := w.Flush(); err != nil {
		seg.Close()
		return nil, classifyIOError(err)
	}
	if err := seg.Sync(); err != nil {
		seg.Close()
		return nil, classifyIOError(err)
	}
	seg.Close()
	tmp := filepath.Join(p.dir, "index.tmp")
	if err := writeFileDurably(tmp, ibuf); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, "index")); err != nil {
		return nil, err
	}
	if err := syncDir(p.dir); err != nil {
		return nil, err
	}
	p.uncompacted = 0
	for i := range keep {
		if !keep[i].compacted {
			p.uncompacted++
		}
	}
	// Old segments go now; queries that planned with them keep reading
	// the unlinked files for a while.
	p.retireSegments(ids)
	return moved, nil
}

func writeFileDurably(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return classifyIOError(err)
	}
	if err := writeDurably(f, b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// appendTombstones records tombstones durably.
func (t *tenantDB) appendTombstones(tombs []tombstone) error {
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return classifyIOError(err)
	}
	path := filepath.Join(t.dir, tombstonesFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return classifyIOError(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	var b []byte
	if st.Size() == 0 {
		b = append(b, tombstoneMagic...)
	}
	for _, tb := range tombs {
		start := len(b)
		b = append(b, make([]byte, 8)...)
		b = binary.LittleEndian.AppendUint64(b, tb.stream)
		b = binary.LittleEndian.AppendUint64(b, tb.seq)
		b = append(b, tb.state)
		b = appendString(b, tb.labels.String())
		body := b[start+8:]
		binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
		binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	}
	if err := writeDurably(f, b); err != nil {
		return err
	}
	if st.Size() == 0 {
		return syncDir(t.dir)
	}
	return nil
}

// loadTombstones reads the tombstones file; the last record of a stream
// wins. A torn tail is ignored (its delete was never acknowledged).
func (t *tenantDB) loadTombstones() ([]tombstone, error) {
	f, err := os.Open(filepath.Join(t.dir, tombstonesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, len(tombstoneMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != tombstoneMagic {
		return nil, fmt.Errorf("tombstones of tenant %s: bad header", t.name)
	}
	latest := map[uint64]tombstone{}
	var order []uint64
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > maxIndexRecord || n < 17 {
			break
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil || crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		tb := tombstone{stream: binary.LittleEndian.Uint64(body), seq: binary.LittleEndian.Uint64(body[8:]), state: body[16]}
		br := &byteReader{b: body[17:]}
		ls, err := labels.Parse(string(br.bytes()))
		if br.err != nil || err != nil {
			break
		}
		tb.labels = ls
		if _, seen := latest[tb.stream]; !seen {
			order = append(order, tb.stream)
		}
		latest[tb.stream] = tb
	}
	out := make([]tombstone, 0, len(order))
	for _, h := range order {
		out = append(out, latest[h])
	}
	return out, nil
}

// finishDeletes, at Open after the partitions are loaded, completes the
// deletions a stop interrupted: their partitions still hold the chunks
// (loadPartitions already left them out of memory).
func (s *Store) finishDeletes() error {
	s.mu.RLock()
	tenants := make([]*tenantDB, 0, len(s.tenants))
	for _, t := range s.tenants {
		tenants = append(tenants, t)
	}
	s.mu.RUnlock()
	for _, t := range tenants {
		pending := t.pendingTombs
		t.pendingTombs = nil
		if len(pending) == 0 {
			continue
		}
		s.log.Warn("finishing deletions interrupted by a stop", "tenant", t.name, "streams", len(pending))
		if err := s.purge(t, pending); err != nil {
			return err
		}
		for i := range pending {
			pending[i].state = tombstoneDone
		}
		if err := t.appendTombstones(pending); err != nil {
			return err
		}
	}
	return nil
}
