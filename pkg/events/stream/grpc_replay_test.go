package stream

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/events"
)

// serveGRPCJournal serves EventService over a loopback TCP connection
// from the journal in o (or from o.Bus alone when it has none).
func serveGRPCJournal(t *testing.T, o Options, dial ...grpc.DialOption) api.EventServiceClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	RegisterGRPC(srv, o)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewEventServiceClient(conn)
}

// serveGRPCBus serves EventService with a journal of its own on bus, as
// the server wires it.
func serveGRPCBus(t *testing.T, bus events.Bus, o Options, jo JournalOptions, dial ...grpc.DialOption) (api.EventServiceClient, *Journal) {
	t.Helper()
	j := startJournal(t, bus, jo)
	o.Bus, o.Journal = bus, j
	return serveGRPCJournal(t, o, dial...), j
}

// grpcClient is one Subscribe call.
type grpcClient struct {
	t      *testing.T
	s      api.EventService_SubscribeClient
	cancel context.CancelFunc
	// opened is the position the stream opened at (EventIDHeader).
	opened string
}

func subscribeGRPC(t *testing.T, c api.EventServiceClient, tenantID string, req *api.SubscribeRequest) *grpcClient {
	t.Helper()
	// A stream that never sends what a test waits for fails the test
	// instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenantID)
	s, err := c.Subscribe(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	md, err := s.Header()
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	ids := md.Get(EventIDHeader)
	if len(ids) != 1 {
		t.Fatalf("header %s: %q", EventIDHeader, ids)
	}
	return &grpcClient{t: t, s: s, cancel: cancel, opened: ids[0]}
}

func (c *grpcClient) recv() *api.Event {
	c.t.Helper()
	e, err := c.s.Recv()
	if err != nil {
		c.t.Fatalf("stream ended: %v", err)
	}
	if e.GetId() == "" {
		c.t.Fatalf("message without an ID: %v", e)
	}
	return e
}

// nextEvent skips position messages.
func (c *grpcClient) nextEvent() *api.Event {
	c.t.Helper()
	for {
		if e := c.recv(); e.GetStreamPosition() == nil {
			return e
		}
	}
}

func (c *grpcClient) close() { c.cancel() }

func TestGRPCReconnectReplaysTheMissedEventsOnceInOrder(t *testing.T) {
	forEachBus(t, func(t *testing.T, bus events.Bus) {
		client, j := serveGRPCBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{})
		req := &api.SubscribeRequest{Types: []string{"import.*"}, Workspace: "w"}
		c := subscribeGRPC(t, client, "t1", req)
		opened := mustParseID(t, c.opened)
		if opened.Epoch != j.Epoch() || opened.Seq != 0 {
			t.Fatalf("opened at %s on an empty journal of epoch %s", c.opened, j.Epoch())
		}
		// Lost before any message: the header's position resumes.
		c.close()
		mustPublish(t, bus, progress("t1", "w", "before", 1), progress("t1", "w", "before", 2))
		waitJournal(t, j, 2)
		c = subscribeGRPC(t, client, "t1", &api.SubscribeRequest{Types: req.Types, Workspace: req.Workspace, After: opened.String()})
		var last string
		for want := 1; want <= 2; want++ {
			e := c.nextEvent()
			if e.GetImport().GetRunId() != "before" || e.GetImport().GetCounters().GetFilesDone() != int64(want) {
				t.Fatalf("event %d from the opening position: %v", want, e)
			}
			last = e.GetId()
		}
		c.close()

		// While the client is away: its own events, and others its
		// filter keeps out (another tenant, workspace, type).
		seq := publishWhileAway(t, bus, j, 2)

		c = subscribeGRPC(t, client, "t1", &api.SubscribeRequest{Types: req.Types, Workspace: req.Workspace, After: last})
		if c.opened != last {
			t.Fatalf("opened at %s, want the client's %s", c.opened, last)
		}
		prev := mustParseID(t, last)
		for want := 1; want <= 5; want++ {
			e := c.nextEvent()
			if e.GetType() != "import.progress" || e.GetTenant() != "t1" || e.GetImport().GetRunId() != "missed" ||
				e.GetImport().GetCounters().GetFilesDone() != int64(want) || e.GetDropped() != 0 {
				t.Fatalf("replayed event %d: %v", want, e)
			}
			id := mustParseID(t, e.GetId())
			if id.Epoch != prev.Epoch || id.Seq <= prev.Seq {
				t.Fatalf("ID %s after %s", e.GetId(), prev)
			}
			prev = id
		}
		// Then live, with nothing repeated in between.
		mustPublish(t, bus, progress("t1", "w", "live", 1))
		if e := c.nextEvent(); e.GetImport().GetRunId() != "live" || e.GetId() != fmt.Sprintf("%s-%d", j.Epoch(), seq+1) {
			t.Fatalf("after the replay: %v", e)
		}
	})
}

// TestGRPCResumeSeamWhilePublishing reconnects a client again and again
// while events keep coming: every event arrives exactly once and in
// order, and connections cross from replayed events to live ones.
func TestGRPCResumeSeamWhilePublishing(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	client, j := serveGRPCBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{Epoch: "e1"})
	const total = 2000
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	pubErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := 1; i <= total && ctx.Err() == nil; i++ {
			if err := bus.Publish(ctx, progress("t1", "w", "r", i)); err != nil {
				pubErr <- err
				return
			}
			// Paced, so that a reconnect happens while events come
			// (and the journal's subscription never falls behind).
			time.Sleep(100 * time.Microsecond)
		}
	}()
	t.Cleanup(func() { stop(); wg.Wait() })
	after, got, reconnects, seams := "", 0, 0, 0
	for got < total {
		before := j.Stats().Last
		c := subscribeGRPC(t, client, "t1", &api.SubscribeRequest{Types: []string{"import.progress"}, After: after})
		opened := j.Stats().Last
		if after == "" {
			// Events before the first subscription are not the client's.
			got = int(mustParseID(t, c.opened).Seq)
		}
		// Read a stretch, then drop the connection mid-stream.
		replayed, live := false, false
		for n := 0; n < 97 && got < total; n++ {
			e := c.nextEvent()
			if e.GetStreamReset() != nil || e.GetDropped() != 0 {
				t.Fatalf("after %d events: %v", got, e)
			}
			if done := int(e.GetImport().GetCounters().GetFilesDone()); done != got+1 {
				t.Fatalf("after event %d (reconnect %d) came %d: a gap or a repeat at the seam", got, reconnects, done)
			}
			got++
			after = e.GetId()
			seq := mustParseID(t, after).Seq
			replayed = replayed || seq <= before // in the journal before the call
			live = live || seq > opened          // appended after the stream opened
		}
		c.close()
		reconnects++
		if replayed && live {
			seams++
		}
	}
	select {
	case err := <-pubErr:
		t.Fatal(err)
	default:
	}
	if seams == 0 {
		t.Fatalf("none of %d connections went from replayed events to live ones", reconnects)
	}
	t.Logf("%d connections, %d from replayed events to live ones", reconnects, seams)
}

func TestGRPCUnresumableAfterGetsAResetThenLiveEvents(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	client, j := serveGRPCBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{Epoch: "e1", MaxEvents: 4})
	for i := 1; i <= 10; i++ {
		mustPublish(t, bus, progress("t1", "w", "r", i))
	}
	waitJournal(t, j, 10)
	for _, tc := range unresumable {
		c := subscribeGRPC(t, client, "t1", &api.SubscribeRequest{After: tc.id})
		if c.opened != "e1-10" {
			t.Fatalf("%.20s: opened at %s, want the newest event's", tc.id, c.opened)
		}
		e := c.recv()
		r := e.GetStreamReset()
		if r == nil || e.GetType() != "" || e.GetId() != c.opened {
			t.Fatalf("%.20s: first message %v, want a reset at %s", tc.id, e, c.opened)
		}
		echo := tc.id
		if len(echo) > 64 {
			echo = echo[:64] + "…"
		}
		if r.GetReason() != tc.grpcReason || r.GetMissed() != int64(tc.missed) || r.GetAfter() != echo || r.GetMessage() == "" {
			t.Fatalf("%.20s: reset %v, want reason %s missed %d", tc.id, r, tc.grpcReason, tc.missed)
		}
		c.close()
	}
	// The ID right before the oldest retained event resumes.
	c := subscribeGRPC(t, client, "t1", &api.SubscribeRequest{After: "e1-6"})
	if e := c.recv(); e.GetImport() == nil || e.GetId() != "e1-7" {
		t.Fatalf("resume at the journal's start: %v", e)
	}
	c.close()
	// After a reset the stream goes on live, and the reset's ID resumes.
	c = subscribeGRPC(t, client, "t1", &api.SubscribeRequest{After: "e0-1"})
	reset := c.recv()
	if reset.GetStreamReset() == nil {
		t.Fatalf("want a reset, got %v", reset)
	}
	mustPublish(t, bus, progress("t1", "w", "live", 1))
	if e := c.nextEvent(); e.GetId() != "e1-11" || e.GetImport().GetRunId() != "live" {
		t.Fatalf("after the reset: %v", e)
	}
	c.close()
	c = subscribeGRPC(t, client, "t1", &api.SubscribeRequest{After: reset.GetId()})
	if e := c.recv(); e.GetImport() == nil || e.GetId() != "e1-11" {
		t.Fatalf("from the reset's ID: %v", e)
	}
}

func TestGRPCReplayKeepsTenantsApart(t *testing.T) {
	forEachBus(t, func(t *testing.T, bus events.Bus) {
		client, j := serveGRPCBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{Epoch: "e1"})
		publishTwoTenants(t, bus, j)
		for _, tn := range []string{"a", "b"} {
			// From before the first event: everything retained.
			c := subscribeGRPC(t, client, tn, &api.SubscribeRequest{After: "e1-0"})
			for n := 0; n < 6; n++ {
				if e := c.nextEvent(); e.GetTenant() != tn || e.GetPayload() == nil {
					t.Fatalf("tenant %s replayed %v", tn, e)
				}
			}
			// The next is live: nothing of the other tenant was queued.
			mustPublish(t, bus, progress(tn, "w", "live-"+tn, 1))
			if e := c.nextEvent(); e.GetImport().GetRunId() != "live-"+tn {
				t.Fatalf("tenant %s after the replay: %v", tn, e)
			}
			c.close()
		}
	})
}

func TestGRPCPositionPastFilteredEvents(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	client, j := serveGRPCBus(t, bus, Options{Heartbeat: 5 * time.Millisecond}, JournalOptions{Epoch: "e1", MaxEvents: 4})
	c := subscribeGRPC(t, client, "t1", &api.SubscribeRequest{})
	if c.opened != "e1-0" {
		t.Fatalf("opened at %s", c.opened)
	}
	for i := 1; i <= 3; i++ {
		mustPublish(t, bus, progress("t2", "w", "other", i))
	}
	waitJournal(t, j, 3)
	last := ""
	for n := 0; last != "e1-3"; n++ {
		if n > 10000 {
			t.Fatalf("no position message at e1-3, last %q", last)
		}
		e := c.recv()
		if e.GetStreamPosition() == nil || e.GetType() != "" || e.GetDropped() != 0 {
			t.Fatalf("tenant t1 got %v", e)
		}
		last = e.GetId()
	}
	c.close()
	// The other tenant's events push the client's last position out of
	// the journal; the position message's ID still resumes without a
	// reset.
	for i := 4; i <= 6; i++ {
		mustPublish(t, bus, progress("t2", "w", "other", i))
	}
	mustPublish(t, bus, progress("t1", "w", "mine", 1))
	waitJournal(t, j, 7)
	c = subscribeGRPC(t, client, "t1", &api.SubscribeRequest{After: last})
	if e := c.nextEvent(); e.GetImport().GetRunId() != "mine" || e.GetId() != "e1-7" {
		t.Fatalf("resumed with %v", e)
	}
}

// TestGRPCDroppedCountsEvictedEvents lets a client stop reading (gRPC
// flow control holds the server's sends) while the journal moves on:
// every message's dropped must be exactly the events of the sequence it
// did not get before it.
func TestGRPCDroppedCountsEvictedEvents(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	// A fixed window, so that unread messages hold the server back
	// (without it the window grows with the measured bandwidth).
	client, j := serveGRPCBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{Epoch: "e1", MaxEvents: 4},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	c := subscribeGRPC(t, client, "t1", &api.SubscribeRequest{})
	const total = 60
	query := strings.Repeat("q", 16<<10)
	for i := 1; i <= total; i++ {
		// 60 × 16 KiB is more than the window and the server's buffers.
		mustPublish(t, bus, &events.Event{Type: events.SearchCompleted, Tenant: "t1", Search: &events.Search{QueryID: fmt.Sprint(i), Query: query}})
	}
	waitJournal(t, j, total)
	received := 0
	var seq uint64
	for seq < total {
		e := c.recv()
		id := mustParseID(t, e.GetId())
		if id.Seq < seq || (e.GetSearch() != nil && id.Seq == seq) {
			t.Fatalf("%v after %d", e, seq)
		}
		seq = id.Seq
		if e.GetSearch() != nil {
			if e.GetSearch().GetQueryId() != fmt.Sprint(seq) {
				t.Fatalf("event %d carries %v", seq, e.GetSearch().GetQueryId())
			}
			// Every event of the sequence passes the filter: those not
			// received before this one were dropped.
			if want := int64(seq) - 1 - int64(received); e.GetDropped() != want {
				t.Fatalf("event %d: dropped %d, want %d", seq, e.GetDropped(), want)
			}
			received++
		} else if want := int64(seq) - int64(received); e.GetStreamPosition() == nil || e.GetDropped() != want {
			t.Fatalf("at %d: %v, want a position with dropped %d", seq, e, want)
		}
	}
	if received == total || received < 4 {
		t.Fatalf("received %d of %d: the test did not drop what it means to", received, total)
	}
}

// TestGRPCDroppedCountsEventsTheJournalLost serves a journal fed
// directly: events its own bus subscription lost are dropped for every
// stream, whether or not the events after them pass its filter.
func TestGRPCDroppedCountsEventsTheJournalLost(t *testing.T) {
	j := newJournal(JournalOptions{Epoch: "e1"})
	j.append(progress("t1", "w", "r", 1), 0)
	j.append(progress("t1", "w", "r", 2), 3)
	j.append(progress("t2", "w", "r", 3), 2) // lost before an event t1 does not see
	client := serveGRPCJournal(t, Options{Journal: j, Heartbeat: time.Hour})
	c := subscribeGRPC(t, client, "t1", &api.SubscribeRequest{After: "e1-0"})
	for _, want := range []struct {
		id      string
		dropped int64
		event   bool
	}{{"e1-1", 0, true}, {"e1-2", 3, true}, {"e1-3", 5, false}} {
		e := c.recv()
		if e.GetId() != want.id || e.GetDropped() != want.dropped || (e.GetImport() != nil) != want.event || (e.GetStreamPosition() != nil) == want.event {
			t.Fatalf("got %v, want %+v", e, want)
		}
	}
}

func TestGRPCWithoutJournalIsLiveOnly(t *testing.T) {
	bus := events.NewMemory("test")
	client := serveGRPCJournal(t, Options{Bus: bus, Heartbeat: time.Hour})
	mustPublish(t, bus, progress("t1", "w", "before", 1))
	c := subscribeGRPC(t, client, "t1", &api.SubscribeRequest{After: "e1-1"})
	e := c.recv()
	if e.GetStreamReset().GetReason() != api.ResetReason_RESET_REASON_EPOCH || e.GetId() != c.opened {
		t.Fatalf("an ID of another journal: %v", e)
	}
	mustPublish(t, bus, progress("t2", "w", "other", 1), progress("t1", "w", "live", 1))
	if e := c.nextEvent(); e.GetImport().GetRunId() != "live" || mustParseID(t, e.GetId()).Epoch != mustParseID(t, c.opened).Epoch {
		t.Fatalf("live: %v", e)
	}
	bus.Close()
	if _, err := c.s.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after the bus closed: %v", err)
	}
	s, err := client.Subscribe(metadata.AppendToOutgoingContext(context.Background(), "x-scope-orgid", "t1"), &api.SubscribeRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("subscribing to a closed bus: %v", err)
	}
}

func TestGRPCStreamEndsOnShutdownAndJournalStop(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	done := make(chan struct{})
	stopping, _ := serveGRPCBus(t, bus, Options{Heartbeat: time.Hour, Done: done}, JournalOptions{})
	c := subscribeGRPC(t, stopping, "t1", &api.SubscribeRequest{})
	close(done)
	if _, err := c.s.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("after Done: %v", err)
	}
	// The bus closes, and with it the journal.
	client, j := serveGRPCBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{})
	c = subscribeGRPC(t, client, "t1", &api.SubscribeRequest{})
	mustPublish(t, bus, progress("t1", "w", "last", 1))
	if e := c.nextEvent(); e.GetImport().GetRunId() != "last" {
		t.Fatalf("before the end: %v", e)
	}
	bus.Close()
	<-j.Done()
	if _, err := c.s.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "event bus closed") {
		t.Fatalf("after the journal stopped: %v", err)
	}
}
