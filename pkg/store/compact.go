package store

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
)

// Compaction re-encodes sealed chunks once, in the background, at
// chunk.LevelBetter with larger blocks: ingest cannot afford that encoder
// (about 80 MB/s a core against the 100 MB/s two cores must take in), but
// the result is 10-25 % smaller and faster to scan. A chunk keeps its ID,
// labels, entries and WAL watermark; only its bytes and place change.
//
// One partition at a time, on one goroutine:
//
//  a. Under p.mu: the active segment is sealed (later writes start a new
//     one), a new segment number is reserved by creating the output file
//     with O_EXCL, and the index records of the input segments (those with
//     chunks not compacted yet) are taken.
//  b. Without p.mu, since segments never change: every chunk is read,
//     decoded with its checksums checked, and encoded again; the output is
//     fsynced. A chunk that does not decode, or whose entries do not hash
//     to its ID, is copied as it is (never dropped).
//  c. Under p.mu: a new index replaces the old one (tmp, fsync, rename,
//     fsync dir) in which the moved records point at their new place as
//     kind 2 (compacted); records written meanwhile are kept as they are.
//     Then the in-memory references move.
//  d. The input segments are unlinked; their read handles stay open for
//     segmentGrace, for queries that planned with the old references.
//
// A kill before the rename leaves the output segment unreferenced, after it
// the inputs: Open removes segments no index record references.

// CompactionOptions configure the background compactor.
type CompactionOptions struct {
	// Enabled runs the compactor in the background. The server turns it
	// on by default; Store.Compact works either way.
	Enabled bool `yaml:"enabled"`
	// Interval is how often the compactor looks for work (default 1m).
	Interval time.Duration `yaml:"interval"`
	// MinAge leaves a partition alone until its last chunk write is this
	// old (default 10m), so that compaction stays out of ingest bursts.
	MinAge time.Duration `yaml:"min_age"`
	// BlockSize is the block size of compacted chunks (default 1 MiB;
	// chunk.MinBlockSize to chunk.MaxBlockSize).
	BlockSize int `yaml:"block_size"`
	// Codec is the codec compacted chunks are written in: "zstd" (the
	// smallest), "lz4" (LZ4 HC: about 35 % larger, and decoded up to
	// twice as fast; see docs/formats/chunk.md), "auto" (the server's
	// default: LZ4 HC for a chunk it stores within AutoMinRatio, zstd for
	// the rest), or empty to keep each chunk's.
	Codec string `yaml:"codec"`
	// AutoMinRatio is the storage budget of "auto": a chunk is written in
	// LZ4 HC when that stores its raw lines at least this many times
	// smaller, and in zstd otherwise (default 6, the store's target of a
	// sixth of the raw size).
	AutoMinRatio float64 `yaml:"auto_min_ratio"`

	codec chunk.Codec // Codec parsed; 0 keeps each chunk's
	auto  bool        // Codec is "auto"
}

// DefaultCompaction is what the server runs with.
func DefaultCompaction() CompactionOptions {
	return CompactionOptions{Enabled: true, Interval: time.Minute, MinAge: 10 * time.Minute, BlockSize: 1 << 20,
		Codec: "auto", AutoMinRatio: defaultAutoMinRatio}
}

// defaultAutoMinRatio is the stored size the foundation issue allows, a
// sixth of the raw lines: "auto" spends what a chunk has below it on read
// speed, and leaves chunks that would not fit in zstd.
const defaultAutoMinRatio = 6

func (o *CompactionOptions) setDefaults() {
	d := DefaultCompaction()
	if o.Interval <= 0 {
		o.Interval = d.Interval
	}
	if o.MinAge <= 0 {
		o.MinAge = d.MinAge
	}
	if o.BlockSize == 0 {
		o.BlockSize = d.BlockSize
	}
	if o.AutoMinRatio == 0 {
		o.AutoMinRatio = d.AutoMinRatio
	}
}

// parse checks the options and fills codec and auto.
func (o *CompactionOptions) parse() error {
	if b := o.BlockSize; b < chunk.MinBlockSize || b > chunk.MaxBlockSize {
		return fmt.Errorf("compaction.block_size %d outside [%d, %d]", b, chunk.MinBlockSize, chunk.MaxBlockSize)
	}
	if !(o.AutoMinRatio >= 1) { // NaN too: every comparison with it is false
		return fmt.Errorf("compaction.auto_min_ratio %g: want at least 1 (a chunk no larger than its raw lines)", o.AutoMinRatio)
	}
	switch strings.ToLower(strings.TrimSpace(o.Codec)) {
	case "":
	case "auto":
		o.auto = true
	default:
		c, err := chunk.ParseCodec(o.Codec)
		if err != nil {
			return fmt.Errorf("compaction.codec: %w (or auto)", err)
		}
		o.codec = c
	}
	return nil
}

// segmentGrace is how long the read handle of a segment that a rewrite or
// a compaction replaced stays open: longer than any query holds a plan.
const segmentGrace = 2 * time.Minute

// compactHook, when set (tests only), is called at the named steps of a
// partition's compaction: "sealed" after step a, "encoding" halfway
// through step b, "encoded" after it, "index-tmp" when the new index is
// written but not renamed (the only one called under p.mu), "indexed"
// after step c and "retired" after step d.
var compactHook func(step string)

func hook(step string) {
	if compactHook != nil {
		compactHook(step)
	}
}

// errCompactionAborted reports a compaction stopped by Close, a cancelled
// context or retention dropping the partition; nothing was changed.
var errCompactionAborted = errors.New("compaction aborted")

// Compact compacts every partition that has chunks not compacted yet, now,
// whatever their age, and returns when done (POST /compact, tests, the
// bench).
func (s *Store) Compact(ctx context.Context) error {
	return s.compactAll(ctx, time.Time{})
}

// compactAll compacts the partitions with uncompacted chunks, one at a
// time; with a non-zero cutoff only those last written before it.
func (s *Store) compactAll(ctx context.Context, cutoff time.Time) error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if s.closing.Load() {
		return ErrClosed
	}
	s.mu.RLock()
	tenants := make([]*tenantDB, 0, len(s.tenants))
	for _, t := range s.tenants {
		tenants = append(tenants, t)
	}
	s.mu.RUnlock()
	slices.SortFunc(tenants, func(a, b *tenantDB) int { return cmp.Compare(a.name, b.name) })
	var errs []error
	for _, t := range tenants {
		parts := t.partitions()
		slices.SortFunc(parts, func(a, b *partition) int { return int(a.day) - int(b.day) })
		for _, p := range parts {
			for {
				if err := s.compactStopped(ctx); err != nil {
					return errors.Join(append(errs, err)...)
				}
				p.mu.Lock()
				todo := p.uncompacted > 0
				p.mu.Unlock()
				if !todo || (!cutoff.IsZero() && p.lastWrite.Load() > cutoff.UnixNano()) {
					break
				}
				more, err := s.compactPartition(ctx, t, p)
				if errors.Is(err, errCompactionAborted) {
					if err := s.compactStopped(ctx); err != nil {
						return errors.Join(append(errs, err)...)
					}
					break // the partition was dropped
				}
				if err != nil {
					s.m.compactFailures.Inc()
					s.log.Error("compacting partition failed; its chunks stay as they are", "partition", p.dir, "err", err)
					errs = append(errs, fmt.Errorf("compact %s: %w", p.dir, err))
					break
				}
				if !more {
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

// compactStopped says why compaction must stop now, if it must.
func (s *Store) compactStopped(ctx context.Context) error {
	select {
	case <-s.stop:
		return ErrClosed
	default:
	}
	return ctx.Err()
}

// compactLoop runs the background compactor.
func (s *Store) compactLoop() {
	defer s.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	tick := time.NewTicker(s.opts.Compaction.Interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			err := s.compactAll(ctx, now.Add(-s.opts.Compaction.MinAge))
			if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
				s.log.Warn("background compaction", "err", err)
			}
		}
	}
}

// compactPartition compacts the partition's uncompacted segments, as many
// as fit in one output segment, and reports whether some are left.
func (s *Store) compactPartition(ctx context.Context, t *tenantDB, p *partition) (more bool, err error) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	if p.gone.Load() {
		return false, errCompactionAborted
	}
	start := time.Now()

	// a. Seal, reserve, snapshot.
	p.mu.Lock()
	var recs []indexRecord
	if err := p.load(func(r indexRecord) { recs = append(recs, r) }); err != nil {
		p.mu.Unlock()
		return false, err
	}
	segBytes := map[uint32]int64{}
	var pending []uint32
	for _, r := range recs {
		if !r.compacted && !slices.Contains(pending, r.ref.segment) {
			pending = append(pending, r.ref.segment)
		}
		segBytes[r.ref.segment] += int64(r.ref.Size)
	}
	if len(pending) == 0 {
		p.uncompacted = 0
		p.mu.Unlock()
		return false, nil
	}
	slices.Sort(pending)
	// The output must stay a normal-sized segment; what does not fit is
	// the next round's.
	var total int64
	n := 0
	for n < len(pending) && (n == 0 || total+segBytes[pending[n]] <= maxSegmentSize) {
		total += segBytes[pending[n]]
		n++
	}
	inputs := pending[:n]
	more = n < len(pending)
	ids, err := p.segmentIDs()
	if err != nil {
		p.mu.Unlock()
		return false, err
	}
	outID := uint32(1)
	if len(ids) > 0 {
		outID = ids[len(ids)-1] + 1
	}
	// Later writes go to a segment after the output; the inputs no longer
	// change.
	p.closeWriters()
	outPath := p.segmentPath(outID)
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	p.mu.Unlock()
	if err != nil {
		return false, classifyIOError(err)
	}
	discard := func() {
		out.Close()
		_ = os.Remove(outPath)
	}
	var work []indexRecord
	for _, r := range recs {
		if slices.Contains(inputs, r.ref.segment) {
			work = append(work, r)
		}
	}
	slices.SortFunc(work, func(a, b indexRecord) int {
		if a.ref.segment != b.ref.segment {
			return int(a.ref.segment) - int(b.ref.segment)
		}
		return int(a.ref.offset - b.ref.offset)
	})
	hook("sealed")

	// b. Re-encode into the output.
	w := bufio.NewWriterSize(out, 1<<20)
	_, _ = w.WriteString(segmentMagic)
	off := int64(len(segmentMagic))
	moved := make(map[refKey]chunkPlace, len(work))
	var before, after int64
	var buf []byte
	for i := range work {
		r := &work[i]
		if err := s.compactStopped(ctx); err != nil || p.gone.Load() {
			discard()
			return false, errCompactionAborted
		}
		if i == len(work)/2 {
			hook("encoding")
		}
		buf = grow(buf, r.ref.Size)
		if err := p.readAt(r.ref.segment, r.ref.offset, buf); err != nil {
			discard()
			if p.gone.Load() {
				return false, errCompactionAborted
			}
			return false, err
		}
		data := buf
		place := chunkPlace{segment: outID, offset: off, size: r.ref.Size, filterOff: r.ref.filterOff, filterLen: r.ref.filterLen}
		if !r.compacted {
			enc, meta, err := s.reencode(buf, r)
			switch {
			case err != nil:
				s.m.compactCorrupt.Inc()
				s.log.Error("chunk does not decode; the compactor copies it unchanged", "partition", p.dir,
					"segment", r.ref.segment, "offset", r.ref.offset, "chunk", r.ref.ID.String(), "err", err)
			case len(enc) < len(buf) || s.opts.Compaction.codec != 0 || s.opts.Compaction.auto:
				// A chunk is rewritten when that makes it smaller, or
				// always when compaction.codec names the codec to use
				// or the rule that picks it.
				data = enc
				place.size, place.filterOff, place.filterLen = len(enc), uint32(meta.FilterOffset), uint32(meta.FilterLen)
				if c := s.m.compactEncoded[meta.Codec]; c != nil {
					c.Inc()
				}
			}
		}
		if _, err := w.Write(data); err != nil {
			discard()
			return false, classifyIOError(err)
		}
		moved[refKey{r.ref.segment, r.ref.offset}] = place
		off += int64(len(data))
		before += int64(r.ref.Size)
		after += int64(len(data))
	}
	if err := w.Flush(); err != nil {
		discard()
		return false, classifyIOError(err)
	}
	if err := out.Sync(); err != nil {
		discard()
		return false, classifyIOError(err)
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(outPath)
		return false, classifyIOError(err)
	}
	if err := syncDir(p.dir); err != nil {
		_ = os.Remove(outPath)
		return false, err
	}
	hook("encoded")

	// c. Swap the index.
	if err := s.swapIndex(p, inputs, moved); err != nil {
		if errors.Is(err, errIndexRenamed) {
			// The new index is what the file system serves now, durable or
			// not: follow it, and leave the inputs for Open to sort out.
			t.relocate(p, moved)
		} else {
			_ = os.Remove(outPath)
		}
		return false, err
	}
	t.relocate(p, moved)
	hook("indexed")

	// d. The inputs are garbage now.
	p.retireSegments(inputs)
	hook("retired")

	s.m.compactedChunks.Add(len(work))
	s.m.compactBytesBefore.Add(int(before))
	s.m.compactBytesAfter.Add(int(after))
	s.m.compactDuration.UpdateDuration(start)
	s.log.Info("compacted partition", "partition", p.dir, "chunks", len(work), "segments", len(inputs),
		"bytes_before", before, "bytes_after", after, "duration", time.Since(start).Round(time.Millisecond))
	return more, nil
}

// errIndexRenamed wraps a failure after the new index was renamed into
// place: the output segment may be referenced and must stay.
var errIndexRenamed = errors.New("new index in place")

// swapIndex writes the partition's new index: records in the input
// segments point at their place in moved and are marked compacted, every
// other record is kept as it is.
func (s *Store) swapIndex(p *partition, inputs []uint32, moved map[refKey]chunkPlace) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone.Load() {
		return errCompactionAborted
	}
	var recs []indexRecord
	if err := p.load(func(r indexRecord) { recs = append(recs, r) }); err != nil {
		return err
	}
	ibuf := append(make([]byte, 0, len(indexMagic)+len(recs)*160), indexMagic...)
	uncompacted := 0
	for i := range recs {
		r := &recs[i]
		if slices.Contains(inputs, r.ref.segment) {
			to, ok := moved[refKey{r.ref.segment, r.ref.offset}]
			if !ok {
				// Only a rewrite changes records of sealed segments, and it
				// holds opMu as this compaction does.
				return fmt.Errorf("chunk %s at segment %d offset %d appeared in a sealed segment during compaction", r.ref.ID, r.ref.segment, r.ref.offset)
			}
			r.ref.segment, r.ref.offset, r.ref.Size = to.segment, to.offset, to.size
			r.ref.filterOff, r.ref.filterLen = to.filterOff, to.filterLen
			r.compacted = true
		}
		if !r.compacted {
			uncompacted++
		}
		ibuf = encodeIndexRecord(ibuf, r)
	}
	tmp := filepath.Join(p.dir, "index.tmp")
	if err := writeFileDurably(tmp, ibuf); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	hook("index-tmp")
	if err := os.Rename(tmp, filepath.Join(p.dir, "index")); err != nil {
		_ = os.Remove(tmp)
		return classifyIOError(err)
	}
	// A handle opened on the index during step b points at the replaced
	// file now; the next write opens the new one (and a new segment).
	p.closeWriters()
	p.uncompacted = uncompacted
	if err := syncDir(p.dir); err != nil {
		return fmt.Errorf("%w: %w", errIndexRenamed, err)
	}
	return nil
}

// reencode decodes a stored chunk, checksums checked, and encodes its
// entries again at LevelBetter with the configured block size, in the
// same codec. The new chunk must hash to the same ID.
func (s *Store) reencode(b []byte, r *indexRecord) ([]byte, *chunk.Meta, error) {
	c, err := chunk.Decode(b)
	if err != nil {
		return nil, nil, err
	}
	m := c.Meta()
	if m.ID != r.ref.ID {
		return nil, nil, fmt.Errorf("chunk is %s, the index says %s", m.ID, r.ref.ID)
	}
	ents := make([]chunk.Entry, 0, m.Entries)
	for i := range m.Blocks {
		// A buffer per block: the entries point into it until Encode.
		var bb chunk.BlockBuffer
		es, err := c.ReadBlock(i, &bb)
		if err != nil {
			return nil, nil, err
		}
		ents = append(ents, es...)
	}
	o := &s.opts.Compaction
	codec := m.Codec
	switch {
	case o.codec != 0:
		codec = o.codec
	case o.auto:
		codec = chunk.CodecLZ4
	}
	encode := func(c chunk.Codec) ([]byte, *chunk.Meta, error) {
		return chunk.Encode(m.Labels, ents, chunk.Options{Codec: c, Level: chunk.LevelBetter, BlockSize: o.BlockSize})
	}
	data, meta, err := encode(codec)
	if err != nil {
		return nil, nil, err
	}
	if o.auto && float64(meta.RawBytes) < o.AutoMinRatio*float64(len(data)) {
		// Over the budget in LZ4 HC: zstd, the smallest there is.
		if data, meta, err = encode(chunk.CodecZstd); err != nil {
			return nil, nil, err
		}
	}
	if meta.ID != m.ID || meta.Entries != m.Entries || meta.RawBytes != m.RawBytes {
		return nil, nil, fmt.Errorf("re-encoded chunk differs: ID %s, %d entries, %d bytes (was %s, %d, %d)",
			meta.ID, meta.Entries, meta.RawBytes, m.ID, m.Entries, m.RawBytes)
	}
	return data, meta, nil
}

// closeWriters seals the active segment and closes the index handle; the
// next write opens both again, in a new segment. The caller holds p.mu.
func (p *partition) closeWriters() {
	if p.active != nil {
		p.active.Close()
		p.active = nil
	}
	if p.index != nil {
		p.index.Close()
		p.index = nil
	}
}

// retireSegments unlinks segments whose chunks moved. A query that took a
// reference before the move reads the old place: each segment's read
// handle is opened (if it was not) before the unlink and kept for
// segmentGrace, and only then closed and forgotten.
func (p *partition) retireSegments(ids []uint32) {
	for _, id := range ids {
		f, err := p.reader(id)
		if rmErr := os.Remove(p.segmentPath(id)); rmErr != nil {
			continue // Open removes it if it is still there
		}
		if err != nil {
			continue
		}
		time.AfterFunc(segmentGrace, func() {
			if p.segs.CompareAndDelete(id, f) {
				f.Close()
			}
		})
	}
	_ = syncDir(p.dir)
}

// removeUnreferenced runs at Open, after load: it deletes the segment
// files no index record references. Such a file is what a rewrite or a
// compaction left when killed (its output before the index rename, its
// inputs after), or a segment whose chunks never got their index record:
// those chunks were never acknowledged (their entries are still in the
// WAL, or an agent resends them), and no process appends to a segment it
// did not create, so nothing can come to reference them. When load had to
// cut the index, nothing is removed: a cut record may name a segment.
func (p *partition) removeUnreferenced(referenced map[uint32]bool) ([]uint32, error) {
	_ = os.Remove(filepath.Join(p.dir, "index.tmp"))
	if p.indexCut {
		return nil, nil
	}
	ids, err := p.segmentIDs()
	if err != nil {
		return nil, err
	}
	var removed []uint32
	var newest time.Time
	for _, id := range ids {
		if referenced[id] {
			if st, err := os.Stat(p.segmentPath(id)); err == nil && st.ModTime().After(newest) {
				newest = st.ModTime()
			}
			continue
		}
		if err := os.Remove(p.segmentPath(id)); err != nil {
			return removed, err
		}
		removed = append(removed, id)
	}
	p.lastWrite.Store(newest.UnixNano())
	if len(removed) > 0 {
		return removed, syncDir(p.dir)
	}
	return nil, nil
}
