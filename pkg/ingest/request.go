package ingest

import (
	"fmt"
	"unsafe"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// PushRequest is a decoded push before validation.
type PushRequest struct {
	Streams []PushStream
}

// PushStream is one stream of a push as the client sent it.
type PushStream struct {
	// Labels is the stream's label set as sent: Loki's `{a="b"}` text for
	// protobuf, a JSON object `{"a":"b"}` when LabelsJSON is set.
	Labels     string
	LabelsJSON bool
	// Entries are in the order sent. Metadata is not yet sorted or checked.
	// An entry named in Problems is a placeholder that must be dropped.
	Entries  []chunk.Entry
	Problems []EntryProblem
}

// EntryProblem describes an entry the decoder could read only partly (a bad
// timestamp, a line that is not a string); the rest of the push is fine.
type EntryProblem struct {
	Index   int // into PushStream.Entries
	Reason  Reason
	Message string
}

// TooLargeError reports a body or a decoded push beyond a size limit; it
// maps to HTTP 413.
type TooLargeError struct {
	What  string // "body", "decompressed body", "decoded push"
	Size  int64  // the size seen or claimed; -1 when only "more than Limit" is known
	Limit int64
	Hint  string // which setting raises the limit
}

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("%s is larger than the limit of %d bytes; send smaller batches or raise %s", e.What, e.Limit, e.Hint)
	}
	return fmt.Sprintf("%s of %d bytes exceeds the limit of %d bytes; send smaller batches or raise %s", e.What, e.Size, e.Limit, e.Hint)
}

// Sizes that the decoders charge against their memory budget for every
// entry, metadata pair and stream they allocate, so that a body of tiny
// wire records cannot expand into far more memory than its own size.
const (
	entryCost  = int(unsafe.Sizeof(chunk.Entry{}))
	labelCost  = int(unsafe.Sizeof(labels.Label{}))
	streamCost = int(unsafe.Sizeof(PushStream{}))
)

// budget tracks the memory a decoder has allocated for structures.
type budget struct {
	left  int
	limit int
}

func newBudget(limit int) budget { return budget{left: limit, limit: limit} }

func (b *budget) charge(n int) error {
	b.left -= n
	if b.left < 0 {
		return &TooLargeError{What: "decoded push (entries and metadata)", Size: -1, Limit: int64(b.limit), Hint: "the ingest max_decompressed_bytes setting"}
	}
	return nil
}

// bytesToString views b as a string without copying. The caller guarantees
// that b is never modified afterwards.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// labelArena hands out metadata slices from shared backing arrays, so that
// a push with structured metadata on every entry costs a few allocations
// rather than one per entry.
type labelArena struct {
	buf  []labels.Label
	mark int // where the current entry's pairs start in buf
}

func (a *labelArena) begin() { a.mark = len(a.buf) }

func (a *labelArena) add(l labels.Label) {
	if len(a.buf) == cap(a.buf) {
		// A fresh array rather than append's copy: earlier entries keep
		// their slices of the old one, only the current entry's pairs move.
		cur := len(a.buf) - a.mark
		n := 2 * cap(a.buf)
		n = max(min(n, 4096), 64, 2*cur)
		nb := make([]labels.Label, cur, n)
		copy(nb, a.buf[a.mark:])
		a.buf = nb
		a.mark = 0
	}
	a.buf = append(a.buf, l)
}

// end returns the current entry's pairs, capped so that appending to them
// cannot overwrite the next entry's.
func (a *labelArena) end() labels.Labels {
	if len(a.buf) == a.mark {
		return nil
	}
	return labels.Labels(a.buf[a.mark:len(a.buf):len(a.buf)])
}
