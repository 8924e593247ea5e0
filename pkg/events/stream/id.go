package stream

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ID is the position of an event in a journal: the journal's epoch and
// the event's sequence number in it. Its text form, the SSE "id:" field,
// is "<epoch>-<seq>", e.g. "mgx1k2a7rz4q-1532". Sequence 0 is the position
// before the first event of the epoch.
type ID struct {
	Epoch string
	Seq   uint64
}

// maxIDLen bounds the text form; an epoch is at most maxEpochLen and a
// sequence at most 20 digits.
const (
	maxEpochLen = 32
	maxIDLen    = maxEpochLen + 1 + 20
)

// String is the SSE form of the ID.
func (id ID) String() string { return id.Epoch + "-" + strconv.FormatUint(id.Seq, 10) }

// errBadID is wrapped by every ParseID error.
var errBadID = errors.New("malformed event id")

// ParseID reads an ID in the form String writes, and only that form (one
// spelling per ID: no signs, spaces or leading zeros), so that an ID a
// client echoes back means one position. The epoch is 1 to 32 characters
// of [0-9a-z].
func ParseID(s string) (ID, error) {
	if len(s) > maxIDLen {
		return ID{}, fmt.Errorf("%w: longer than %d bytes", errBadID, maxIDLen)
	}
	epoch, seq, ok := strings.Cut(s, "-")
	if !ok {
		return ID{}, fmt.Errorf("%w %q: want <epoch>-<sequence>", errBadID, s)
	}
	if !validEpoch(epoch) {
		return ID{}, fmt.Errorf("%w %q: the epoch must be 1 to %d of [0-9a-z]", errBadID, s, maxEpochLen)
	}
	if seq == "" || (len(seq) > 1 && seq[0] == '0') {
		return ID{}, fmt.Errorf("%w %q: the sequence must be a decimal number without leading zeros", errBadID, s)
	}
	for i := 0; i < len(seq); i++ {
		if seq[i] < '0' || seq[i] > '9' {
			return ID{}, fmt.Errorf("%w %q: the sequence must be a decimal number", errBadID, s)
		}
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("%w %q: sequence out of range", errBadID, s)
	}
	return ID{Epoch: epoch, Seq: n}, nil
}

func validEpoch(e string) bool {
	if e == "" || len(e) > maxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// NewEpoch names a journal's lifetime: the start time in milliseconds and
// 40 random bits, both base 36. The time makes epochs of one server
// differ across restarts; the random part makes two servers started in
// the same millisecond (behind one load balancer) differ too.
func NewEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24+)
	r := binary.BigEndian.Uint64(b[:]) & (1<<40 - 1)
	return strconv.FormatInt(time.Now().UnixMilli(), 36) + strconv.FormatUint(r, 36)
}
