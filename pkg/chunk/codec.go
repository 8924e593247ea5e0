package chunk

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec names the compression of a chunk's sections; it is byte 5 of every
// chunk, so chunks of both codecs live side by side in one store.
type Codec uint8

const (
	// CodecZstd is zstd at its fastest level: the smallest chunks, and
	// the default, because it keeps the stored size under a sixth of the
	// raw lines (docs/formats/chunk.md).
	CodecZstd Codec = 1
	// CodecLZ4 is the LZ4 block format: chunks about 40 % larger than
	// zstd's that decompress about 2.5 times faster, which is what a
	// query that reads every line (a pattern or json over a whole stream)
	// spends most of its time on.
	CodecLZ4 Codec = 2

	// DefaultCodec is the codec of Options' zero value.
	DefaultCodec = CodecZstd
)

// String returns the codec's configuration name.
func (c Codec) String() string {
	switch c {
	case CodecZstd:
		return "zstd"
	case CodecLZ4:
		return "lz4"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec returns the codec a configuration names ("zstd" or "lz4"; ""
// is DefaultCodec).
func ParseCodec(s string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return DefaultCodec, nil
	case "zstd":
		return CodecZstd, nil
	case "lz4":
		return CodecLZ4, nil
	}
	return 0, fmt.Errorf("chunk: unknown codec %q (want zstd or lz4)", s)
}

func (c Codec) valid() bool { return c == CodecZstd || c == CodecLZ4 }

// Level trades encoding speed for size. It is not recorded in the chunk:
// readers decode every level alike, and the ID, which hashes the logical
// content, does not change with it, so a chunk re-encoded at another level
// is the same chunk.
type Level uint8

const (
	// LevelFast is zstd's fastest level and plain LZ4: what ingest can
	// afford at 100 MB/s on two cores. It is Options' zero value.
	LevelFast Level = 0
	// LevelBetter is zstd's SpeedBetterCompression and, for LZ4 chunks,
	// LZ4 HC at depth 9, for the store's background compactor: it encodes
	// at a third of LevelFast's speed, too slow for ingest. Each zstd
	// section is encoded twice, with and without entropy coding of its
	// literals, and stored without it when Huffman coding would save less
	// than rawLiteralsSlack: raw literals skip Huffman decoding and the
	// reading of a Huffman table per frame, which on sections of a few KiB
	// costs as much as the decoding itself. On access logs, whose lines
	// are mostly matches, that decodes about a third faster for about 12 %
	// more bytes; on text with many literals (JSON values, ids, Loghub)
	// Huffman saves far more and is kept (docs/formats/chunk.md).
	LevelBetter Level = 1
)

func (l Level) valid() bool { return l == LevelFast || l == LevelBetter }

// One zstd encoder and one decoder serve the whole process: EncodeAll and
// DecodeAll are safe for concurrent use and keep per-call state in internal
// pools sized to the number of cores, so there is nothing to gain from more.
var (
	zOnce sync.Once
	zEnc  *zstd.Encoder
	zDec  *zstd.Decoder
	zErr  error

	// The LevelBetter encoder is created on first use: only a compacting
	// store needs its memory.
	zBetterOnce sync.Once
	zBetter     *zstd.Encoder
	zBetterRaw  *zstd.Encoder
	zBetterErr  error
)

// zstdBetter returns the shared LevelBetter encoders: with entropy coding
// of literals, and without.
func zstdBetter() (huff, raw *zstd.Encoder, err error) {
	zBetterOnce.Do(func() {
		for _, noEntropy := range []bool{false, true} {
			enc, err := zstd.NewWriter(nil,
				zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
				zstd.WithNoEntropyCompression(noEntropy),
				zstd.WithEncoderConcurrency(max(runtime.GOMAXPROCS(0), 2)),
				zstd.WithEncoderCRC(false),
				zstd.WithLowerEncoderMem(true),
				zstd.WithWindowSize(MaxBlockRaw),
			)
			if err != nil {
				zBetterErr = err
				return
			}
			if noEntropy {
				zBetterRaw = enc
			} else {
				zBetter = enc
			}
		}
	})
	if zBetterErr != nil {
		return nil, nil, fmt.Errorf("chunk: init zstd (better): %w", zBetterErr)
	}
	return zBetter, zBetterRaw, nil
}

// rawLiteralsSlack is how much larger, in percent, a LevelBetter section
// may be stored with raw literals than with Huffman-coded ones, and how
// much it must save against its raw bytes to be stored compressed at all.
const rawLiteralsSlack = 15

func zstdCodecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zOnce.Do(func() {
		n := max(runtime.GOMAXPROCS(0), 2)
		zEnc, zErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(n),
			zstd.WithEncoderCRC(false), // sections carry CRC32C already
			zstd.WithLowerEncoderMem(true),
			zstd.WithWindowSize(MaxBlockRaw),
		)
		if zErr != nil {
			return
		}
		zDec, zErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(n),
			zstd.WithDecoderMaxMemory(MaxBlockRaw),
			zstd.WithDecoderMaxWindow(MaxBlockRaw),
			// Never write past cap(dst): the caller sizes dst from the
			// header's declared raw size, so a frame cannot inflate beyond
			// it whatever its own header claims.
			zstd.WithDecodeAllCapLimit(true),
		)
	})
	if zErr != nil {
		return nil, nil, fmt.Errorf("chunk: init zstd: %w", zErr)
	}
	return zEnc, zDec, nil
}

// An lz4.Compressor is a 64 KiB hash table that must not be shared by
// concurrent calls; pooling keeps one per encoding goroutine.
var lz4Pool = sync.Pool{New: func() any { return new(lz4.Compressor) }}

// lz4HCPool is the same for LevelBetter; depth 9 is where LZ4 HC's ratio
// levels off in docs/formats/chunk.md's measurement.
var lz4HCPool = sync.Pool{New: func() any { return &lz4.CompressorHC{Level: lz4.Level9} }}

// compressSection appends the encoded form of raw to dst. A section whose
// compressed form is not smaller than raw is stored as is; the reader tells
// the two apart by comparing the stored and raw lengths.
func compressSection(c Codec, dst, raw []byte) ([]byte, error) {
	return compressSectionAt(c, LevelFast, dst, raw)
}

// compressSectionAt is compressSection at a chosen level.
func compressSectionAt(c Codec, lvl Level, dst, raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return dst, nil
	}
	start := len(dst)
	switch c {
	case CodecZstd:
		if lvl == LevelBetter {
			huff, rawLits, err := zstdBetter()
			if err != nil {
				return dst, err
			}
			dst = huff.EncodeAll(raw, dst)
			n := len(dst) - start
			dst = rawLits.EncodeAll(raw, dst)
			if m := len(dst) - start - n; m*100 <= n*(100+rawLiteralsSlack) {
				copy(dst[start:], dst[start+n:])
				dst = dst[:start+m]
			} else {
				dst = dst[:start+n]
			}
			break
		}
		enc, _, err := zstdCodecs()
		if err != nil {
			return dst, err
		}
		dst = enc.EncodeAll(raw, dst)
	case CodecLZ4:
		bound := lz4.CompressBlockBound(len(raw))
		dst = slices.Grow(dst, bound)
		var n int
		var err error
		if lvl == LevelBetter {
			hc := lz4HCPool.Get().(*lz4.CompressorHC)
			n, err = hc.CompressBlock(raw, dst[start:start+bound])
			lz4HCPool.Put(hc)
		} else {
			lc := lz4Pool.Get().(*lz4.Compressor)
			n, err = lc.CompressBlock(raw, dst[start:start+bound])
			lz4Pool.Put(lc)
		}
		if err != nil {
			return dst, fmt.Errorf("chunk: lz4: %w", err)
		}
		if n == 0 { // incompressible: stored raw below
			n = len(raw)
		}
		dst = dst[:start+n]
	default:
		return dst, fmt.Errorf("chunk: unknown codec %d", c)
	}
	n := len(dst) - start
	if n >= len(raw) || (lvl == LevelBetter && n*100 > len(raw)*(100-rawLiteralsSlack)) {
		// LevelBetter is for data read many times: a section that
		// compresses by less than rawLiteralsSlack is stored raw, where
		// reading it costs a copy (timestamp sections of nanosecond
		// timestamps, mostly noise, saved 13 % for a Huffman decode that
		// made a count 20 % slower).
		dst = append(dst[:start], raw...)
	}
	return dst, nil
}

// decodeSlack is the room decompressSection leaves past a section's raw
// size. The zstd decoder copies with wide, overrunning moves only while the
// output buffer has room for a whole zstd block (the section's size, at
// most 128 KiB) plus 32 bytes beyond what it has written, and falls back to
// exact, much slower copies otherwise; without the slack the last block of
// every section took the slow path (measured with the slack:
// BenchmarkDecodeScan about 8% faster, the pattern query benchmark 25-35%
// faster under load). A frame that writes into the slack is still
// rejected: the result must be exactly rawLen bytes.
func decodeSlack(rawLen int) int { return min(rawLen, 128<<10) + 32 }

// decompressSection decodes a section of rawLen bytes into dst[:0], growing
// dst to rawLen plus decodeSlack capacity when needed. The result has len
// rawLen or an error is returned.
func decompressSection(c Codec, dst, comp []byte, rawLen int) ([]byte, error) {
	limit := rawLen + decodeSlack(rawLen)
	if cap(dst) < limit {
		// A quarter more than needed: the blocks of a chunk differ a
		// little in size, and a scan that reuses dst for block after block
		// would otherwise allocate again at each slightly larger one.
		dst = make([]byte, 0, limit+limit/4)
	}
	if len(comp) == rawLen {
		return append(dst[:0], comp...), nil
	}
	if rawLen == 0 {
		return dst[:0], corruptf("compressed section with no content")
	}
	switch c {
	case CodecLZ4:
		// The output is bounded by len(dst): a block that would inflate
		// past the declared size fails instead of growing anything.
		n, err := lz4.UncompressBlock(comp, dst[:rawLen])
		if err != nil {
			return dst, corruptf("decompress section: lz4: %v", err)
		}
		if n != rawLen {
			return dst, corruptf("section decompressed to %d bytes, header says %d", n, rawLen)
		}
		return dst[:rawLen], nil
	case CodecZstd:
	default:
		return dst, corruptf("unknown codec %d", c)
	}
	_, dec, err := zstdCodecs()
	if err != nil {
		return dst, err
	}
	out, err := dec.DecodeAll(comp, dst[:0:limit])
	if err != nil {
		return dst, corruptf("decompress section: %v", err)
	}
	if len(out) != rawLen || &out[0] != &dst[:1][0] {
		return dst, corruptf("section decompressed to %d bytes, header says %d", len(out), rawLen)
	}
	// Keep the buffer's whole capacity for the next, maybe larger, section.
	return dst[:rawLen], nil
}
