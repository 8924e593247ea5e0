package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/events/stream"
	"github.com/logsift/logsift/pkg/tenant"
)

// readAll reads every message of an event stream.
func readAll(t testing.TB, in string) ([]SSEMessage, error) {
	t.Helper()
	return readAllFrom(strings.NewReader(in))
}

func readAllFrom(src io.Reader) ([]SSEMessage, error) {
	r := NewSSEReader(src)
	var out []SSEMessage
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func TestSSEReaderFollowsTheStandard(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []SSEMessage
	}{
		{"server framing", "retry: 3000\n: connected\n\nid: 1\nevent: import.progress\ndata: {\"a\":1}\n\n: heartbeat\n\n",
			[]SSEMessage{{Comment: "connected"}, {Event: "import.progress", Data: []byte(`{"a":1}`), ID: "1"}, {Comment: "heartbeat", ID: "1"}}},
		{"CRLF and CR line endings", "event: a\r\ndata: x\r\n\r\nevent: b\rdata: y\r\r",
			[]SSEMessage{{Event: "a", Data: []byte("x")}, {Event: "b", Data: []byte("y")}}},
		{"data lines join with LF, no space after the colon", "data:one\ndata: two\ndata\n\n",
			[]SSEMessage{{Event: "message", Data: []byte("one\ntwo\n")}}},
		{"only one leading space is removed", "data:  two spaces\n\n",
			[]SSEMessage{{Event: "message", Data: []byte(" two spaces")}}},
		{"an event without data is none, and its type is forgotten", "event: lost\n\ndata: kept\n\n",
			[]SSEMessage{{Event: "message", Data: []byte("kept")}}},
		{"empty data still dispatches", "data:\n\n",
			[]SSEMessage{{Event: "message", Data: []byte("")}}},
		{"the id persists; an id with NUL is ignored", "id: 7\ndata: a\n\nid: x\x00y\ndata: b\n\n",
			[]SSEMessage{{Event: "message", Data: []byte("a"), ID: "7"}, {Event: "message", Data: []byte("b"), ID: "7"}}},
		{"unknown fields are ignored", "foo: bar\nevent: e\ndata: d\n\n",
			[]SSEMessage{{Event: "e", Data: []byte("d")}}},
		{"an incomplete event at the end is discarded", "data: complete\n\ndata: cut",
			[]SSEMessage{{Event: "message", Data: []byte("complete")}}},
		{"a CRLF split across reads before the end is no empty line", "data: x\r\n",
			nil},
		{"a byte order mark at the start is dropped", "\xEF\xBB\xBFdata: bom\n\n",
			[]SSEMessage{{Event: "message", Data: []byte("bom")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readAll(t, c.in)
			if err != nil {
				t.Fatal(err)
			}
			// Byte by byte, as a slow connection delivers it: every
			// line ending falls at the end of a read.
			slow, err := readAllFrom(iotest.OneByteReader(strings.NewReader(c.in)))
			if err != nil {
				t.Fatal(err)
			}
			if len(slow) != len(got) {
				t.Fatalf("read byte by byte: %+v; at once: %+v", slow, got)
			}
			for i := range slow {
				if slow[i].Event != got[i].Event || !bytes.Equal(slow[i].Data, got[i].Data) || slow[i].ID != got[i].ID || slow[i].Comment != got[i].Comment {
					t.Errorf("message %d read byte by byte: %+v; at once: %+v", i, slow[i], got[i])
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d messages %+v, want %+v", len(got), got, c.want)
			}
			for i := range got {
				if got[i].Event != c.want[i].Event || !bytes.Equal(got[i].Data, c.want[i].Data) || got[i].ID != c.want[i].ID || got[i].Comment != c.want[i].Comment {
					t.Errorf("message %d: %+v (data %q), want %+v (data %q)", i, got[i], got[i].Data, c.want[i], c.want[i].Data)
				}
			}
		})
	}
	r := NewSSEReader(strings.NewReader("retry: 1500\n\nretry: soon\n\n"))
	_, _ = r.Next()
	if r.Retry != 1500*time.Millisecond {
		t.Errorf("retry %v, want 1.5s (a non-number is ignored)", r.Retry)
	}
}

// TestSSEReaderDoesNotWaitAfterCR: a stream that stops right after a CR
// ends its line there; the reader must not wait for a LF that may come
// much later, or never.
func TestSSEReaderDoesNotWaitAfterCR(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	r := NewSSEReader(pr)
	got := make(chan SSEMessage, 1)
	go func() {
		m, err := r.Next()
		if err == nil {
			got <- m
		}
	}()
	if _, err := pw.Write([]byte("data: now\r\r")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Data) != "now" {
			t.Errorf("data %q", m.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader waited for more input after a CR")
	}
	// A LF right after the CR that ended a line is part of that ending,
	// not an empty line.
	got2 := make(chan SSEMessage, 1)
	go func() {
		m, err := r.Next()
		if err == nil {
			got2 <- m
		}
	}()
	if _, err := pw.Write([]byte("\ndata: next\n\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got2:
		if string(m.Data) != "next" {
			t.Errorf("data %q", m.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no second event")
	}
}

func TestSSEReaderBounds(t *testing.T) {
	long := "data: " + strings.Repeat("x", maxSSELine) + "\n\n"
	if _, err := readAll(t, long); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a line over the bound: %v", err)
	}
	var b strings.Builder
	for b.Len() <= maxSSEData {
		b.WriteString("data: " + strings.Repeat("y", 64<<10) + "\n")
	}
	b.WriteString("\n")
	if _, err := readAll(t, b.String()); err == nil || !strings.Contains(err.Error(), "bytes of data") {
		t.Errorf("data over the bound: %v", err)
	}
}

func TestDecodeImportEvent(t *testing.T) {
	e, err := DecodeImportEvent([]byte(`{"type":"import.progress","time":"2026-05-03T10:15:02.5Z","tenant":"acme","origin":"h/1",
		"import":{"workspace":"case-4711","run_id":"0190c3a1b2c4-9f8e7d6c","host":"laptop","status":"running","files":12,"files_done":5,
		"bytes":73400320,"bytes_done":31457280,"lines":412000,"chunks":31,"duration_ms":8200}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := ImportUpdate{Workspace: "case-4711", RunID: "0190c3a1b2c4-9f8e7d6c", Host: "laptop", Status: "running", Files: 12, FilesDone: 5,
		Bytes: 73400320, BytesDone: 31457280, Lines: 412000, Chunks: 31, DurationMS: 8200}
	if e.Type != "import.progress" || e.Tenant != "acme" || e.Time.UnixMilli() != time.Date(2026, 5, 3, 10, 15, 2, 5e8, time.UTC).UnixMilli() || e.Import != want {
		t.Errorf("decoded %+v", e)
	}
	for in, msg := range map[string]string{
		`{"type":"search.requested","import":{"run_id":"1"}}`:                "not an import event",
		`{"type":"import.started","import":{}}`:                              "without a run ID",
		`{"type":"import.progress","import":{"run_id":"1","bytes_done":-1}}`: "negative counter",
		`{"type":`: "decode import event",
	} {
		if _, err := DecodeImportEvent([]byte(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", in, err, msg)
		}
	}
}

// sseServer serves the server's own SSE handler (pkg/events/stream) over
// an in-process bus.
func sseServer(t *testing.T, required bool) (*httptest.Server, events.Bus) {
	hs, bus, _ := sseServerJournal(t, required, stream.JournalOptions{})
	return hs, bus
}

// sseServerJournal is sseServer with the journal the handler replays
// from, as the server wires it.
func sseServerJournal(t *testing.T, required bool, jo stream.JournalOptions) (*httptest.Server, events.Bus, *stream.Journal) {
	t.Helper()
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	j, err := stream.StartJournal(context.Background(), bus, jo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	mux := http.NewServeMux()
	mux.Handle(stream.Path, stream.NewSSE(stream.Options{Bus: bus, Journal: j, Tenants: tenant.Resolver{Required: required}, Heartbeat: 50 * time.Millisecond}))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, bus, j
}

// waitJournal waits until the journal holds event seq (the bus delivers
// to it asynchronously); the deadline is a safety net.
func waitJournal(t *testing.T, j *stream.Journal, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for j.Stats().Last < seq {
		if time.Now().After(deadline) {
			t.Fatalf("journal holds up to %d, want %d", j.Stats().Last, seq)
		}
		time.Sleep(time.Millisecond)
	}
}

// nextEvent reads past comments to the next event.
func nextEvent(t *testing.T, es *EventStream) SSEMessage {
	t.Helper()
	for {
		m, err := es.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !m.IsComment() {
			return m
		}
	}
}

// TestEventsResume reconnects from the last event delivered: the events
// published in between come once, in order, then live ones; a stream the
// server cannot resume starts with a reset.
func TestEventsResume(t *testing.T) {
	hs, bus, j := sseServerJournal(t, true, stream.JournalOptions{Epoch: "e1", MaxEvents: 12})
	c, err := New(Config{URL: hs.URL, Tenant: "acme", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := func(tn, run string, done int) {
		t.Helper()
		if err := bus.Publish(ctx, &events.Event{Type: events.ImportProgress, Tenant: tn, Import: &events.Import{Workspace: "w", RunID: run, FilesDone: done}}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := c.Events(ctx, EventsRequest{Types: []string{"import.*"}})
	if err != nil {
		t.Fatal(err)
	}
	pub("acme", "r", 1)
	if m := nextEvent(t, es); m.ID != "e1-1" || es.LastEventID() != "e1-1" {
		t.Fatalf("first event %+v, last ID %q", m, es.LastEventID())
	}
	es.Close()
	pub("acme", "r", 2)
	pub("other", "r", 99)
	pub("acme", "r", 3)
	waitJournal(t, j, 4)
	es2, err := es.Resume(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer es2.Close()
	for _, want := range []int{2, 3} {
		e, err := DecodeImportEvent(nextEvent(t, es2).Data)
		if err != nil || e.Tenant != "acme" || e.Import.FilesDone != int64(want) {
			t.Fatalf("resumed event %+v (%v), want files_done %d", e, err, want)
		}
	}
	pub("acme", "live", 1)
	if e, _ := DecodeImportEvent(nextEvent(t, es2).Data); e.Import.RunID != "live" {
		t.Fatalf("after the missed events: %+v", e)
	}
	if es2.LastEventID() != "e1-5" {
		t.Fatalf("last ID %q", es2.LastEventID())
	}

	// Other tenants' events move the journal on; the heartbeats carry the
	// position, so the client's ID follows without an event of its own.
	for i := 0; i < 10; i++ {
		pub("other", "r", i)
	}
	waitJournal(t, j, 15)
	for es2.LastEventID() != "e1-15" {
		if m, err := es2.Next(); err != nil || !m.IsComment() {
			t.Fatalf("waiting for a heartbeat with the position: %+v %v", m, err)
		}
	}
	es2.Close()
	es3, err := es2.Resume(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub("acme", "after-heartbeat", 1)
	if m := nextEvent(t, es3); m.Event != "import.progress" || m.ID != "e1-16" {
		t.Fatalf("resumed from a heartbeat's ID: %+v", m)
	}
	es3.Close()

	// A server restart (another epoch) or an ID too old: a reset, then
	// live events.
	for _, id := range []string{"e0-3", "e1-2"} {
		es, err := c.Events(ctx, EventsRequest{Types: []string{"import.*"}, LastEventID: id})
		if err != nil {
			t.Fatal(err)
		}
		m := nextEvent(t, es)
		r, err := DecodeReset(m.Data)
		if m.Event != EventReset || err != nil || r.LastEventID != id || r.Message == "" {
			t.Fatalf("from %s: %+v %+v %v", id, m, r, err)
		}
		if es.LastEventID() != "e1-16" {
			t.Fatalf("after the reset the last ID is %q, want the server's position", es.LastEventID())
		}
		es.Close()
	}
	if _, err := DecodeReset([]byte(`{}`)); err == nil {
		t.Error("a reset without a reason decoded")
	}
}

func TestSSEReaderTakesTheIDWhenDispatched(t *testing.T) {
	r := NewSSEReader(strings.NewReader("id: 5\ndata: a\n\nid: 6\n: heartbeat\n\nid: 7\ndata: cut"))
	if m, err := r.Next(); err != nil || r.LastEventID() != "5" || m.ID != "5" {
		t.Fatalf("%+v %v %q", m, err, r.LastEventID())
	}
	// The comment comes before its frame's empty line.
	if m, err := r.Next(); err != nil || m.Comment != "heartbeat" || r.LastEventID() != "5" {
		t.Fatalf("%+v %v %q", m, err, r.LastEventID())
	}
	// The ID-only frame sets the ID; the event cut before its empty line
	// does not.
	if _, err := r.Next(); !errors.Is(err, io.EOF) || r.LastEventID() != "6" {
		t.Fatalf("%v %q", err, r.LastEventID())
	}
}

// TestEventsFromTheServer reads the server's SSE handler: the tenant and
// the workspace filter reach it, only import events come, and its
// heartbeats arrive as comments.
func TestEventsFromTheServer(t *testing.T) {
	hs, bus := sseServer(t, true)
	c, err := New(Config{URL: hs.URL, Tenant: "acme", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	es, err := c.Events(ctx, EventsRequest{Types: []string{"import.*"}, Workspace: "case-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	// The answer came, so the subscription is in place: publish now.
	pub := func(e *events.Event) {
		if err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	pub(&events.Event{Type: events.ImportStarted, Tenant: "other", Import: &events.Import{Workspace: "case-1", RunID: "r0"}})
	pub(&events.Event{Type: events.SearchRequested, Tenant: "acme", Search: &events.Search{QueryID: "q"}})
	pub(&events.Event{Type: events.ImportStarted, Tenant: "acme", Import: &events.Import{Workspace: "case-2", RunID: "r1"}})
	pub(&events.Event{Type: events.ImportProgress, Tenant: "acme", Import: &events.Import{Workspace: "case-1", RunID: "r2", Status: "running", Files: 3, FilesDone: 1, Bytes: 300, BytesDone: 100}})
	pub(&events.Event{Type: events.ImportCompleted, Tenant: "acme", Import: &events.Import{Workspace: "case-1", RunID: "r2", Status: "completed", Files: 3, FilesDone: 3, Bytes: 300, BytesDone: 300, Lines: 9}})
	var got []ImportEvent
	heartbeats := 0
	for len(got) < 2 || heartbeats == 0 {
		m, err := es.Next()
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if m.IsComment() {
			if m.Comment == "heartbeat" {
				heartbeats++
			}
			continue
		}
		e, err := DecodeImportEvent(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Event != e.Type {
			t.Errorf("SSE event %q carries %q", m.Event, e.Type)
		}
		got = append(got, e)
	}
	if got[0].Type != "import.progress" || got[0].Import.RunID != "r2" || got[0].Import.BytesDone != 100 ||
		got[1].Type != "import.completed" || got[1].Import.Lines != 9 || got[1].Tenant != "acme" {
		t.Errorf("events %+v: want r2's progress then completion, nothing of another tenant, type or workspace", got)
	}
}

func TestEventsRefusals(t *testing.T) {
	hs, _ := sseServer(t, true)
	ctx := context.Background()
	c, _ := New(Config{URL: hs.URL})
	if _, err := c.Events(ctx, EventsRequest{Types: []string{"import.*"}}); !IsStatus(err, http.StatusUnauthorized) {
		t.Errorf("no tenant: %v, want a 401", err)
	}
	c, _ = New(Config{URL: hs.URL, Tenant: "acme"})
	if _, err := c.Events(ctx, EventsRequest{Types: []string{"nonsense"}}); !IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "unknown event type") {
		t.Errorf("unknown type: %v, want the server's 400", err)
	}
	loki := httptest.NewServer(http.NotFoundHandler())
	defer loki.Close()
	c, _ = New(Config{URL: loki.URL})
	if _, err := c.Events(ctx, EventsRequest{}); !errors.Is(err, ErrNoEventStream) {
		t.Errorf("a server without the endpoint: %v", err)
	}
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>")
	}))
	defer html.Close()
	c, _ = New(Config{URL: html.URL})
	if _, err := c.Events(ctx, EventsRequest{}); !errors.Is(err, ErrNoEventStream) {
		t.Errorf("a page that is not an event stream: %v", err)
	}
	silent := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer silent.Close()
	c, _ = New(Config{URL: silent.URL, Timeout: 100 * time.Millisecond})
	var ce *ConnectError
	if _, err := c.Events(ctx, EventsRequest{}); !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a server that never answers: %v", err)
	}
}

// FuzzSSEReader reads arbitrary streams: no panic, no message over the
// bounds, event names without line breaks, the same messages whether the
// input comes at once or byte by byte; and a stream written the way
// the server writes events reads back as written.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("retry: 3000\n: connected\n\nid: 1\nevent: import.progress\ndata: {\"type\":\"import.progress\",\"import\":{\"run_id\":\"r\"}}\n\n"), "import.started", "{}")
	f.Add([]byte("data:a\r\ndata\rdata: b\r\r\nevent:\n\n"), "x", "line one\nline two")
	f.Add([]byte("\xEF\xBB\xBFid: \x00\nretry: 12a\n:\n\n"), "", "")
	f.Fuzz(func(t *testing.T, in []byte, name, payload string) {
		msgs, err := readAll(t, string(in))
		slow, slowErr := readAllFrom(iotest.OneByteReader(bytes.NewReader(in)))
		if (err == nil) != (slowErr == nil) || len(slow) != len(msgs) {
			t.Fatalf("read at once: %d messages, %v; byte by byte: %d, %v", len(msgs), err, len(slow), slowErr)
		}
		for i, m := range msgs {
			if s := slow[i]; s.Event != m.Event || !bytes.Equal(s.Data, m.Data) || s.ID != m.ID || s.Comment != m.Comment {
				t.Fatalf("message %d: %+v at once, %+v byte by byte", i, m, s)
			}
			if strings.ContainsAny(m.Event, "\r\n") || strings.ContainsAny(m.Comment, "\r\n") || strings.ContainsAny(m.ID, "\r\n\x00") {
				t.Fatalf("a line break or NUL inside a field: %+v", m)
			}
			if len(m.Data) > maxSSEData {
				t.Fatalf("data of %d bytes", len(m.Data))
			}
			if !m.IsComment() && m.Event == "" {
				t.Fatal("an event without a type")
			}
			if !m.IsComment() && bytes.HasPrefix(m.Data, []byte("{")) {
				_, _ = DecodeImportEvent(m.Data)
			}
		}
		// The server's framing: one event line, one data line per line of
		// the payload (which has no CR: the server writes JSON).
		if name == "" || strings.ContainsAny(name, "\r\n:") || strings.ContainsRune(payload, '\r') || !utf8.ValidString(name) {
			return
		}
		var b strings.Builder
		b.WriteString("id: 1\nevent: " + name + "\n")
		for _, l := range strings.Split(payload, "\n") {
			b.WriteString("data: " + l + "\n")
		}
		b.WriteString("\n")
		got, err := readAll(t, b.String())
		if err != nil {
			if len(payload) > maxSSELine/2 {
				return
			}
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Event != name || !bytes.Equal(got[0].Data, []byte(payload)) || got[0].ID != "1" || got[0].Comment != "" {
			t.Fatalf("round trip of %q %q: %+v", name, payload, got)
		}
	})
}
