package store

import (
	"errors"
	"fmt"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// Stream is a batch of entries for one stream, the unit of Append.
type Stream struct {
	Labels  labels.Labels
	Entries []chunk.Entry
}

// ErrClosed is returned by writes to a store that is closing.
var ErrClosed = errors.New("store is closed")

// ErrDiskFull is wrapped by writes that failed because the data directory's
// file system is out of space; the write was not acknowledged and nothing
// already acknowledged is affected.
var ErrDiskFull = errors.New("data directory is out of space")

// StreamLimitError reports streams that Append refused because the tenant
// already has its maximum number of active streams. The other streams of the
// same call were written.
type StreamLimitError struct {
	Tenant   string
	Limit    int
	Rejected []labels.Labels
}

func (e *StreamLimitError) Error() string {
	return fmt.Sprintf("tenant %q reached its limit of %d streams: %d new streams refused (first: %s); reduce label cardinality or raise limits.max_streams_per_tenant",
		e.Tenant, e.Limit, len(e.Rejected), e.Rejected[0])
}
