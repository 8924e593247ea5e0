package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/tenant"
)

// msg is one SSE frame, its fields parsed.
type msg struct {
	id, event, data string
	hasID           bool
	comments        []string
}

func (c *sseClient) next() msg {
	c.t.Helper()
	var m msg
	for _, l := range c.frame() {
		switch {
		case strings.HasPrefix(l, ":"):
			m.comments = append(m.comments, strings.TrimSpace(l[1:]))
		case strings.HasPrefix(l, "id: "):
			m.id, m.hasID = strings.TrimPrefix(l, "id: "), true
		case strings.HasPrefix(l, "event: "):
			m.event = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "data: "):
			m.data = strings.TrimPrefix(l, "data: ")
		}
	}
	return m
}

// nextEvent skips frames without an event (heartbeats, IDs alone).
func (c *sseClient) nextEvent() msg {
	c.t.Helper()
	for {
		if m := c.next(); m.event != "" {
			return m
		}
	}
}

// connected reads the opening frame and returns the ID it sets.
func (c *sseClient) connected() string {
	c.t.Helper()
	m := c.next()
	if len(m.comments) != 1 || m.comments[0] != "connected" || !m.hasID {
		c.t.Fatalf("opening frame %+v", m)
	}
	return m.id
}

func openSSEWith(t *testing.T, u, tenantID, lastEventID string) *sseClient {
	t.Helper()
	// A stream that never sends what a test waits for fails the test
	// instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	req.Header.Set(tenant.Header, tenantID)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c := &sseClient{t: t, resp: resp}
	c.r = bufio.NewReader(resp.Body)
	t.Cleanup(func() { resp.Body.Close() })
	return c
}

// closeSSE ends a client's connection.
func (c *sseClient) close() { c.resp.Body.Close() }

// waitJournal waits until the journal holds the event of sequence last
// (the bus delivers to it asynchronously). The deadline is a safety net.
func waitJournal(t *testing.T, j *Journal, last uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for j.Stats().Last < last {
		if time.Now().After(deadline) {
			t.Fatalf("journal holds up to %d, want %d", j.Stats().Last, last)
		}
		time.Sleep(time.Millisecond)
	}
}

func progress(tn, ws, run string, done int) *events.Event {
	return &events.Event{Type: events.ImportProgress, Tenant: tn, Import: &events.Import{Workspace: ws, RunID: run, FilesDone: done}}
}

// runNATS starts an embedded NATS server with JetStream.
func runNATS(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("NATS server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatal("NATS server did not become ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// forEachBus runs a test on the in-process bus and on NATS JetStream.
func forEachBus(t *testing.T, test func(t *testing.T, bus events.Bus)) {
	t.Run("memory", func(t *testing.T) {
		bus := events.NewMemory("test")
		t.Cleanup(func() { bus.Close() })
		test(t, bus)
	})
	t.Run("nats", func(t *testing.T) {
		bus, err := events.NewNATS(events.NATSConfig{URL: runNATS(t)}, "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bus.Close() })
		test(t, bus)
	})
}

func mustPublish(t *testing.T, bus events.Bus, es ...*events.Event) {
	t.Helper()
	for _, e := range es {
		if err := bus.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func mustParseID(t *testing.T, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// publishWhileAway publishes, after sequence seq, five events of
// tenant t1's run "missed" (import.progress of workspace w) among
// others a filter {t1, import.*, w} keeps out: another tenant,
// workspace, type. It returns the last sequence.
func publishWhileAway(t *testing.T, bus events.Bus, j *Journal, seq uint64) uint64 {
	t.Helper()
	for i := 1; i <= 5; i++ {
		mustPublish(t, bus,
			progress("t2", "w", "other-tenant", i),
			progress("t1", "w", "missed", i),
			progress("t1", "elsewhere", "other-workspace", i),
			&events.Event{Type: events.SearchCompleted, Tenant: "t1", Search: &events.Search{QueryID: "q"}})
		seq += 4
	}
	waitJournal(t, j, seq)
	return seq
}

// publishTwoTenants publishes 12 events, 6 of tenant a and 6 of b,
// interleaved.
func publishTwoTenants(t *testing.T, bus events.Bus, j *Journal) {
	t.Helper()
	for i := 1; i <= 6; i++ {
		tn := "a"
		if i%2 == 0 {
			tn = "b"
		}
		mustPublish(t, bus,
			progress(tn, "w", tn, i),
			&events.Event{Type: events.WorkspaceDeleted, Tenant: tn, Workspace: &events.Workspace{Name: "w"}})
	}
	waitJournal(t, j, 12)
}

// unresumable are IDs a journal of epoch e1 holding 7..10 (MaxEvents 4,
// 10 events) cannot resume from, with the reset each gets.
var unresumable = []struct {
	id, reason string
	grpcReason api.ResetReason
	missed     uint64
}{
	{"e0-3", "epoch", api.ResetReason_RESET_REASON_EPOCH, 0},        // a previous server run
	{"e1-1", "expired", api.ResetReason_RESET_REASON_EXPIRED, 5},    // 2..6 are gone: the journal holds 7..10
	{"e1-11", "ahead", api.ResetReason_RESET_REASON_AHEAD, 0},       // never issued
	{"garbage", "invalid", api.ResetReason_RESET_REASON_INVALID, 0}, // not an ID
	{"e1-007", "invalid", api.ResetReason_RESET_REASON_INVALID, 0},  // not the one spelling of an ID
	{strings.Repeat("x", 300), "invalid", api.ResetReason_RESET_REASON_INVALID, 0},
}

func TestReconnectReplaysTheMissedEventsOnceInOrder(t *testing.T) {
	forEachBus(t, func(t *testing.T, bus events.Bus) {
		srv, j := serveBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{})
		u := srv.URL + Path + "?types=import.*&workspace=w"
		c := openSSEWith(t, u, "t1", "")
		c.connected()
		mustPublish(t, bus, progress("t1", "w", "before", 1), progress("t1", "w", "before", 2))
		var last string
		for want := 1; want <= 2; want++ {
			m := c.nextEvent()
			var e events.Event
			if err := json.Unmarshal([]byte(m.data), &e); err != nil || e.Import.FilesDone != want {
				t.Fatalf("live event %+v: %v", m, err)
			}
			last = m.id
		}
		c.close()

		publishWhileAway(t, bus, j, 2)

		c = openSSEWith(t, u, "t1", last)
		if got := c.connected(); got != last {
			t.Fatalf("opening ID %s, want the client's %s", got, last)
		}
		prev := mustParseID(t, last)
		for want := 1; want <= 5; want++ {
			m := c.nextEvent()
			var e events.Event
			if err := json.Unmarshal([]byte(m.data), &e); err != nil {
				t.Fatal(err)
			}
			if m.event != "import.progress" || e.Tenant != "t1" || e.Import.RunID != "missed" || e.Import.FilesDone != want {
				t.Fatalf("replayed event %d: %s %+v", want, m.event, e.Import)
			}
			id := mustParseID(t, m.id)
			if id.Epoch != prev.Epoch || id.Seq <= prev.Seq {
				t.Fatalf("ID %s after %s", m.id, prev)
			}
			prev = id
		}
		// Then live, with nothing repeated in between.
		mustPublish(t, bus, progress("t1", "w", "live", 1))
		if m := c.nextEvent(); !strings.Contains(m.data, `"run_id":"live"`) {
			t.Fatalf("after the replay: %+v", m)
		}
	})
}

func TestLastEventIDQueryParameterAndHeaderPrecedence(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	srv, j := serveBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{Epoch: "e1"})
	for i := 1; i <= 4; i++ {
		mustPublish(t, bus, progress("t1", "w", "r", i))
	}
	waitJournal(t, j, 4)
	c := openSSEWith(t, srv.URL+Path+"?"+LastEventIDParam+"=e1-2", "t1", "")
	c.connected()
	if m := c.nextEvent(); m.id != "e1-3" {
		t.Fatalf("from the query parameter: %+v", m)
	}
	// An EventSource keeps the URL it was made with and sends the newer
	// ID as the header.
	c = openSSEWith(t, srv.URL+Path+"?"+LastEventIDParam+"=e1-1", "t1", "e1-3")
	c.connected()
	if m := c.nextEvent(); m.id != "e1-4" {
		t.Fatalf("header and parameter: %+v", m)
	}
}

func TestUnresumableIDGetsAResetThenLiveEvents(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	srv, j := serveBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{Epoch: "e1", MaxEvents: 4})
	for i := 1; i <= 10; i++ {
		mustPublish(t, bus, progress("t1", "w", "r", i))
	}
	waitJournal(t, j, 10)
	for _, tc := range unresumable {
		c := openSSEWith(t, srv.URL+Path, "t1", tc.id)
		pos := c.connected()
		if pos != "e1-10" {
			t.Fatalf("%s: opening ID %s, want the newest event's", tc.id, pos)
		}
		m := c.nextEvent()
		var r Reset
		if err := json.Unmarshal([]byte(m.data), &r); err != nil || m.event != "reset" {
			t.Fatalf("%s: %+v %v", tc.id, m, err)
		}
		if r.Reason != tc.reason || r.Missed != tc.missed || m.id != pos || r.Message == "" {
			t.Fatalf("%s: reset %+v id %s, want reason %s missed %d", tc.id, r, m.id, tc.reason, tc.missed)
		}
		c.close()
	}
	// The ID right before the oldest retained event resumes.
	c := openSSEWith(t, srv.URL+Path, "t1", "e1-6")
	c.connected()
	if m := c.nextEvent(); m.event != "import.progress" || m.id != "e1-7" {
		t.Fatalf("resume at the journal's start: %+v", m)
	}
	c.close()
	// After a reset the stream goes on live, and the reset's ID resumes.
	c = openSSEWith(t, srv.URL+Path, "t1", "e0-1")
	c.connected()
	reset := c.nextEvent()
	mustPublish(t, bus, progress("t1", "w", "live", 1))
	if m := c.nextEvent(); m.id != "e1-11" || !strings.Contains(m.data, `"live"`) {
		t.Fatalf("after reset: %+v", m)
	}
	c.close()
	c = openSSEWith(t, srv.URL+Path, "t1", reset.id)
	c.connected()
	if m := c.nextEvent(); m.event != "import.progress" || m.id != "e1-11" {
		t.Fatalf("from the reset's ID: %+v", m)
	}
}

func TestReplayKeepsTenantsApart(t *testing.T) {
	forEachBus(t, func(t *testing.T, bus events.Bus) {
		srv, j := serveBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{Epoch: "e1"})
		publishTwoTenants(t, bus, j)
		for _, tn := range []string{"a", "b"} {
			// From before the first event: everything retained.
			c := openSSEWith(t, srv.URL+Path, tn, "e1-0")
			c.connected()
			for n := 0; n < 6; n++ {
				m := c.nextEvent()
				var e events.Event
				if err := json.Unmarshal([]byte(m.data), &e); err != nil || e.Tenant != tn {
					t.Fatalf("tenant %s replayed %+v (%v)", tn, m, err)
				}
			}
			// The next is live: nothing of the other tenant was queued.
			mustPublish(t, bus, progress(tn, "w", "live-"+tn, 1))
			if m := c.nextEvent(); !strings.Contains(m.data, `"live-`+tn+`"`) {
				t.Fatalf("tenant %s after replay: %+v", tn, m)
			}
			c.close()
		}
	})
}

func TestHeartbeatCarriesThePositionPastFilteredEvents(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	srv, j := serveBus(t, bus, Options{Heartbeat: 5 * time.Millisecond}, JournalOptions{Epoch: "e1", MaxEvents: 4})
	c := openSSEWith(t, srv.URL+Path, "t1", "")
	if id := c.connected(); id != "e1-0" {
		t.Fatalf("opening ID %s", id)
	}
	for i := 1; i <= 3; i++ {
		mustPublish(t, bus, progress("t2", "w", "other", i))
	}
	waitJournal(t, j, 3)
	last := ""
	for n := 0; last != "e1-3"; n++ {
		if n > 10000 {
			t.Fatalf("no heartbeat with the position, last %q", last)
		}
		m := c.next()
		if m.event != "" {
			t.Fatalf("tenant t1 got %+v", m)
		}
		if m.hasID {
			if len(m.comments) != 1 || m.comments[0] != "heartbeat" {
				t.Fatalf("ID outside a heartbeat: %+v", m)
			}
			last = m.id
		}
	}
	c.close()
	// The other tenant's events push the client's last event out of the
	// journal; the heartbeat's ID still resumes without a reset.
	for i := 4; i <= 6; i++ {
		mustPublish(t, bus, progress("t2", "w", "other", i))
	}
	mustPublish(t, bus, progress("t1", "w", "mine", 1))
	waitJournal(t, j, 7)
	c = openSSEWith(t, srv.URL+Path, "t1", last)
	c.connected()
	if m := c.nextEvent(); m.event != "import.progress" || m.id != "e1-7" {
		t.Fatalf("resumed with %+v", m)
	}
}

// gateWriter holds every write after the first until released, as a
// client that stopped reading would (the server's socket buffers full).
type gateWriter struct {
	http.ResponseWriter
	writes  atomic.Int64
	blocked chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(b []byte) (int, error) {
	if g.writes.Add(1) == 2 {
		close(g.blocked)
		<-g.release
	}
	return g.ResponseWriter.Write(b)
}

func (g *gateWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func TestSlowReaderGetsDropped(t *testing.T) {
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	j := startJournal(t, bus, JournalOptions{Epoch: "e1", MaxEvents: 4})
	sse := NewSSE(Options{Bus: bus, Journal: j, Heartbeat: time.Hour})
	g := &gateWriter{blocked: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.ResponseWriter = w
		sse.ServeHTTP(g, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	})
	c := openSSEWith(t, srv.URL+Path, "t1", "")
	c.connected()
	mustPublish(t, bus, progress("t1", "w", "r", 1))
	<-g.blocked // the stream holds event 1 and cannot send it
	for i := 2; i <= 11; i++ {
		mustPublish(t, bus, progress("t1", "w", "r", i))
	}
	waitJournal(t, j, 11) // holds 8..11: 2..7 passed the stream by
	close(g.release)
	if m := c.nextEvent(); m.id != "e1-1" {
		t.Fatalf("first %+v", m)
	}
	if m := c.nextEvent(); m.event != "dropped" || m.data != `{"dropped":6}` {
		t.Fatalf("want dropped 6, got %+v", m)
	}
	for want := 8; want <= 11; want++ {
		if m := c.nextEvent(); m.id != fmt.Sprintf("e1-%d", want) {
			t.Fatalf("after the drop: %+v, want e1-%d", m, want)
		}
	}
}

func TestStreamEndsWhenTheJournalStops(t *testing.T) {
	bus := events.NewMemory("test")
	srv, j := serveBus(t, bus, Options{Heartbeat: time.Hour}, JournalOptions{})
	c := openSSEWith(t, srv.URL+Path, "t1", "")
	c.connected()
	bus.Close()
	<-j.Done()
	if b, err := io.ReadAll(c.r); err != nil || len(b) != 0 {
		t.Fatalf("after the bus closed: %q %v", b, err)
	}
	// A new client is told, not left waiting.
	resp, err := http.Get(srv.URL + Path + "?" + url.Values{}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
