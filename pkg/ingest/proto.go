package ingest

import (
	"errors"
	"fmt"
	"math"

	"github.com/klauspost/compress/s2"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// DecodeSnappy decompresses a snappy block-format body (what Loki clients
// send with protobuf; not the framed stream format). The size the body
// claims is checked against maxSize before anything is allocated.
func DecodeSnappy(body []byte, maxSize int) ([]byte, error) {
	return decodeSnappyInto(nil, body, maxSize)
}

// decodeSnappyInto is DecodeSnappy decoding into dst when it is large
// enough.
func decodeSnappyInto(dst, body []byte, maxSize int) ([]byte, error) {
	n, err := s2.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("body is not snappy block data: %w", err)
	}
	if n > maxSize {
		return nil, &TooLargeError{What: "snappy body claiming a decompressed size", Size: int64(n), Limit: int64(maxSize), Hint: "ingest.max_decompressed_bytes in the server configuration"}
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	out, err := s2.Decode(dst[:n], body)
	if err != nil {
		return nil, fmt.Errorf("corrupt snappy body: %w", err)
	}
	return out, nil
}

// DecodeProto decodes a snappy-compressed protobuf push body, Loki's
// logproto.PushRequest as github.com/grafana/loki/pkg/push defines it.
// maxSize bounds the decompressed size and, separately, the memory spent on
// decoded entries and metadata. Lines point into the decompressed buffer.
func DecodeProto(body []byte, maxSize int) (*PushRequest, error) {
	msg, err := DecodeSnappy(body, maxSize)
	if err != nil {
		return nil, err
	}
	return DecodeProtoMessage(msg, maxSize)
}

// Field numbers and wire types of Loki's push.proto.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5

	fieldPushStreams = 1 // PushRequest.streams: StreamAdapter

	fieldStreamLabels  = 1 // StreamAdapter.labels: string
	fieldStreamEntries = 2 // StreamAdapter.entries: EntryAdapter

	fieldEntryTimestamp = 1 // EntryAdapter.timestamp: google.protobuf.Timestamp
	fieldEntryLine      = 2 // EntryAdapter.line: string
	fieldEntryMetadata  = 3 // EntryAdapter.structuredMetadata: LabelPairAdapter

	fieldTimestampSeconds = 1
	fieldTimestampNanos   = 2

	fieldPairName  = 1
	fieldPairValue = 2
)

// DecodeProtoMessage decodes an uncompressed protobuf push message without
// copying: lines and metadata strings point into msg, which the caller must
// never modify afterwards. Unknown fields are skipped as protobuf requires.
func DecodeProtoMessage(msg []byte, maxSize int) (*PushRequest, error) {
	// A first pass counts streams and entries so that one exactly sized
	// array holds every entry of the push, after the budget allows it.
	var nStreams, nEntries int
	err := forEachField(msg, func(num int, wt int, data []byte, _ uint64) error {
		if num != fieldPushStreams || wt != wireBytes {
			return nil
		}
		nStreams++
		return forEachField(data, func(num int, wt int, _ []byte, _ uint64) error {
			if num == fieldStreamEntries && wt == wireBytes {
				nEntries++
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("malformed protobuf push request: %w", err)
	}
	b := newBudget(maxSize)
	if err := b.charge(nStreams*streamCost + nEntries*entryCost); err != nil {
		return nil, err
	}
	req := &PushRequest{Streams: make([]PushStream, 0, nStreams)}
	entries := make([]chunk.Entry, nEntries)
	d := protoDecoder{budget: &b}
	err = forEachField(msg, func(num int, wt int, data []byte, _ uint64) error {
		if num != fieldPushStreams || wt != wireBytes {
			return nil
		}
		req.Streams = append(req.Streams, PushStream{})
		s := &req.Streams[len(req.Streams)-1]
		var err error
		entries, err = d.stream(data, s, entries)
		if err != nil {
			return fmt.Errorf("stream %d: %w", len(req.Streams)-1, err)
		}
		return nil
	})
	if err != nil {
		var tl *TooLargeError
		if errors.As(err, &tl) {
			return nil, tl
		}
		return nil, fmt.Errorf("malformed protobuf push request: %w", err)
	}
	return req, nil
}

type protoDecoder struct {
	budget *budget
	arena  labelArena
}

// stream decodes one StreamAdapter into s, taking its entries from the
// front of free and returning the rest.
func (d *protoDecoder) stream(data []byte, s *PushStream, free []chunk.Entry) ([]chunk.Entry, error) {
	n := 0
	err := forEachField(data, func(num int, wt int, v []byte, _ uint64) error {
		if num == fieldStreamEntries && wt == wireBytes {
			n++
		}
		return nil
	})
	if err != nil {
		return free, err
	}
	s.Entries = free[:0:n]
	err = forEachField(data, func(num int, wt int, v []byte, _ uint64) error {
		switch {
		case num == fieldStreamLabels && wt == wireBytes:
			s.Labels = bytesToString(v) // the last occurrence wins, as in protobuf
		case num == fieldStreamEntries && wt == wireBytes:
			i := len(s.Entries)
			s.Entries = s.Entries[:i+1]
			if msg, err := d.entry(v, &s.Entries[i]); err != nil {
				return fmt.Errorf("entry %d: %w", i, err)
			} else if msg != "" {
				s.Problems = append(s.Problems, EntryProblem{Index: i, Reason: ReasonInvalidTimestamp, Message: msg})
			}
		}
		return nil
	})
	return free[n:], err
}

// entry decodes one EntryAdapter. A timestamp that cannot be a Unix
// nanosecond count is returned as a message, not an error, so that the rest
// of the push survives it.
func (d *protoDecoder) entry(data []byte, e *chunk.Entry) (string, error) {
	var sec, nanos int64
	hasTS := false
	d.arena.begin()
	err := forEachField(data, func(num int, wt int, v []byte, x uint64) error {
		switch {
		case num == fieldEntryTimestamp && wt == wireBytes:
			// Each occurrence replaces the whole timestamp, as gogo's
			// stdtime decoding does.
			sec, nanos, hasTS = 0, 0, true
			return forEachField(v, func(num int, wt int, _ []byte, x uint64) error {
				switch {
				case num == fieldTimestampSeconds && wt == wireVarint:
					sec = int64(x)
				case num == fieldTimestampNanos && wt == wireVarint:
					nanos = int64(int32(x))
				}
				return nil
			})
		case num == fieldEntryLine && wt == wireBytes:
			e.Line = v[:len(v):len(v)]
		case num == fieldEntryMetadata && wt == wireBytes:
			if err := d.budget.charge(labelCost); err != nil {
				return err
			}
			var l labels.Label
			err := forEachField(v, func(num int, wt int, s []byte, _ uint64) error {
				switch {
				case num == fieldPairName && wt == wireBytes:
					l.Name = bytesToString(s)
				case num == fieldPairValue && wt == wireBytes:
					l.Value = bytesToString(s)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("structured metadata: %w", err)
			}
			d.arena.add(l)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	e.Metadata = d.arena.end()
	if !hasTS {
		return "entry has no timestamp", nil
	}
	ts, msg := unixNanos(sec, nanos)
	e.Timestamp = ts
	return msg, nil
}

// unixNanos converts a protobuf Timestamp to Unix nanoseconds, or explains
// why it cannot be one. Old timestamps are fine; only values outside
// (1970, 2262] that int64 nanoseconds cannot hold are refused.
func unixNanos(sec, nanos int64) (int64, string) {
	const maxSec = math.MaxInt64 / int64(1e9)
	switch {
	case nanos < 0 || nanos >= 1e9:
		return 0, fmt.Sprintf("timestamp nanos %d outside [0, 1e9)", nanos)
	case sec < 0 || (sec == 0 && nanos == 0):
		return 0, fmt.Sprintf("timestamp %ds %dns is not after 1970-01-01T00:00:00Z", sec, nanos)
	case sec > maxSec || (sec == maxSec && nanos > math.MaxInt64%int64(1e9)):
		return 0, fmt.Sprintf("timestamp %ds is beyond 2262-04-11, the end of int64 nanoseconds", sec)
	}
	return sec*1e9 + nanos, ""
}

// forEachField calls fn for each field of a protobuf message: for
// length-delimited fields with the bytes, for varints with the value.
// It fails on truncated data and on the deprecated group wire types.
func forEachField(b []byte, fn func(num int, wt int, data []byte, x uint64) error) error {
	for i := 0; i < len(b); {
		key, n := uvarint(b, i)
		if n <= 0 {
			return fmt.Errorf("bad field key at byte %d", i)
		}
		i += n
		// The field number is truncated to int32 as in the gogo code Loki
		// generates, so both read any message the same way.
		num, wt := int32(key>>3), int(key&7)
		if num <= 0 {
			return fmt.Errorf("invalid field number %d at byte %d", num, i-n)
		}
		var data []byte
		var x uint64
		switch wt {
		case wireVarint:
			x, n = uvarint(b, i)
			if n <= 0 {
				return fmt.Errorf("bad varint at byte %d", i)
			}
			i += n
		case wireFixed64:
			if len(b)-i < 8 {
				return fmt.Errorf("truncated fixed64 at byte %d", i)
			}
			i += 8
		case wireFixed32:
			if len(b)-i < 4 {
				return fmt.Errorf("truncated fixed32 at byte %d", i)
			}
			i += 4
		case wireBytes:
			l, n := uvarint(b, i)
			if n <= 0 {
				return fmt.Errorf("bad length at byte %d", i)
			}
			i += n
			if l > uint64(len(b)-i) {
				return fmt.Errorf("field %d at byte %d claims %d bytes, only %d remain", num, i-n, l, len(b)-i)
			}
			data = b[i : i+int(l) : i+int(l)]
			i += int(l)
		default:
			return fmt.Errorf("unsupported wire type %d at byte %d", wt, i-n)
		}
		if err := fn(int(num), wt, data, x); err != nil {
			return err
		}
	}
	return nil
}

// uvarint reads a protobuf varint at b[i:], returning its length or 0 when
// it is truncated or longer than 10 bytes. Bits beyond 64 are dropped, as
// protobuf decoders (and Loki's) do, where binary.Uvarint would fail.
func uvarint(b []byte, i int) (uint64, int) {
	if i < len(b) && b[i] < 0x80 { // most keys and short lengths
		return uint64(b[i]), 1
	}
	var x uint64
	for n := 0; n < 10 && i+n < len(b); n++ {
		c := b[i+n]
		x |= uint64(c&0x7f) << (7 * n)
		if c < 0x80 {
			return x, n + 1
		}
	}
	return 0, 0
}
