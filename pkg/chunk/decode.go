package chunk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"unsafe"

	"github.com/logsift/logsift/pkg/labels"
)

// Chunk is a decoded, validated view over an encoded chunk. It does not copy
// the bytes it was decoded from; blocks are decompressed on demand. The
// caller must keep those bytes unchanged while it uses the Chunk. A Chunk is
// safe for concurrent use when each goroutine has its own BlockBuffer.
type Chunk struct {
	Header
	b      []byte
	filter *Filter
}

// Header is a chunk's decoded header alone: labels, time range, counts and
// the block table, enough to locate every section without reading it. A
// store reads it from the first Meta.FilterOffset bytes of a stored chunk
// when a query needs only some sections (count_over_time reads timestamp
// sections and nothing else).
type Header struct {
	meta   Meta
	blocks []blockLoc
}

// blockLoc locates one block's sections inside the encoded chunk.
type blockLoc struct {
	blockHeader
	off int // first byte of the timestamp section
}

// reader consumes a byte slice, turning every overrun into an error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = corruptf("header: bad %s", what)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a uvarint that must lie in [lo, hi].
func (r *reader) count(what string, lo, hi uint64) int {
	v := r.uvarint(what)
	if r.err == nil && (v < lo || v > hi) {
		r.err = corruptf("header: %s %d outside [%d, %d]", what, v, lo, hi)
		return 0
	}
	return int(v)
}

func (r *reader) bytes(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// ignoreChecksums is a test hook: FuzzDecode turns it on for half its runs
// so that mutated bytes get past the checksums to the parsers behind them.
var ignoreChecksums bool

// Decode validates an encoded chunk completely (magic, version, every length
// and every checksum) without decompressing blocks, and never panics or
// allocates more than a bound derived from len(b).
//
// It does not recompute the ID or the filter from the lines, which needs
// every block decompressed; Verify does that.
func Decode(b []byte) (*Chunk, error) {
	c, _, err := decode(b, true)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DecodeFirst decodes the chunk that starts at b[0] when more bytes may
// follow it, as in a segment file of chunks back to back, and returns its
// encoded size. It validates exactly as Decode does.
func DecodeFirst(b []byte) (*Chunk, int, error) {
	return decode(b, false)
}

func decode(b []byte, exact bool) (*Chunk, int, error) {
	h, err := parseHeader(b, len(b))
	if err != nil {
		return nil, 0, err
	}
	m := &h.meta
	for i := range h.blocks {
		bl := &h.blocks[i]
		end := bl.off + bl.tsComp + bl.lineComp + bl.mdComp
		if got, want := crc(b[bl.off:end]), binary.LittleEndian.Uint32(b[end:]); got != want && !ignoreChecksums {
			return nil, 0, corruptf("block %d: checksum %08x, want %08x", i, got, want)
		}
	}
	if exact && m.Size != len(b) {
		return nil, 0, corruptf("%d bytes after the last block", len(b)-m.Size)
	}
	b = b[:m.Size]
	parse := ParseFilter
	if ignoreChecksums {
		parse = ViewFilter
	}
	f, err := parse(b[m.FilterOffset : m.FilterOffset+m.FilterLen])
	if err != nil {
		return nil, 0, err
	}
	if f.n != len(h.blocks) {
		return nil, 0, corruptf("filter covers %d blocks, chunk has %d", f.n, len(h.blocks))
	}
	return &Chunk{Header: *h, b: b, filter: f}, m.Size, nil
}

// DecodeHeader decodes the header of a chunk of size bytes from b, which
// holds at least its first FilterOffset bytes (prefix, header and header
// checksum). It validates everything the header says, including that the
// block table fits in size bytes, but reads no section: block checksums and
// the filter are Decode's to check.
func DecodeHeader(b []byte, size int) (*Header, error) {
	return parseHeader(b, size)
}

// parseHeader decodes the prefix and header at the start of b for a chunk
// that can be at most size bytes long (size ≥ len(b) when b is a prefix).
func parseHeader(b []byte, size int) (*Header, error) {
	if len(b) < prefixLen+4 || size < len(b) {
		return nil, corruptf("%d bytes is shorter than any chunk", len(b))
	}
	if string(b[:4]) != Magic {
		return nil, corruptf("bad magic %q", b[:4])
	}
	if b[4] != Version {
		return nil, corruptf("unsupported version %d", b[4])
	}
	if !Codec(b[5]).valid() {
		return nil, corruptf("unsupported codec %d", b[5])
	}
	if b[6] != 0 || b[7] != 0 {
		return nil, corruptf("reserved flags %#x%02x set", b[7], b[6])
	}
	hlen := uint64(binary.LittleEndian.Uint32(b[8:]))
	if hlen > uint64(len(b)-prefixLen-4) {
		return nil, corruptf("header length %d exceeds the chunk", hlen)
	}
	hend := prefixLen + int(hlen)
	if got, want := crc(b[:hend]), binary.LittleEndian.Uint32(b[hend:]); got != want && !ignoreChecksums {
		return nil, corruptf("header checksum %08x, want %08x", got, want)
	}

	h := &Header{}
	m := &h.meta
	m.Codec = Codec(b[5])
	r := reader{b: b[prefixLen:hend]}
	copy(m.ID[:], r.bytes("id", len(m.ID)))
	m.Labels = readLabels(&r)
	m.MinTime = r.varint("min time")
	span := r.uvarint("time span")
	if r.err == nil && span > uint64(math.MaxInt64)-uint64(m.MinTime) {
		return nil, corruptf("header: time span %d overflows", span)
	}
	m.MaxTime = int64(uint64(m.MinTime) + span)
	m.Entries = r.count("entry count", 1, MaxBlocks*MaxBlockEntries)
	raw := r.uvarint("raw bytes")
	m.FilterLen = r.count("filter length", 9, uint64(size))
	nblocks := r.count("block count", 1, MaxBlocks)
	if r.err != nil {
		return nil, r.err
	}
	// Every block row takes at least 9 bytes, so the header's own length
	// bounds the allocations below.
	if nblocks > len(r.b)/9 {
		return nil, corruptf("header: %d blocks do not fit in %d bytes", nblocks, len(r.b))
	}
	m.FilterOffset = hend + 4
	if m.FilterLen > size-m.FilterOffset {
		return nil, corruptf("filter section of %d bytes exceeds the chunk", m.FilterLen)
	}

	m.Blocks = make([]BlockMeta, nblocks)
	h.blocks = make([]blockLoc, nblocks)
	pos := m.FilterOffset + m.FilterLen
	var cur uint64 // offset of the previous block's max time from MinTime
	var entries, rawSum uint64
	for i := range h.blocks {
		bl := &h.blocks[i]
		delta := r.uvarint("block min time")
		bspan := r.uvarint("block time span")
		bl.entries = r.count("block entry count", 1, MaxBlockEntries)
		bl.raw = r.count("block raw bytes", 0, MaxBlockRaw)
		bl.tsRaw = r.count("timestamp section size", uint64(2*bl.entries), uint64(2*binary.MaxVarintLen64*bl.entries))
		bl.tsComp = r.count("timestamp section stored size", 1, uint64(bl.tsRaw))
		bl.lineComp = r.count("line section stored size", 0, uint64(bl.raw))
		bl.mdRaw = r.count("metadata section size", 0, MaxBlockRaw)
		bl.mdComp = r.count("metadata section stored size", 0, uint64(bl.mdRaw))
		if r.err != nil {
			return nil, r.err
		}
		if (bl.raw == 0) != (bl.lineComp == 0) || (bl.mdRaw == 0) != (bl.mdComp == 0) {
			return nil, corruptf("block %d: empty section with stored bytes or the reverse", i)
		}
		if bl.mdRaw != 0 && bl.mdRaw < bl.entries {
			return nil, corruptf("block %d: metadata section of %d bytes for %d entries", i, bl.mdRaw, bl.entries)
		}
		if i == 0 && delta != 0 {
			return nil, corruptf("block 0 starts after the chunk's min time")
		}
		if delta > span-cur || bspan > span-cur-delta {
			return nil, corruptf("block %d: time range outside the chunk's", i)
		}
		minOff := cur + delta
		cur = minOff + bspan
		bl.minTime = int64(uint64(m.MinTime) + minOff)
		bl.maxTime = int64(uint64(m.MinTime) + cur)
		entries += uint64(bl.entries)
		rawSum += uint64(bl.raw)

		sz := bl.tsComp + bl.lineComp + bl.mdComp
		if sz > size-pos-4 {
			return nil, corruptf("block %d: %d bytes past the end of the chunk", i, sz)
		}
		bl.off = pos
		pos += sz + 4
		m.Blocks[i] = BlockMeta{MinTime: bl.minTime, MaxTime: bl.maxTime, Entries: bl.entries, RawBytes: bl.raw, MetadataBytes: bl.mdRaw}
	}
	switch {
	case len(r.b) != 0:
		return nil, corruptf("header: %d unread bytes", len(r.b))
	case cur != span:
		return nil, corruptf("last block ends before the chunk's max time")
	case entries != uint64(m.Entries):
		return nil, corruptf("blocks hold %d entries, header says %d", entries, m.Entries)
	case rawSum != raw:
		return nil, corruptf("blocks hold %d line bytes, header says %d", rawSum, raw)
	}
	m.Size = pos
	m.RawBytes = int64(raw)
	return h, nil
}

func readLabels(r *reader) labels.Labels {
	n := r.count("label count", 0, MaxLabels)
	if r.err != nil || n == 0 {
		return nil
	}
	if n > len(r.b)/2 {
		r.fail("label count")
		return nil
	}
	ls := make(labels.Labels, n)
	for i := range ls {
		name := r.bytes("label name", r.count("label name length", 1, MaxLabelNameBytes))
		value := r.bytes("label value", r.count("label value length", 0, MaxLabelValueBytes))
		if r.err != nil {
			return nil
		}
		ls[i] = labels.Label{Name: string(name), Value: string(value)}
	}
	if err := ls.Validate(); err != nil {
		r.err = corruptf("header: stream labels: %v", err)
		return nil
	}
	return ls
}

// Meta returns the header. The caller must not modify it.
func (h *Header) Meta() *Meta { return &h.meta }

// Filter returns the chunk's substring filter.
func (c *Chunk) Filter() *Filter { return c.filter }

// Bytes returns the encoded chunk the Chunk was decoded from.
func (c *Chunk) Bytes() []byte { return c.b }

// BlockBuffer holds reusable decompression memory for ReadBlock. The zero
// value is ready to use; one BlockBuffer must not be used concurrently.
type BlockBuffer struct {
	ts      []byte
	stamps  []int64
	lines   []byte
	md      []byte
	entries []Entry
	pairs   []labels.Label
	mdSpans [][2]int32 // per entry: its pairs, [start, end) of pairs

	// Set by NeedMetadata: decode a block's metadata only when one of
	// mdNames occurs in its section.
	mdLimit bool
	mdNames [][]byte
	// mdPending are the entries of the block last read whose metadata
	// ReadBlock left undecoded (LoadMetadata); nil when there are none.
	mdPending []Entry
}

// NeedMetadata tells ReadBlock which structured metadata its caller reads.
// With all set (what a zero BlockBuffer does) every block's metadata is
// decoded. Otherwise a block's is decoded only when one of names occurs
// anywhere in the bytes of its metadata section (so a block that holds
// such a label is always decoded, whole); the entries of other blocks
// have nil Metadata until LoadMetadata. A metric query grouping by a few
// labels reads no metadata but those: the detected_level a server gives
// every entry then costs no decoding. A skipped section is not parsed, so
// malformed metadata in it goes unnoticed until something needs it.
func (b *BlockBuffer) NeedMetadata(names []string, all bool) {
	b.mdLimit = !all
	b.mdNames = b.mdNames[:0]
	for _, n := range names {
		b.mdNames = append(b.mdNames, []byte(n))
	}
}

// MetadataPending reports whether the block last read has structured
// metadata that ReadBlock left undecoded.
func (b *BlockBuffer) MetadataPending() bool { return b.mdPending != nil }

// LoadMetadata decodes the structured metadata ReadBlock left undecoded
// (see NeedMetadata) into the entries it returned; it does nothing when
// none is pending.
func (b *BlockBuffer) LoadMetadata() error {
	ents := b.mdPending
	if ents == nil {
		return nil
	}
	b.mdPending = nil
	return b.readMetadata(ents)
}

// mayHoldNeeded reports whether the raw metadata section md can hold a
// label that NeedMetadata asked for.
func (b *BlockBuffer) mayHoldNeeded(md []byte) bool {
	if !b.mdLimit {
		return true
	}
	for _, n := range b.mdNames {
		if bytes.Contains(md, n) {
			return true
		}
	}
	return false
}

// Lines returns the line bytes of the block last read into b: the lines of
// its entries back to back, in order, so a caller may search them with one
// bytes.Index and map a hit back to an entry by the running sum of line
// lengths.
func (b *BlockBuffer) Lines() []byte { return b.lines }

func (h *Header) block(i int) (*blockLoc, error) {
	if i < 0 || i >= len(h.blocks) {
		return nil, fmt.Errorf("chunk: block %d out of range [0, %d)", i, len(h.blocks))
	}
	return &h.blocks[i], nil
}

// ReadBlock decompresses block i and returns its entries in timestamp order.
// Line bytes and metadata strings point into buf and stay valid until buf is
// used again: copy what must outlive that (strings.Clone for metadata).
func (c *Chunk) ReadBlock(i int, buf *BlockBuffer) ([]Entry, error) {
	return c.readBlock(i, buf, true)
}

// ReadBlockWithoutLines is ReadBlock for a reader that needs timestamps and
// structured metadata but no line, such as a count grouped by
// detected_level (what Grafana's Logs Drilldown draws for every service):
// the line section, nearly all of a block, is not decompressed, and every
// entry's Line is nil. The line lengths are still checked against the
// block's size.
func (c *Chunk) ReadBlockWithoutLines(i int, buf *BlockBuffer) ([]Entry, error) {
	return c.readBlock(i, buf, false)
}

func (c *Chunk) readBlock(i int, buf *BlockBuffer, withLines bool) ([]Entry, error) {
	bl, err := c.block(i)
	if err != nil {
		return nil, err
	}
	pos := bl.off
	buf.ts, err = decompressSection(c.meta.Codec, buf.ts, c.b[pos:pos+bl.tsComp], bl.tsRaw)
	if err != nil {
		return nil, fmt.Errorf("block %d timestamps: %w", i, err)
	}
	pos += bl.tsComp
	buf.lines = buf.lines[:0]
	if withLines {
		buf.lines, err = decompressSection(c.meta.Codec, buf.lines, c.b[pos:pos+bl.lineComp], bl.raw)
		if err != nil {
			return nil, fmt.Errorf("block %d lines: %w", i, err)
		}
	}
	pos += bl.lineComp
	buf.md = buf.md[:0]
	buf.mdPending = nil
	if bl.mdRaw > 0 {
		buf.md, err = decompressSection(c.meta.Codec, buf.md, c.b[pos:pos+bl.mdComp], bl.mdRaw)
		if err != nil {
			return nil, fmt.Errorf("block %d metadata: %w", i, err)
		}
	}

	if cap(buf.entries) < bl.entries {
		buf.entries = make([]Entry, bl.entries, bl.entries+bl.entries/4)
	}
	ents := buf.entries[:bl.entries]
	buf.stamps = slices.Grow(buf.stamps[:0], bl.entries)[:bl.entries]
	rest, err := readTimestamps(buf.ts, bl, buf.stamps)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", i, err)
	}
	for k, ts := range buf.stamps {
		ents[k].Timestamp = ts
	}
	off := 0
	for k := range ents {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(bl.raw-off) {
			return nil, corruptf("block %d: bad length of line %d", i, k)
		}
		rest = rest[w:]
		ents[k].Line = nil
		if withLines {
			ents[k].Line = buf.lines[off : off+int(n) : off+int(n)]
		}
		ents[k].Metadata = nil
		off += int(n)
	}
	if len(rest) != 0 || off != bl.raw {
		return nil, corruptf("block %d: line lengths do not add up to %d bytes", i, bl.raw)
	}
	if bl.mdRaw > 0 {
		if !buf.mayHoldNeeded(buf.md) {
			buf.mdPending = ents
		} else if err := buf.readMetadata(ents); err != nil {
			return nil, fmt.Errorf("block %d: %w", i, err)
		}
	}
	return ents, nil
}

// readTimestamps parses the timestamp deltas at the start of a decompressed
// timestamp section into ts (len(ts) == entries), checking that they rise
// from the block's min to its max time, and returns the rest of the section
// (the line lengths).
func readTimestamps(sec []byte, bl *blockLoc, ts []int64) ([]byte, error) {
	span := uint64(bl.maxTime) - uint64(bl.minTime)
	ts = ts[:bl.entries]
	var cur uint64
	for k := range ts {
		var d uint64
		// Most deltas of a busy stream fit in one or two bytes; the
		// general decoder handles the rest.
		if len(sec) > 0 && sec[0] < 0x80 {
			d = uint64(sec[0])
			sec = sec[1:]
		} else if len(sec) > 1 && sec[1] < 0x80 {
			d = uint64(sec[0]&0x7f) | uint64(sec[1])<<7
			sec = sec[2:]
		} else {
			v, w := binary.Uvarint(sec)
			if w <= 0 {
				return nil, corruptf("bad timestamp delta of entry %d", k)
			}
			d = v
			sec = sec[w:]
		}
		if d > span-cur || (k == 0 && d != 0) {
			return nil, corruptf("bad timestamp delta of entry %d", k)
		}
		cur += d
		ts[k] = int64(uint64(bl.minTime) + cur)
	}
	if cur != span {
		return nil, corruptf("timestamps end before the block's max time")
	}
	return sec, nil
}

func (buf *BlockBuffer) readMetadata(ents []Entry) error {
	md := buf.md
	buf.pairs = buf.pairs[:0]
	buf.mdSpans = buf.mdSpans[:0]
	// Most entries carry the same metadata as the one before them (on a
	// server nearly every entry has detected_level, mostly one value).
	// The encoding of an entry's metadata is self-delimiting, so if what
	// follows starts with the previous entry's bytes, those bytes are
	// this entry's whole encoding and its pairs are the previous ones.
	var prev []byte
	var prevSpan [2]int32
	str := func() (string, bool) {
		n, w := binary.Uvarint(md)
		if w <= 0 || n > uint64(len(md)-w) {
			return "", false
		}
		s := md[w : w+int(n)]
		md = md[w+int(n):]
		return unsafe.String(unsafe.SliceData(s), len(s)), true
	}
	for k := range ents {
		if len(prev) > 0 && len(md) >= len(prev) && string(md[:len(prev)]) == string(prev) {
			md = md[len(prev):]
			buf.mdSpans = append(buf.mdSpans, prevSpan)
			continue
		}
		rest := md
		n, w := binary.Uvarint(md)
		if w <= 0 || n > uint64(len(md)-w)/2 {
			return corruptf("bad metadata count of entry %d", k)
		}
		md = md[w:]
		start := int32(len(buf.pairs))
		for range n {
			name, ok1 := str()
			value, ok2 := str()
			if !ok1 || !ok2 {
				return corruptf("bad metadata of entry %d", k)
			}
			buf.pairs = append(buf.pairs, labels.Label{Name: name, Value: value})
		}
		prev, prevSpan = rest[:len(rest)-len(md)], [2]int32{start, int32(len(buf.pairs))}
		buf.mdSpans = append(buf.mdSpans, prevSpan)
	}
	if len(md) != 0 {
		return corruptf("%d bytes after the last entry's metadata", len(md))
	}
	// Slices are taken once pairs has stopped growing.
	for k, sp := range buf.mdSpans {
		if sp[1] > sp[0] {
			ents[k].Metadata = buf.pairs[sp[0]:sp[1]:sp[1]]
		}
	}
	return nil
}

var tsBufPool = sync.Pool{New: func() any { return new([]byte) }}

// BlockTimestamps appends the timestamps of block i to dst and returns the
// extended slice, without decompressing the block's lines (metric queries
// such as count_over_time need only these).
func (c *Chunk) BlockTimestamps(i int, dst []int64) ([]int64, error) {
	off, n, err := c.TimestampSection(i)
	if err != nil {
		return dst, err
	}
	return c.Header.BlockTimestamps(i, c.b[off:off+n], dst)
}

// TimestampSection locates block i's stored timestamp section within the
// chunk: n bytes from offset off.
func (h *Header) TimestampSection(i int) (off, n int, err error) {
	bl, err := h.block(i)
	if err != nil {
		return 0, 0, err
	}
	return bl.off, bl.tsComp, nil
}

// BlockTimestamps appends the timestamps of block i to dst, decoding them
// from sec, the stored section TimestampSection locates. Without the rest of
// the block its checksum cannot be checked; the section is validated by its
// structure instead: it must decompress to exactly its declared size and its
// deltas must rise from the block's min to exactly its max time.
func (h *Header) BlockTimestamps(i int, sec []byte, dst []int64) ([]int64, error) {
	bl, err := h.block(i)
	if err != nil {
		return dst, err
	}
	if len(sec) != bl.tsComp {
		return dst, fmt.Errorf("chunk: timestamp section of block %d is %d bytes, want %d", i, len(sec), bl.tsComp)
	}
	bp := tsBufPool.Get().(*[]byte)
	defer tsBufPool.Put(bp)
	*bp, err = decompressSection(h.meta.Codec, *bp, sec, bl.tsRaw)
	if err != nil {
		return dst, fmt.Errorf("block %d timestamps: %w", i, err)
	}
	dst = slices.Grow(dst, bl.entries)
	base := len(dst)
	dst = dst[:base+bl.entries]
	if _, err := readTimestamps(*bp, bl, dst[base:]); err != nil {
		return dst[:base], fmt.Errorf("block %d: %w", i, err)
	}
	return dst, nil
}
