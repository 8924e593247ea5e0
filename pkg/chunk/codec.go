package chunk

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// One encoder and one decoder serve the whole process: EncodeAll and
// DecodeAll are safe for concurrent use and keep per-call state in internal
// pools sized to the number of cores, so there is nothing to gain from more.
var (
	zOnce sync.Once
	zEnc  *zstd.Encoder
	zDec  *zstd.Decoder
	zErr  error
)

func codecs() (*zstd.Encoder, *zstd.Decoder, error) {
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

// compressSection appends the encoded form of raw to dst. A section whose
// compressed form is not smaller than raw is stored as is; the reader tells
// the two apart by comparing the stored and raw lengths.
func compressSection(enc interface {
	EncodeAll(src, dst []byte) []byte
}, dst, raw []byte) []byte {
	if len(raw) == 0 {
		return dst
	}
	start := len(dst)
	dst = enc.EncodeAll(raw, dst)
	if len(dst)-start >= len(raw) {
		dst = append(dst[:start], raw...)
	}
	return dst
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
func decompressSection(dst, comp []byte, rawLen int) ([]byte, error) {
	limit := rawLen + decodeSlack(rawLen)
	if cap(dst) < limit {
		dst = make([]byte, 0, limit)
	}
	if len(comp) == rawLen {
		return append(dst[:0], comp...), nil
	}
	if rawLen == 0 {
		return dst[:0], corruptf("compressed section with no content")
	}
	_, dec, err := codecs()
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
