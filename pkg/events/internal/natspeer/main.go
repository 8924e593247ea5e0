// Command natspeer is a test helper: a separate OS process that publishes
// or receives logsift events through a NATS JetStream bus, so that tests
// can show events crossing process boundaries.
//
//	natspeer -url nats://... -mode subscribe -count N [-types a,b]
//	    prints "ready", then each event received as one JSON line, and
//	    exits after N events (or after -timeout).
//	natspeer -url nats://... -mode publish -count N -tenant T
//	    publishes N import.progress events and exits once JetStream has
//	    acknowledged them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/logsift/logsift/pkg/events"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "natspeer:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", "", "NATS URL")
	mode := flag.String("mode", "subscribe", "subscribe or publish")
	count := flag.Int("count", 1, "events to receive or publish")
	types := flag.String("types", "", "comma-separated event types to subscribe to (default all)")
	tenant := flag.String("tenant", "t1", "tenant of published events")
	origin := flag.String("origin", "natspeer", "origin of published events")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := events.NewNATS(events.NATSConfig{URL: *url}, *origin, log)
	if err != nil {
		return err
	}
	defer bus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	switch *mode {
	case "subscribe":
		ts, err := events.ParseTypes(*types)
		if err != nil {
			return err
		}
		sub, err := bus.Subscribe(ctx, ts...)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		for n := 0; n < *count; n++ {
			e, ok := <-sub.C
			if !ok {
				return fmt.Errorf("subscription ended after %d events: %w", n, ctx.Err())
			}
			b, err := e.Marshal()
			if err != nil {
				return err
			}
			fmt.Println(string(b))
		}
		return nil
	case "publish":
		for i := 0; i < *count; i++ {
			err := bus.Publish(ctx, &events.Event{
				Type:   events.ImportProgress,
				Tenant: *tenant,
				Import: &events.Import{Workspace: "peer", RunID: "run-peer", FilesDone: i + 1, Files: *count},
			})
			if err != nil {
				return err
			}
		}
		if err := bus.Flush(ctx); err != nil {
			return err
		}
		if s := bus.Stats(); s.Acked != int64(*count) {
			return fmt.Errorf("published %d events, JetStream acknowledged %d (%+v)", *count, s.Acked, s)
		}
		return nil
	}
	return fmt.Errorf("unknown -mode %q", *mode)
}
