package chunk

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"github.com/logsift/logsift/pkg/labels"
)

// idDomain starts every hashed stream so a chunk ID can never equal the
// SHA-256 of some other logsift structure.
const idDomain = "logsift chunk id v1\n"

// idHasher computes a chunk ID from its logical content, independent of
// block boundaries and compression: labels, entry count, then each entry's
// timestamp (8 bytes little-endian), line and metadata, length-prefixed with
// uvarints. Small fields are batched in buf so sha256 sees large writes.
type idHasher struct {
	h   hash.Hash
	buf []byte
}

func (x *idHasher) begin(lbls labels.Labels, entries int) {
	if x.h == nil {
		x.h = sha256.New()
		x.buf = make([]byte, 0, 64<<10)
	}
	x.h.Reset()
	x.buf = append(x.buf[:0], idDomain...)
	x.buf = appendPairs(x.buf, lbls)
	x.buf = binary.AppendUvarint(x.buf, uint64(entries))
}

func (x *idHasher) entry(ts int64, line []byte, md labels.Labels) {
	if len(x.buf)+len(line) > cap(x.buf)-1024 {
		x.flush()
	}
	x.buf = binary.LittleEndian.AppendUint64(x.buf, uint64(ts))
	x.buf = binary.AppendUvarint(x.buf, uint64(len(line)))
	if len(line) > cap(x.buf)/2 {
		x.flush()
		x.h.Write(line)
	} else {
		x.buf = append(x.buf, line...)
	}
	x.buf = appendPairs(x.buf, md)
}

func (x *idHasher) flush() {
	x.h.Write(x.buf)
	x.buf = x.buf[:0]
}

func (x *idHasher) sum() ID {
	x.flush()
	var id ID
	x.h.Sum(id[:0])
	return id
}

// appendPairs encodes a label set as uvarint count followed by
// length-prefixed names and values; headers, metadata sections and the ID
// all use this form.
func appendPairs(b []byte, ls labels.Labels) []byte {
	b = binary.AppendUvarint(b, uint64(len(ls)))
	for _, l := range ls {
		b = binary.AppendUvarint(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = binary.AppendUvarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	}
	return b
}

func pairsLen(ls labels.Labels) int {
	n := uvarintLen(uint64(len(ls)))
	for _, l := range ls {
		n += uvarintLen(uint64(len(l.Name))) + len(l.Name) + uvarintLen(uint64(len(l.Value))) + len(l.Value)
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
