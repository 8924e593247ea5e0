package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// A partition holds the chunks of one tenant whose first entry falls on one
// UTC day. Its directory has append-only segment files of whole encoded
// chunks and an append-only index log with one record per chunk. Bytes
// once written never change; retention removes a whole directory.
//
// Segment file:  "LSSEG001" then encoded chunks back to back.
// Index file:    "LSIDX001" then records:
//
//	u32 body length | u32 CRC-32C of body | body
//	body: u8 kind (1 = chunk, 2 = compacted chunk) | [32]byte chunk ID | u64 stream hash |
//	      uvarint len | labels | u32 segment | u64 offset | u32 length |
//	      i64 min time | i64 max time | u32 entries | u64 raw bytes |
//	      u32 filter offset | u32 filter length | u64 WAL watermark
//
// A chunk is written and fsynced to its segment before its index record is
// written and fsynced, so an index record never points at missing bytes.
// The WAL watermark is the sequence number of the newest WAL record whose
// entries the chunk holds (0 for chunks that came whole from an agent);
// replay skips what a chunk already holds.

const (
	segmentMagic   = "LSSEG001"
	indexMagic     = "LSIDX001"
	maxSegmentSize = 1 << 30
	indexKindChunk = 1
	// indexKindCompacted is a chunk the compactor re-encoded (compact.go);
	// the body is the same as kind 1's.
	indexKindCompacted = 2
	maxIndexRecord     = 1 << 20
	dayNanos           = int64(24 * time.Hour)
	partitionDirTime   = "20060102"
)

// dayOf is the partition a timestamp belongs to: days since the epoch.
func dayOf(ts int64) int32 {
	d := ts / dayNanos
	if ts < 0 && ts%dayNanos != 0 {
		d--
	}
	return int32(d)
}

func partitionDirName(day int32) string {
	return time.Unix(0, int64(day)*dayNanos).UTC().Format(partitionDirTime)
}

// ChunkRef locates a stored chunk and carries what the planner needs to
// choose it without reading it.
type ChunkRef struct {
	ID               chunk.ID
	MinTime, MaxTime int64
	Entries          int
	RawBytes         int64
	Size             int
	part             *partition
	segment          uint32
	offset           int64
	filterOff        uint32
	filterLen        uint32
}

type partition struct {
	day int32
	dir string
	mu  sync.Mutex // serialises writers
	// opMu is held for the whole of a rewrite (deletion) or a compaction,
	// which both replace the index and move chunks; they must not
	// interleave. Taken before mu.
	opMu sync.Mutex
	segs sync.Map // uint32 -> *os.File, read handles
	// active segment and index, opened on first write
	active     *os.File
	activeID   uint32
	activeSize int64
	index      *os.File
	minT, maxT int64 // over all chunks, for retention
	// uncompacted counts index records the compactor has not re-encoded
	// yet; under mu.
	uncompacted int
	// lastWrite is when a chunk was last written here (Unix ns; at Open,
	// the newest segment's mtime): the compactor leaves partitions alone
	// until it is compaction.min_age old.
	lastWrite atomic.Int64
	// indexCut is set when load cut records off the index; Open then
	// removes no segment, since one may hold what the cut records named.
	indexCut bool
	// gone is set when retention drops the partition, so that a
	// compaction running over it stops.
	gone atomic.Bool
}

type indexRecord struct {
	ref       ChunkRef
	stream    uint64
	labels    labels.Labels
	watermark uint64
	compacted bool // kind 2: re-encoded by the compactor
}

func openPartition(dir string, day int32) *partition {
	return &partition{day: day, dir: dir, minT: 1<<63 - 1, maxT: -1 << 63}
}

// load reads the index log and opens the segments for reading. A torn tail
// of the index (a crash between write and fsync) is cut off.
func (p *partition) load(fn func(indexRecord)) error {
	path := filepath.Join(p.dir, "index")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	magic := make([]byte, len(indexMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != indexMagic {
		return fmt.Errorf("partition %s: index has no valid header", p.dir)
	}
	good := int64(len(indexMagic))
	var hdr [8]byte
	var body []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err != io.EOF {
				return p.truncateIndex(path, good, "torn record header")
			}
			return nil
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > maxIndexRecord {
			return p.truncateIndex(path, good, "record length out of range")
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return p.truncateIndex(path, good, "torn record")
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			return p.truncateIndex(path, good, "checksum mismatch")
		}
		rec, err := decodeIndexRecord(body)
		if err != nil {
			return fmt.Errorf("partition %s: index record at %d: %w", p.dir, good, err)
		}
		rec.ref.part = p
		if rec.ref.MinTime < p.minT {
			p.minT = rec.ref.MinTime
		}
		if rec.ref.MaxTime > p.maxT {
			p.maxT = rec.ref.MaxTime
		}
		fn(rec)
		good += 8 + int64(n)
	}
}

func (p *partition) truncateIndex(path string, good int64, why string) error {
	p.indexCut = true
	if err := truncateTornTail(path, good, errors.New(why)); err != nil {
		return fmt.Errorf("partition %s: %w", p.dir, err)
	}
	return nil
}

func encodeIndexRecord(dst []byte, rec *indexRecord) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, 8)...)
	kind := byte(indexKindChunk)
	if rec.compacted {
		kind = indexKindCompacted
	}
	dst = append(dst, kind)
	dst = append(dst, rec.ref.ID[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, rec.stream)
	dst = appendString(dst, rec.labels.String())
	dst = binary.LittleEndian.AppendUint32(dst, rec.ref.segment)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(rec.ref.offset))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rec.ref.Size))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(rec.ref.MinTime))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(rec.ref.MaxTime))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rec.ref.Entries))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(rec.ref.RawBytes))
	dst = binary.LittleEndian.AppendUint32(dst, rec.ref.filterOff)
	dst = binary.LittleEndian.AppendUint32(dst, rec.ref.filterLen)
	dst = binary.LittleEndian.AppendUint64(dst, rec.watermark)
	body := dst[start+8:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

func decodeIndexRecord(b []byte) (indexRecord, error) {
	var rec indexRecord
	if len(b) < 1+32+8 || (b[0] != indexKindChunk && b[0] != indexKindCompacted) {
		return rec, errors.New("unknown record kind")
	}
	rec.compacted = b[0] == indexKindCompacted
	copy(rec.ref.ID[:], b[1:33])
	rec.stream = binary.LittleEndian.Uint64(b[33:])
	r := &byteReader{b: b[41:]}
	lstr := r.bytes()
	if r.err != nil {
		return rec, r.err
	}
	ls, err := labels.Parse(string(lstr))
	if err != nil {
		return rec, err
	}
	rec.labels = ls
	rest := r.b
	if len(rest) != 4+8+4+8+8+4+8+4+4+8 {
		return rec, fmt.Errorf("record body has %d fixed bytes, want 60", len(rest))
	}
	rec.ref.segment = binary.LittleEndian.Uint32(rest)
	rec.ref.offset = int64(binary.LittleEndian.Uint64(rest[4:]))
	rec.ref.Size = int(binary.LittleEndian.Uint32(rest[12:]))
	rec.ref.MinTime = int64(binary.LittleEndian.Uint64(rest[16:]))
	rec.ref.MaxTime = int64(binary.LittleEndian.Uint64(rest[24:]))
	rec.ref.Entries = int(binary.LittleEndian.Uint32(rest[32:]))
	rec.ref.RawBytes = int64(binary.LittleEndian.Uint64(rest[36:]))
	rec.ref.filterOff = binary.LittleEndian.Uint32(rest[44:])
	rec.ref.filterLen = binary.LittleEndian.Uint32(rest[48:])
	rec.watermark = binary.LittleEndian.Uint64(rest[52:])
	if rec.ref.filterOff > uint32(rec.ref.Size) || rec.ref.filterLen > uint32(rec.ref.Size)-rec.ref.filterOff {
		return rec, errors.New("filter section outside chunk")
	}
	return rec, nil
}

// pendingChunk is an encoded chunk waiting to be written to a partition.
type pendingChunk struct {
	data      []byte
	meta      *chunk.Meta
	stream    uint64
	labels    labels.Labels
	watermark uint64
	// dropped, when set, is asked under the partition lock whether the
	// chunk's stream was deleted meanwhile; such a chunk is not written and
	// its ref comes back with Size 0.
	dropped func() bool
}

// write appends chunks to the active segment and their records to the
// index, with one fsync of each file for the whole batch, and returns the
// refs in the order given.
func (p *partition) write(batch []pendingChunk) ([]ChunkRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, classifyIOError(err)
	}
	if p.index == nil {
		if err := p.openForWrite(); err != nil {
			return nil, err
		}
	}
	var total int64
	skip := make([]bool, len(batch))
	for i, c := range batch {
		if c.dropped != nil && c.dropped() {
			skip[i] = true
			continue
		}
		total += int64(len(c.data))
	}
	if p.activeSize+total > maxSegmentSize && p.activeSize > int64(len(segmentMagic)) {
		if err := p.rollSegment(); err != nil {
			return nil, err
		}
	}
	refs := make([]ChunkRef, len(batch))
	startSize := p.activeSize
	buf := make([]byte, 0, total)
	for i, c := range batch {
		if skip[i] {
			continue
		}
		refs[i] = ChunkRef{
			ID: c.meta.ID, MinTime: c.meta.MinTime, MaxTime: c.meta.MaxTime,
			Entries: c.meta.Entries, RawBytes: c.meta.RawBytes, Size: len(c.data),
			part: p, segment: p.activeID, offset: p.activeSize + int64(len(buf)),
			filterOff: uint32(c.meta.FilterOffset), filterLen: uint32(c.meta.FilterLen),
		}
		buf = append(buf, c.data...)
	}
	if err := writeDurably(p.active, buf); err != nil {
		_ = p.active.Truncate(startSize)
		return nil, fmt.Errorf("write chunk segment in %s: %w", p.dir, err)
	}
	p.activeSize += int64(len(buf))
	var ibuf []byte
	for i, c := range batch {
		if skip[i] {
			continue
		}
		ibuf = encodeIndexRecord(ibuf, &indexRecord{ref: refs[i], stream: c.stream, labels: c.labels, watermark: c.watermark})
	}
	st, err := p.index.Stat()
	if err != nil {
		return nil, err
	}
	if err := writeDurably(p.index, ibuf); err != nil {
		_ = p.index.Truncate(st.Size())
		return nil, fmt.Errorf("write chunk index in %s: %w", p.dir, err)
	}
	p.lastWrite.Store(time.Now().UnixNano())
	for _, r := range refs {
		if r.Size == 0 {
			continue
		}
		p.uncompacted++
		if r.MinTime < p.minT {
			p.minT = r.MinTime
		}
		if r.MaxTime > p.maxT {
			p.maxT = r.MaxTime
		}
	}
	return refs, nil
}

func writeDurably(f *os.File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		return classifyIOError(err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return classifyIOError(err)
	}
	return nil
}

func (p *partition) openForWrite() error {
	ids, err := p.segmentIDs()
	if err != nil {
		return err
	}
	idx, err := os.OpenFile(filepath.Join(p.dir, "index"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return classifyIOError(err)
	}
	st, err := idx.Stat()
	if err != nil {
		idx.Close()
		return err
	}
	if st.Size() == 0 {
		if err := writeDurably(idx, []byte(indexMagic)); err != nil {
			idx.Close()
			return err
		}
	}
	p.index = idx
	next := uint32(1)
	if len(ids) > 0 {
		next = ids[len(ids)-1] + 1
	}
	// A new segment per process start keeps the append offset of every
	// written segment fixed, whatever a crash left at the end of the last.
	return p.createSegment(next)
}

func (p *partition) rollSegment() error {
	if err := p.active.Close(); err != nil {
		return err
	}
	return p.createSegment(p.activeID + 1)
}

func (p *partition) createSegment(id uint32) error {
	path := p.segmentPath(id)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return classifyIOError(err)
	}
	if err := writeDurably(f, []byte(segmentMagic)); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := syncDir(p.dir); err != nil {
		f.Close()
		return err
	}
	p.active, p.activeID, p.activeSize = f, id, int64(len(segmentMagic))
	return nil
}

func (p *partition) segmentPath(id uint32) string {
	return filepath.Join(p.dir, fmt.Sprintf("%06d.seg", id))
}

func (p *partition) segmentIDs() ([]uint32, error) {
	names, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, n := range names {
		base, ok := strings.CutSuffix(n.Name(), ".seg")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(base, 10, 32)
		if err == nil {
			ids = append(ids, uint32(v))
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// reader returns a read handle for a segment, opened once and shared.
func (p *partition) reader(id uint32) (*os.File, error) {
	if f, ok := p.segs.Load(id); ok {
		return f.(*os.File), nil
	}
	f, err := os.Open(p.segmentPath(id))
	if err != nil {
		return nil, fmt.Errorf("open chunk segment: %w", err)
	}
	if old, loaded := p.segs.LoadOrStore(id, f); loaded {
		f.Close()
		return old.(*os.File), nil
	}
	return f, nil
}

// readAt reads length bytes at off of segment id into buf.
func (p *partition) readAt(id uint32, off int64, buf []byte) error {
	f, err := p.reader(id)
	if err != nil {
		return err
	}
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Errorf("read chunk segment %s at %d: %w", p.segmentPath(id), off, err)
	}
	return nil
}

func (p *partition) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.active != nil {
		errs = append(errs, p.active.Close())
		p.active = nil
	}
	if p.index != nil {
		errs = append(errs, p.index.Close())
		p.index = nil
	}
	p.segs.Range(func(k, v any) bool {
		errs = append(errs, v.(*os.File).Close())
		p.segs.Delete(k)
		return true
	})
	return errors.Join(errs...)
}
