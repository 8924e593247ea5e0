package events

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"
)

// CountEvents is the metrics subscriber: it counts the events on bus by
// type in logsift_events_total{type="..."}, plus the events this
// subscriber lost in logsift_events_subscriber_dropped_total. With origin
// set only the events of that origin are counted, so that processes
// sharing a NATS bus do not count each other's events (each process
// exports its own). It runs until ctx ends or the bus closes.
func CountEvents(ctx context.Context, bus Bus, origin string, log *slog.Logger) error {
	sub, err := bus.Subscribe(ctx)
	if err != nil {
		return fmt.Errorf("metrics subscriber: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	dropped := metrics.GetOrCreateCounter(`logsift_events_subscriber_dropped_total{subscriber="metrics"}`)
	// Every known type is exported from the start, at 0: Prometheus'
	// increase() cannot count the first event of a series that appears
	// with it (a first failed import would show as 0 failures).
	for _, t := range AllTypes {
		eventCounter(t)
	}
	go func() {
		defer sub.Close()
		var seen int64
		for e := range sub.C {
			if origin != "" && e.Origin != origin {
				continue
			}
			eventCounter(e.Type).Inc()
			if d := sub.Dropped(); d > seen {
				dropped.Add(int(d - seen))
				seen = d
			}
		}
		log.Debug("metrics subscriber stopped")
	}()
	return nil
}

// eventCounter returns the counter of one type. Unknown types share one
// series so that a misbehaving publisher cannot grow the label set.
func eventCounter(t Type) *metrics.Counter {
	if !t.Known() {
		t = "other"
	}
	return metrics.GetOrCreateCounter(`logsift_events_total{type="` + string(t) + `"}`)
}

// EventCount is the value of logsift_events_total for t in this process.
func EventCount(t Type) uint64 { return eventCounter(t).Get() }
