package stream

import (
	"context"
	"errors"
	"time"

	"github.com/logsift/logsift/pkg/events"
)

// readBatch is how many journal entries a stream copies per lock.
const readBatch = 256

// Why a reader stopped other than its client going or its sink failing.
var (
	errShutdown      = errors.New("server shutting down")
	errJournalClosed = errors.New("event bus closed")
)

// sink is what a reader's stream goes out as: SSE frames or gRPC
// messages. Positions are journal sequences of the reader's journal.
type sink interface {
	// event sends (or queues until flush) e, which passed the client's
	// filter. dropped is the stream's running total of lost events, to be
	// told to the client before or with e when it grew.
	event(e *entry, dropped uint64) error
	// flush sends what is queued, and the dropped total if it grew and
	// no event carried it; pos is where the stream has read up to.
	flush(pos, dropped uint64) error
	// heartbeat keeps an idle stream open and tells the client the
	// stream's position pos.
	heartbeat(pos uint64) error
}

// reader is one client's read position in the journal: the loop that
// serves a stream, whatever its protocol, from where resume put it.
type reader struct {
	j    *Journal
	f    *events.Filter
	out  sink
	done <-chan struct{}
	// cursor is the sequence of the last journal event the stream
	// passed (sent or filtered out).
	cursor uint64
	// dropped counts the events lost to this client so far.
	dropped uint64
}

// run serves the stream until ctx ends (nil), the server shuts down
// (errShutdown), the journal stops and the stream has sent all it held
// (errJournalClosed) or the sink fails (its error).
func (r *reader) run(ctx context.Context, heartbeat time.Duration) error {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	batch := make([]entry, 0, readBatch)
	for {
		// A stream that always has events to send still ends when it
		// should and still beats.
		select {
		case <-ctx.Done():
			return nil
		case <-r.done:
			return errShutdown
		case <-tick.C:
			if err := r.out.heartbeat(r.cursor); err != nil {
				return err
			}
		default:
		}
		var skipped uint64
		var wake <-chan struct{}
		batch, skipped, wake = r.j.read(r.cursor, batch)
		if skipped > 0 {
			// Evicted before this stream read them. They are counted
			// whether or not they would have passed its filter: the
			// journal no longer knows.
			r.cursor += skipped
			r.dropped += skipped
		}
		if len(batch) == 0 {
			if skipped > 0 {
				if err := r.out.flush(r.cursor, r.dropped); err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-r.done:
				return errShutdown
			case <-r.j.Done():
				// Events appended before the journal stopped are sent.
				if r.j.position() > r.cursor {
					continue
				}
				return errJournalClosed
			case <-tick.C:
				if err := r.out.heartbeat(r.cursor); err != nil {
					return err
				}
			case <-wake:
			}
			continue
		}
		var err error
		for i := range batch {
			e := &batch[i]
			r.cursor = e.seq
			// Lost by the journal itself: reported to every reader, as
			// they may have been its own.
			r.dropped += uint64(e.lost)
			if r.f.Match(e.key) {
				if err = r.out.event(e, r.dropped); err != nil {
					break
				}
			}
		}
		clear(batch) // the entries' data may be evicted meanwhile
		if err != nil {
			return err
		}
		if err := r.out.flush(r.cursor, r.dropped); err != nil {
			return err
		}
	}
}
