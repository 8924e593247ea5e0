// Package ship gets the agent's chunks to the server without losing one: a
// bounded, crash-safe on-disk spool, and outputs that send what it holds
// and report each chunk's fate: logsift's gRPC chunk stream with its
// acknowledgements, or Loki's push API. A chunk leaves the spool only once
// the server has stored it (or refused it for good, in which case it goes to
// a dead-letter folder).
package ship

import (
	"context"
	"math/rand/v2"
	"time"
)

// Shipper sends encoded chunks to the server. Ship returns once the chunk is in the agent's durable
// spool (it blocks while the spool is full: back-pressure, never drop); ack is called, from another
// goroutine, once the server has acknowledged the chunk as durably stored (or as an already-stored
// duplicate). Flush waits until every shipped chunk is acknowledged or ctx ends.
type Shipper interface {
	Ship(ctx context.Context, chunk []byte, ack func()) error
	Flush(ctx context.Context) error
}

// Backoff is a jittered exponential backoff between retries.
type Backoff struct {
	Min time.Duration // first delay; default 250ms
	Max time.Duration // cap; default 30s
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 250 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	return b
}

// delay is the wait before retry number attempt (0-based): the exponential
// step with "equal jitter" (half fixed, half random), so that many agents
// cut off by one outage do not come back in lockstep.
func (b Backoff) delay(attempt int) time.Duration {
	b = b.withDefaults()
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// Delay is the wait before retry number attempt (0-based), for callers
// outside the package that pace their own retries.
func (b Backoff) Delay(attempt int) time.Duration { return b.delay(attempt) }

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
