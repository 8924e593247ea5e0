// Package events carries logsift's domain events (searches, imports, cache
// activity, workspaces, writes into time ranges) between the parts of the
// server, and between server processes: an in-process bus by default, NATS
// JetStream when configured. Publishers never wait for subscribers.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Type names an event; it is also the subject suffix on NATS.
type Type string

// The domain events.
const (
	SearchRequested  Type = "search.requested"
	SearchCompleted  Type = "search.completed"
	SearchFailed     Type = "search.failed"
	ImportStarted    Type = "import.started"
	ImportProgress   Type = "import.progress"
	ImportCompleted  Type = "import.completed"
	ImportFailed     Type = "import.failed"
	ImportCancelled  Type = "import.cancelled"
	CacheHit         Type = "cache.hit"
	CacheMiss        Type = "cache.miss"
	CacheInvalidated Type = "cache.invalidated"
	WorkspaceCreated Type = "workspace.created"
	WorkspaceDeleted Type = "workspace.deleted"
	WorkspaceRenamed Type = "workspace.renamed"
	RangeWritten     Type = "store.range_written"
)

// Event is one domain event. Exactly one payload field is set, the one
// that belongs to Type.
type Event struct {
	Type   Type      `json:"type"`
	Time   time.Time `json:"time"`
	Tenant string    `json:"tenant"`
	// Origin identifies the server process that published it, so that a
	// process can tell its own events from others' on a shared bus.
	Origin string `json:"origin,omitempty"`
	// Actor says who caused the event, when a request did (for now the
	// client address; the token name once pkg/auth exists).
	Actor string `json:"actor,omitempty"`

	Search    *Search    `json:"search,omitempty"`
	Import    *Import    `json:"import,omitempty"`
	Cache     *Cache     `json:"cache,omitempty"`
	Workspace *Workspace `json:"workspace,omitempty"`
	Range     *Range     `json:"range,omitempty"`
}

// Search describes a query.
type Search struct {
	QueryID  string        `json:"query_id"`
	Query    string        `json:"query"`
	Duration time.Duration `json:"duration,omitempty"`
	Results  int           `json:"results,omitempty"`
	Bytes    int64         `json:"bytes,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Import describes an import run of a workspace.
type Import struct {
	Workspace  string `json:"workspace"`
	RunID      string `json:"run_id"`
	Host       string `json:"host,omitempty"`
	Status     string `json:"status,omitempty"`
	Files      int    `json:"files,omitempty"`
	FilesDone  int    `json:"files_done,omitempty"`
	Bytes      int64  `json:"bytes,omitempty"`
	BytesDone  int64  `json:"bytes_done,omitempty"`
	Lines      int64  `json:"lines,omitempty"`
	Chunks     int    `json:"chunks,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
}

// Cache describes a cache lookup or invalidation.
type Cache struct {
	Key    string `json:"key"`
	Level  string `json:"level,omitempty"` // "l1" or "l2"
	Reason string `json:"reason,omitempty"`
}

// Workspace describes a workspace change.
type Workspace struct {
	Name    string `json:"name"`
	OldName string `json:"old_name,omitempty"`
	// DeletedStreams is the number of streams a deletion removed.
	DeletedStreams int `json:"deleted_streams,omitempty"`
}

// Range reports that entries with timestamps in [MinTime, MaxTime] (ns)
// were written for the tenant: results cached for an overlapping range are
// stale.
type Range struct {
	MinTime int64 `json:"min_time"`
	MaxTime int64 `json:"max_time"`
}

// Marshal encodes an event for the wire.
func (e *Event) Marshal() ([]byte, error) { return json.Marshal(e) }

// Unmarshal decodes an event from the wire; the payload must match Type.
func Unmarshal(b []byte) (*Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	if e.Type == "" {
		return nil, fmt.Errorf("decode event: no type")
	}
	return &e, nil
}

// Bus publishes events and delivers them to subscribers.
type Bus interface {
	// Publish hands the event to the bus without waiting for subscribers.
	Publish(ctx context.Context, e *Event) error
	// Subscribe delivers events whose Type is one of types (all when none
	// are given) until ctx ends or the subscription is closed. A subscriber
	// that does not keep up loses events rather than slowing publishers;
	// the subscription counts them.
	Subscribe(ctx context.Context, types ...Type) (*Subscription, error)
	Close() error
}

// Subscription is a stream of events.
type Subscription struct {
	C       <-chan *Event
	Dropped func() int64
	Close   func()
}
