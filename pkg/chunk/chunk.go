// Package chunk is logsift's indexed chunk format v1: the entries of one
// stream over a time range, compressed in blocks, with a header, checksums,
// a content-hash ID and a substring filter. The agent builds chunks at the
// edge and the server builds them from pushed entries; both use this package.
//
// The byte layout, the limits and the reasons behind them are documented in
// docs/formats/chunk.md.
package chunk

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/logsift/logsift/pkg/labels"
)

// Entry is one log entry of a stream.
type Entry struct {
	Timestamp int64         // Unix nanoseconds
	Line      []byte        // any bytes, UTF-8 or not
	Metadata  labels.Labels // structured metadata, sorted by name
}

// ID identifies a chunk by the hash of its logical content (labels and
// entries), so the same entries resent are recognised and stored once.
type ID [32]byte

// String returns the ID in lowercase hex.
func (id ID) String() string { return fmt.Sprintf("%x", id[:]) }

// Options tune the encoder. The zero value is the documented default.
type Options struct {
	BlockSize int   // target raw bytes per block; 0 means DefaultBlockSize
	Codec     Codec // compression of the sections; 0 means DefaultCodec
	// Level is the codec's effort; 0 (LevelFast) is what ingest uses. It
	// changes the bytes, not the ID or the entries.
	Level Level
}

// BlockMeta describes one block of a chunk.
type BlockMeta struct {
	MinTime, MaxTime int64
	Entries          int
	RawBytes         int // sum of line lengths in the block
	// MetadataBytes is the raw size of the block's structured metadata
	// section; 0 means no entry of the block has metadata, so a reader that
	// only needs each entry's labels can skip decoding it.
	MetadataBytes int
}

// Meta is a chunk's decoded header.
type Meta struct {
	ID               ID
	Labels           labels.Labels
	MinTime, MaxTime int64
	Entries          int
	RawBytes         int64 // sum of line lengths
	Size             int   // encoded size in bytes
	Blocks           []BlockMeta
	// FilterOffset and FilterLen locate the filter section inside the
	// encoded chunk, so a store can read and test it without the blocks.
	FilterOffset, FilterLen int
	Codec                   Codec // compression of every section
}

// Format constants and limits. Decode rejects anything beyond them, which is
// what bounds the memory a hostile chunk can make a reader allocate.
const (
	Magic   = "LSCK"
	Version = 1

	// DefaultBlockSize is the target raw size of a block (line and metadata
	// bytes); measured as the knee of compression ratio versus decode speed
	// and filter precision (docs/formats/chunk.md).
	DefaultBlockSize = 256 << 10
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 4 << 20

	// MaxLineBytes is the longest line Encode accepts. A block holds about
	// its target size of lines, at most one entry more.
	MaxLineBytes = 8 << 20
	// MaxBlockRaw bounds a block's line bytes and, separately, its metadata
	// bytes: the largest buffer ReadBlock ever allocates per section.
	MaxBlockRaw = MaxLineBytes
	// MaxBlockEntries bounds the entries of one block; Encode cuts a block
	// when it reaches this count even if its bytes are below target.
	MaxBlockEntries = 1 << 16
	// MaxBlocks bounds the blocks of one chunk (16 GiB of lines at the
	// default block size).
	MaxBlocks = 1 << 16
	// MaxLabels, MaxLabelNameBytes and MaxLabelValueBytes bound the stream
	// labels in the header.
	MaxLabels          = 256
	MaxLabelNameBytes  = 1 << 10
	MaxLabelValueBytes = 16 << 10
	// MaxEntryMetadataBytes bounds one entry's encoded structured metadata.
	MaxEntryMetadataBytes = 64 << 10
)

// fixed prefix: magic(4) version(1) codec(1) flags(2) headerLen(4)
const prefixLen = 12

// ErrCorrupt is wrapped by every error that reports malformed encoded bytes.
var ErrCorrupt = errors.New("corrupt chunk")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// Clone returns a deep copy of e that shares no memory with it, for keeping
// an entry returned by ReadBlock after its BlockBuffer is reused.
func (e Entry) Clone() Entry {
	out := Entry{Timestamp: e.Timestamp}
	if e.Line != nil {
		out.Line = append(make([]byte, 0, len(e.Line)), e.Line...)
	}
	if e.Metadata != nil {
		out.Metadata = make(labels.Labels, len(e.Metadata))
		for i, l := range e.Metadata {
			out.Metadata[i] = labels.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
		}
	}
	return out
}
