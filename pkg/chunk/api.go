// Package chunk is logsift's indexed chunk format v1: the entries of one
// stream over a time range, compressed in blocks, with a header, checksums,
// a content-hash ID and a substring filter. The agent builds chunks at the
// edge and the server builds them from pushed entries; both use this package.
//
// API CONTRACT (skeleton written before the implementation; the implementer
// keeps these exported names and meanings and may add more).
package chunk

import (
	"errors"

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

// Options tune the encoder. The zero value is the documented default.
type Options struct {
	BlockSize int // target raw bytes per block; 0 means the default
}

// BlockMeta describes one block of a chunk.
type BlockMeta struct {
	MinTime, MaxTime int64
	Entries          int
	RawBytes         int // sum of line lengths in the block
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
}

// ErrNotImplemented marks the skeleton; it disappears with the implementation.
var ErrNotImplemented = errors.New("chunk: not implemented")

// Encode sorts entries by timestamp in place (stable: equal timestamps keep
// their order) and encodes them as one chunk of the stream lbls.
func Encode(lbls labels.Labels, entries []Entry, opts Options) ([]byte, *Meta, error) {
	return nil, nil, ErrNotImplemented
}

// Chunk is a decoded, validated view over an encoded chunk. It does not copy
// the bytes it was decoded from; blocks are decompressed on demand.
type Chunk struct{}

// Decode validates an encoded chunk completely (magic, version, every length
// and every checksum) without decompressing blocks, and never panics or
// allocates more than a bound derived from len(b).
func Decode(b []byte) (*Chunk, error) { return nil, ErrNotImplemented }

// Meta returns the header.
func (c *Chunk) Meta() *Meta { return nil }

// Filter returns the chunk's substring filter.
func (c *Chunk) Filter() *Filter { return nil }

// ReadBlock decompresses block i and returns its entries in timestamp order.
// Line and metadata bytes may point into buf, which is reused across calls.
func (c *Chunk) ReadBlock(i int, buf *BlockBuffer) ([]Entry, error) { return nil, ErrNotImplemented }

// BlockTimestamps returns the timestamps of block i without decompressing
// its lines (metric queries such as count_over_time need only these).
func (c *Chunk) BlockTimestamps(i int, dst []int64) ([]int64, error) { return nil, ErrNotImplemented }

// BlockBuffer holds reusable decompression memory for ReadBlock.
type BlockBuffer struct{}

// Filter answers "may this chunk (or block) contain substring S". It has no
// false negatives for needles of 3 bytes or more, case-sensitive or not.
type Filter struct{}

// ParseFilter validates a filter section (Meta.FilterOffset/FilterLen) and
// returns a view over it without copying.
func ParseFilter(b []byte) (*Filter, error) { return nil, ErrNotImplemented }

// MayContain reports whether some line of the chunk may contain needle.
// fold asks for ASCII/Unicode case-insensitive matching as (?i) does.
// Needles shorter than 3 bytes always return true.
func (f *Filter) MayContain(needle []byte, fold bool) bool { return true }

// BlockMayContain is MayContain for block i alone (true when the filter has
// no per-block part).
func (f *Filter) BlockMayContain(i int, needle []byte, fold bool) bool { return true }
