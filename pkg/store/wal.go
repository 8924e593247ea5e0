package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// The write-ahead log is a directory of numbered segment files. Each file
// is a sequence of records:
//
//	u32 payload length | u32 CRC-32C of payload | payload
//
// and a payload is one Append call:
//
//	u64 sequence number
//	uvarint len | tenant
//	uvarint stream count, then per stream:
//	  uvarint len | labels in canonical {a="b"} form
//	  uvarint entry count, then per entry:
//	    varint timestamp (ns) | uvarint len | line
//	    uvarint metadata count, then per pair: uvarint len | name | uvarint len | value
//
// Records are written in sequence order and fsynced before the Append they
// carry is acknowledged. A crash can leave a torn record at the end of the
// newest segment; replay stops there and truncates it, which loses nothing
// that was acknowledged because the record's fsync never returned.

const (
	walRecordHeader = 8
	// maxWALRecord bounds what replay will allocate for a single record.
	// Ingest limits a push far below this.
	maxWALRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeWALRecord appends the record for one Append call to dst. The
// sequence number and checksum are left zero; the writer fills them in.
func encodeWALRecord(dst []byte, tenant string, streams []Stream) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, walRecordHeader+8)...)
	dst = appendString(dst, tenant)
	dst = binary.AppendUvarint(dst, uint64(len(streams)))
	for _, s := range streams {
		dst = appendString(dst, s.Labels.String())
		dst = binary.AppendUvarint(dst, uint64(len(s.Entries)))
		for _, e := range s.Entries {
			dst = binary.AppendVarint(dst, e.Timestamp)
			dst = binary.AppendUvarint(dst, uint64(len(e.Line)))
			dst = append(dst, e.Line...)
			dst = binary.AppendUvarint(dst, uint64(len(e.Metadata)))
			for _, m := range e.Metadata {
				dst = appendString(dst, m.Name)
				dst = appendString(dst, m.Value)
			}
		}
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-walRecordHeader))
	return dst
}

// walRecordSize is an upper bound of the encoded size of a record, so that
// encoding never has to grow its buffer.
func walRecordSize(tenant string, streams []Stream) int {
	n := walRecordHeader + 8 + binary.MaxVarintLen64 + len(tenant) + binary.MaxVarintLen64
	for _, s := range streams {
		n += 2*binary.MaxVarintLen64 + len(s.Labels.String())
		for _, e := range s.Entries {
			n += 3*binary.MaxVarintLen64 + len(e.Line)
			for _, m := range e.Metadata {
				n += 2*binary.MaxVarintLen64 + len(m.Name) + len(m.Value)
			}
		}
	}
	return n
}

// sealWALRecord writes the sequence number and checksum into an encoded record.
func sealWALRecord(rec []byte, seq uint64) {
	binary.LittleEndian.PutUint64(rec[walRecordHeader:], seq)
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[walRecordHeader:], castagnoli))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// walRecord is a decoded record. Entry lines point into the record buffer.
type walRecord struct {
	seq     uint64
	tenant  string
	streams []Stream
}

type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("length %d past end of record", n)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// count reads an element count and checks it against the bytes left, since
// every element takes at least minSize bytes; this bounds allocation.
func (r *byteReader) count(minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.err = fmt.Errorf("count %d exceeds record size", n)
	}
	return int(n)
}

func decodeWALPayload(p []byte) (walRecord, error) {
	if len(p) < 8 {
		return walRecord{}, errors.New("record too short")
	}
	rec := walRecord{seq: binary.LittleEndian.Uint64(p)}
	r := &byteReader{b: p[8:]}
	rec.tenant = string(r.bytes())
	ns := r.count(2)
	for i := 0; i < ns && r.err == nil; i++ {
		lstr := r.bytes()
		if r.err != nil {
			break
		}
		ls, err := labels.Parse(string(lstr))
		if err != nil {
			return rec, err
		}
		ne := r.count(3)
		entries := make([]chunk.Entry, 0, ne)
		for j := 0; j < ne && r.err == nil; j++ {
			e := chunk.Entry{Timestamp: r.varint(), Line: r.bytes()}
			nm := r.count(2)
			if nm > 0 {
				e.Metadata = make(labels.Labels, 0, nm)
				for k := 0; k < nm && r.err == nil; k++ {
					e.Metadata = append(e.Metadata, labels.Label{Name: string(r.bytes()), Value: string(r.bytes())})
				}
			}
			entries = append(entries, e)
		}
		rec.streams = append(rec.streams, Stream{Labels: ls, Entries: entries})
	}
	if r.err != nil {
		return rec, r.err
	}
	if len(r.b) != 0 {
		return rec, fmt.Errorf("%d trailing bytes in record", len(r.b))
	}
	return rec, nil
}

// walSegments lists the segment numbers in dir in ascending order.
func walSegments(dir string) ([]uint32, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []uint32
	for _, n := range names {
		base, ok := strings.CutSuffix(n.Name(), ".wal")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(base, 10, 32)
		if err != nil {
			continue
		}
		segs = append(segs, uint32(v))
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	return segs, nil
}

func walSegmentPath(dir string, n uint32) string {
	return filepath.Join(dir, fmt.Sprintf("%08d.wal", n))
}

// replayWALSegment calls fn for every intact record of a segment. It returns
// the offset just past the last intact record; a torn or corrupt tail stops
// the replay there.
func replayWALSegment(path string, fn func(walRecord) error) (good int64, tornErr error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	var hdr [walRecordHeader]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(f, hdr[:]); err != nil {
			if err == io.EOF {
				return good, nil, nil
			}
			return good, fmt.Errorf("torn record header at offset %d", good), nil
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > maxWALRecord || n < 8 {
			return good, fmt.Errorf("bad record length %d at offset %d", n, good), nil
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(f, buf); err != nil {
			return good, fmt.Errorf("torn record at offset %d", good), nil
		}
		if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			return good, fmt.Errorf("checksum mismatch at offset %d", good), nil
		}
		// The decoded record points into buf, which the next record reuses,
		// so the callback must copy what it keeps (the head does).
		rec, derr := decodeWALPayload(buf)
		if derr != nil {
			return good, fmt.Errorf("undecodable record at offset %d: %v", good, derr), nil
		}
		if err := fn(rec); err != nil {
			return good, nil, err
		}
		good += int64(walRecordHeader) + int64(n)
	}
}

// walFile is the segment being written.
type walFile struct {
	dir  string
	n    uint32
	f    *os.File
	size int64
}

func createWALSegment(dir string, n uint32) (*walFile, error) {
	f, err := os.OpenFile(walSegmentPath(dir, n), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create WAL segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &walFile{dir: dir, n: n, f: f, size: st.Size()}, nil
}

// write appends buf and makes it durable. On failure it cuts the file back
// to where it was, so that a failed write never leaves a partial record in
// front of later good ones.
func (w *walFile) write(buf []byte) error {
	_, err := w.f.Write(buf)
	if err == nil {
		err = unix.Fdatasync(int(w.f.Fd()))
	}
	if err != nil {
		if terr := w.f.Truncate(w.size); terr != nil {
			return fmt.Errorf("WAL write failed (%w) and could not be undone: %v", classifyIOError(err), terr)
		}
		return fmt.Errorf("WAL write: %w", classifyIOError(err))
	}
	w.size += int64(len(buf))
	return nil
}

func (w *walFile) close() error { return w.f.Close() }

// classifyIOError maps out-of-space errors onto ErrDiskFull so that callers
// can answer with a retryable status.
func classifyIOError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// truncateTornTail cuts a segment back to its last intact record.
func truncateTornTail(path string, good int64, why error) error {
	slog.Warn("truncating torn tail of write-ahead log segment", "segment", path, "offset", good, "reason", why)
	return os.Truncate(path, good)
}
