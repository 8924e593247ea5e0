package chunk

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/logsift/logsift/pkg/labels"
)

// ErrNoEntries is returned by Encode for an empty entry list: a chunk always
// holds at least one entry.
var ErrNoEntries = errors.New("chunk: no entries to encode")

// blockHeader is one row of the header's block table.
type blockHeader struct {
	minTime, maxTime int64
	entries          int
	raw              int // line bytes
	tsRaw, tsComp    int
	lineComp         int
	mdRaw, mdComp    int
}

// encoder holds every buffer Encode needs; it is pooled so steady-state
// encoding allocates little beyond the returned chunk.
type encoder struct {
	fb        filterBuilder
	id        idHasher
	lines     []byte // the block's lines, concatenated
	low       []byte // lines lowercased, plus padding for 8-byte loads
	secA      []byte // timestamp deltas then line lengths, uvarints
	secC      []byte // metadata
	data      []byte // compressed blocks with their checksums
	filterDir []byte
	filterMap []byte
	hdr       []byte
	blocks    []blockHeader
	sizes     []int32 // per entry: line plus encoded metadata bytes
}

var encoderPool = sync.Pool{New: func() any { return new(encoder) }}

// Encode sorts entries by timestamp in place (stable: equal timestamps keep
// their order) and encodes them as one chunk of the stream lbls.
//
// It fails on invalid labels, on no entries, on a line longer than
// MaxLineBytes, on an entry whose metadata exceeds MaxEntryMetadataBytes,
// or when the entries need more than MaxBlocks blocks.
func Encode(lbls labels.Labels, entries []Entry, opts Options) ([]byte, *Meta, error) {
	target := opts.BlockSize
	if target == 0 {
		target = DefaultBlockSize
	}
	if target < MinBlockSize || target > MaxBlockSize {
		return nil, nil, fmt.Errorf("chunk: block size %d outside [%d, %d]", target, MinBlockSize, MaxBlockSize)
	}
	if err := checkLabels(lbls); err != nil {
		return nil, nil, fmt.Errorf("chunk: stream labels: %w", err)
	}
	if len(entries) == 0 {
		return nil, nil, ErrNoEntries
	}
	codec := opts.Codec
	if codec == 0 {
		codec = DefaultCodec
	}
	if !codec.valid() {
		return nil, nil, fmt.Errorf("chunk: unknown codec %d", codec)
	}
	if !opts.Level.valid() {
		return nil, nil, fmt.Errorf("chunk: unknown level %d", opts.Level)
	}
	if !slices.IsSortedFunc(entries, compareEntries) {
		slices.SortStableFunc(entries, compareEntries)
	}

	e := encoderPool.Get().(*encoder)
	defer encoderPool.Put(e)
	e.data, e.filterDir, e.filterMap, e.blocks = e.data[:0], e.filterDir[:0], e.filterMap[:0], e.blocks[:0]
	e.id.begin(lbls, len(entries))

	// Validate every entry and size it (line plus encoded metadata), then
	// split the entries into blocks of about equal size: a chunk cut at a
	// byte target would otherwise end in a sliver of a block whose few
	// lines compress and filter poorly.
	e.sizes = e.sizes[:0]
	var sum int64
	for i := range entries {
		ent := &entries[i]
		if len(ent.Line) > MaxLineBytes {
			return nil, nil, fmt.Errorf("chunk: entry %d: line of %d bytes exceeds %d", i, len(ent.Line), MaxLineBytes)
		}
		n := len(ent.Line)
		if len(ent.Metadata) > 0 {
			md := pairsLen(ent.Metadata)
			if md > MaxEntryMetadataBytes {
				return nil, nil, fmt.Errorf("chunk: entry %d: structured metadata of %d bytes exceeds %d", i, md, MaxEntryMetadataBytes)
			}
			n += md
		}
		e.sizes = append(e.sizes, int32(n))
		sum += int64(n)
	}
	nblocks := max((sum+int64(target)-1)/int64(target), 1)
	balanced := max(int((sum+nblocks-1)/nblocks), 1)

	var rawTotal int64
	for start := 0; start < len(entries); {
		end, size := start, 0
		for end < len(entries) && end-start < MaxBlockEntries {
			n := int(e.sizes[end])
			if end > start && size+n > MaxBlockRaw {
				break
			}
			size += n
			end++
			if size >= balanced {
				break
			}
		}
		if len(e.blocks) == MaxBlocks {
			return nil, nil, fmt.Errorf("chunk: entries need more than %d blocks", MaxBlocks)
		}
		bh, err := e.encodeBlock(codec, opts.Level, entries[start:end])
		if err != nil {
			return nil, nil, err
		}
		rawTotal += int64(bh.raw)
		e.blocks = append(e.blocks, bh)
		start = end
	}
	id := e.id.sum()

	// Filter section: version, block count, directory, bitmaps, CRC32C.
	filterLen := 1 + 4 + len(e.filterDir) + len(e.filterMap) + 4

	meta := &Meta{
		ID:       id,
		Labels:   lbls.Copy(),
		MinTime:  entries[0].Timestamp,
		MaxTime:  entries[len(entries)-1].Timestamp,
		Entries:  len(entries),
		RawBytes: rawTotal,
		Blocks:   make([]BlockMeta, len(e.blocks)),
		Codec:    codec,
	}
	e.hdr = append(e.hdr[:0], id[:]...)
	e.hdr = appendPairs(e.hdr, lbls)
	e.hdr = binary.AppendVarint(e.hdr, meta.MinTime)
	e.hdr = binary.AppendUvarint(e.hdr, uint64(meta.MaxTime)-uint64(meta.MinTime))
	e.hdr = binary.AppendUvarint(e.hdr, uint64(meta.Entries))
	e.hdr = binary.AppendUvarint(e.hdr, uint64(rawTotal))
	e.hdr = binary.AppendUvarint(e.hdr, uint64(filterLen))
	e.hdr = binary.AppendUvarint(e.hdr, uint64(len(e.blocks)))
	prevMax := meta.MinTime
	for i, b := range e.blocks {
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.minTime)-uint64(prevMax))
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.maxTime)-uint64(b.minTime))
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.entries))
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.raw))
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.tsRaw))
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.tsComp))
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.lineComp))
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.mdRaw))
		e.hdr = binary.AppendUvarint(e.hdr, uint64(b.mdComp))
		prevMax = b.maxTime
		meta.Blocks[i] = BlockMeta{MinTime: b.minTime, MaxTime: b.maxTime, Entries: b.entries, RawBytes: b.raw, MetadataBytes: b.mdRaw}
	}

	total := prefixLen + len(e.hdr) + 4 + filterLen + len(e.data)
	out := make([]byte, 0, total)
	out = append(out, Magic...)
	out = append(out, Version, byte(codec), 0, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(e.hdr)))
	out = append(out, e.hdr...)
	out = binary.LittleEndian.AppendUint32(out, crc(out))

	meta.FilterOffset, meta.FilterLen = len(out), filterLen
	out = append(out, filterVersion)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(e.blocks)))
	out = append(out, e.filterDir...)
	out = append(out, e.filterMap...)
	out = binary.LittleEndian.AppendUint32(out, crc(out[meta.FilterOffset:]))

	out = append(out, e.data...)
	meta.Size = len(out)
	return out, meta, nil
}

func compareEntries(a, b Entry) int { return cmp.Compare(a.Timestamp, b.Timestamp) }

// encodeBlock appends one block's sections and checksum to e.data and its
// filter to e.filterDir/e.filterMap, and feeds its entries to the ID.
func (e *encoder) encodeBlock(codec Codec, lvl Level, ents []Entry) (blockHeader, error) {
	bh := blockHeader{minTime: ents[0].Timestamp, maxTime: ents[len(ents)-1].Timestamp, entries: len(ents)}
	e.secA, e.secC, e.lines = e.secA[:0], e.secC[:0], e.lines[:0]
	prev := bh.minTime
	hasMD := false
	for i := range ents {
		ent := &ents[i]
		e.secA = binary.AppendUvarint(e.secA, uint64(ent.Timestamp)-uint64(prev))
		prev = ent.Timestamp
		e.lines = append(e.lines, ent.Line...)
		hasMD = hasMD || len(ent.Metadata) > 0
		e.id.entry(ent.Timestamp, ent.Line, ent.Metadata)
	}
	for i := range ents {
		e.secA = binary.AppendUvarint(e.secA, uint64(len(ents[i].Line)))
	}
	if hasMD {
		for i := range ents {
			e.secC = appendPairs(e.secC, ents[i].Metadata)
		}
	}
	bh.raw, bh.tsRaw, bh.mdRaw = len(e.lines), len(e.secA), len(e.secC)

	start := len(e.data)
	var err error
	if e.data, err = compressSectionAt(codec, lvl, e.data, e.secA); err != nil {
		return bh, err
	}
	bh.tsComp = len(e.data) - start
	if e.data, err = compressSectionAt(codec, lvl, e.data, e.lines); err != nil {
		return bh, err
	}
	bh.lineComp = len(e.data) - start - bh.tsComp
	if e.data, err = compressSectionAt(codec, lvl, e.data, e.secC); err != nil {
		return bh, err
	}
	bh.mdComp = len(e.data) - start - bh.tsComp - bh.lineComp
	e.data = binary.LittleEndian.AppendUint32(e.data, crc(e.data[start:]))

	limit := filterCap(bh.raw, len(e.data)-start)
	e.markGrams(ents, scratchLg(limit))
	e.filterDir, e.filterMap = e.fb.finish(e.filterDir, e.filterMap, limit)
	return bh, nil
}

// markGrams lowercases the block's lines (e.lines, back to back) and marks
// their grams in a fresh scratch of 2^lg slots.
func (e *encoder) markGrams(ents []Entry, lg uint) {
	raw := len(e.lines)
	if cap(e.low) < raw+8 {
		e.low = make([]byte, raw+8, raw+raw/4+8)
	}
	low := e.low[:raw+8]
	lowerASCII(low, e.lines)
	e.fb.reset(lg)
	off := 0
	for i := range ents {
		n := len(ents[i].Line)
		if n >= 3 {
			e.fb.addLine(low[off:], n)
		}
		off += n
	}
}

// checkLabels applies labels.Validate plus the format's size limits.
func checkLabels(lbls labels.Labels) error {
	if len(lbls) > MaxLabels {
		return fmt.Errorf("%d labels, at most %d allowed", len(lbls), MaxLabels)
	}
	for _, l := range lbls {
		if len(l.Name) > MaxLabelNameBytes || len(l.Value) > MaxLabelValueBytes {
			return fmt.Errorf("label %.64q: name or value too long", l.Name)
		}
	}
	return lbls.Validate()
}
