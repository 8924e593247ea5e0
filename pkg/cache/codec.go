package cache

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// The L2 value framing: one byte saying how the rest is stored. Values
// cross the network and sit in a shared Redis, so large ones are
// compressed; small ones are not worth the CPU.
const (
	frameRaw byte = 0
	frameS2  byte = 1
)

// MaxValueSize bounds a value the Redis level stores or accepts back
// (after decompression): a corrupt or hostile entry must not make a
// reader allocate without limit.
const MaxValueSize = 64 << 20

// encodeValue frames v for Redis, compressing it with S2 when it is at
// least compressAbove bytes long and compression pays.
func encodeValue(v []byte, compressAbove int) []byte {
	if compressAbove > 0 && len(v) >= compressAbove {
		if n := s2.MaxEncodedLen(len(v)); n > 0 {
			out := make([]byte, 1+n)
			out[0] = frameS2
			out = out[:1+len(s2.Encode(out[1:], v))]
			if len(out) < len(v)*7/8 {
				return out
			}
		}
	}
	out := make([]byte, 1+len(v))
	out[0] = frameRaw
	copy(out[1:], v)
	return out
}

var errEmptyValue = errors.New("empty cache value")

// decodeValue undoes encodeValue.
func decodeValue(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errEmptyValue
	}
	switch b[0] {
	case frameRaw:
		return b[1:], nil
	case frameS2:
		n, err := s2.DecodedLen(b[1:])
		if err != nil {
			return nil, fmt.Errorf("cache value: %w", err)
		}
		if n > MaxValueSize {
			return nil, fmt.Errorf("cache value: %d bytes decompressed exceed the limit of %d", n, MaxValueSize)
		}
		out, err := s2.Decode(make([]byte, n), b[1:])
		if err != nil {
			return nil, fmt.Errorf("cache value: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("cache value: unknown framing %d", b[0])
}
