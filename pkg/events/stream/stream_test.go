package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/tenant"
)

// sseClient reads one SSE response.
type sseClient struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func openSSE(t *testing.T, url, tenantID string) *sseClient {
	t.Helper()
	// A stream that never sends what a test waits for fails the test
	// instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if tenantID != "" {
		req.Header.Set(tenant.Header, tenantID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sseClient{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// frame reads the next SSE frame (lines up to a blank line).
func (c *sseClient) frame() []string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("SSE stream ended: %v (read %q)", err, lines)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if len(lines) > 0 {
				return lines
			}
			continue
		}
		lines = append(lines, line)
	}
}

// event reads frames until an event frame, skipping heartbeats, and
// returns its type and decoded data.
func (c *sseClient) event() (string, *events.Event) {
	c.t.Helper()
	for {
		f := c.frame()
		var typ, data string
		for _, l := range f {
			switch {
			case strings.HasPrefix(l, "event: "):
				typ = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				data = strings.TrimPrefix(l, "data: ")
			}
		}
		if typ == "" {
			continue
		}
		if typ == "dropped" {
			c.t.Fatalf("events dropped: %s", data)
		}
		e, err := events.Unmarshal([]byte(data))
		if err != nil {
			c.t.Fatalf("event data %q: %v", data, err)
		}
		return typ, e
	}
}

func newServer(t *testing.T, o Options) (*httptest.Server, *events.Memory) {
	t.Helper()
	bus := events.NewMemory("test")
	t.Cleanup(func() { bus.Close() })
	srv, _ := serveBus(t, bus, o, JournalOptions{})
	return srv, bus
}

// startJournal starts a journal on bus for the test's duration.
func startJournal(t *testing.T, bus events.Bus, jo JournalOptions) *Journal {
	t.Helper()
	j, err := StartJournal(context.Background(), bus, jo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// serveBus serves the SSE endpoint of bus with a journal of its own, as
// the server wires it.
func serveBus(t *testing.T, bus events.Bus, o Options, jo JournalOptions) (*httptest.Server, *Journal) {
	t.Helper()
	j := startJournal(t, bus, jo)
	o.Bus, o.Journal = bus, j
	mux := http.NewServeMux()
	mux.Handle(Path, NewSSE(o))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, j
}

func TestSSEDeliversTheTenantsFilteredEvents(t *testing.T) {
	aliases := func(tenant, name string) []string {
		if name == "new" {
			return []string{"new", "old"}
		}
		return []string{name}
	}
	srv, bus := newServer(t, Options{Aliases: aliases, Heartbeat: time.Hour})
	c := openSSE(t, srv.URL+Path+"?types=import.*&types=workspace.renamed&workspace=new", "t1")
	if c.resp.StatusCode != 200 || !strings.HasPrefix(c.resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d content type %q", c.resp.StatusCode, c.resp.Header.Get("Content-Type"))
	}
	// The opening frame says the stream is live; publishing after it is
	// safe.
	if f := c.frame(); !strings.Contains(strings.Join(f, "\n"), ": connected") {
		t.Fatalf("opening frame %q", f)
	}
	ctx := context.Background()
	publish := func(e *events.Event) {
		if err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	publish(&events.Event{Type: events.ImportProgress, Tenant: "t2", Import: &events.Import{Workspace: "new", RunID: "other-tenant"}})
	publish(&events.Event{Type: events.ImportProgress, Tenant: "t1", Import: &events.Import{Workspace: "elsewhere", RunID: "other-workspace"}})
	publish(&events.Event{Type: events.SearchCompleted, Tenant: "t1", Search: &events.Search{QueryID: "q"}})
	publish(&events.Event{Type: events.ImportProgress, Tenant: "t1", Import: &events.Import{Workspace: "old", RunID: "r1", FilesDone: 2}})
	publish(&events.Event{Type: events.WorkspaceRenamed, Tenant: "t1", Workspace: &events.Workspace{Name: "new", OldName: "old"}})
	publish(&events.Event{Type: events.ImportCompleted, Tenant: "t1", Import: &events.Import{Workspace: "new", RunID: "r2"}})

	typ, e := c.event()
	if typ != "import.progress" || e.Import.RunID != "r1" || e.Import.FilesDone != 2 || e.Tenant != "t1" {
		t.Fatalf("first event %s %+v", typ, e.Import)
	}
	if typ, e = c.event(); typ != "workspace.renamed" || e.Workspace.OldName != "old" {
		t.Fatalf("second event %s %+v", typ, e)
	}
	if typ, e = c.event(); typ != "import.completed" || e.Import.RunID != "r2" {
		t.Fatalf("third event %s %+v", typ, e)
	}
}

func TestSSEHeartbeat(t *testing.T) {
	srv, _ := newServer(t, Options{Heartbeat: 5 * time.Millisecond})
	c := openSSE(t, srv.URL+Path, "")
	c.frame() // connected
	if f := c.frame(); len(f) != 1 || f[0] != ": heartbeat" {
		t.Fatalf("heartbeat frame %q", f)
	}
}

func TestSSEErrors(t *testing.T) {
	srv, _ := newServer(t, Options{Tenants: tenant.Resolver{Required: true}})
	check := func(method, query, tenantID string, code int, want string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+Path+query, nil)
		if tenantID != "" {
			req.Header.Set(tenant.Header, tenantID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var out map[string]string
		if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != code || !strings.Contains(out["error"], want) {
			t.Errorf("%s %s: %d %s, want %d with %q", method, query, resp.StatusCode, body, code, want)
		}
	}
	check("GET", "", "", 401, "no org id")
	check("GET", "?types=bogus", "t1", 400, "unknown event type")
	check("GET", "?types=bogus.*", "t1", 400, "matches no type")
	check("GET", "?workspace="+strings.Repeat("w", 200), "t1", 400, "longer than")
	check("GET", "", "bad/tenant", 400, "unsupported character")
	check("POST", "", "t1", 405, "use GET")
}

func TestSSEMultiTenantReader(t *testing.T) {
	srv, bus := newServer(t, Options{Heartbeat: time.Hour})
	c := openSSE(t, srv.URL+Path+"?types=cache.hit", "b|a")
	c.frame()
	for _, tn := range []string{"c", "a", "b"} {
		_ = bus.Publish(context.Background(), &events.Event{Type: events.CacheHit, Tenant: tn, Cache: &events.Cache{Key: tn}})
	}
	if _, e := c.event(); e.Tenant != "a" {
		t.Fatalf("first %s", e.Tenant)
	}
	if _, e := c.event(); e.Tenant != "b" {
		t.Fatalf("second %s", e.Tenant)
	}
}

func TestToProtoCarriesEveryPayload(t *testing.T) {
	now := time.Unix(100, 5)
	cases := []*events.Event{
		{Type: events.SearchFailed, Time: now, Tenant: "t", Search: &events.Search{QueryID: "q", Duration: time.Second, Results: 3, Error: "boom"}},
		{Type: events.ImportProgress, Time: now, Tenant: "t", Import: &events.Import{Workspace: "w", RunID: "r", FilesDone: 2, BytesDone: 9}},
		{Type: events.CacheInvalidated, Time: now, Tenant: "t", Cache: &events.Cache{Key: "k", Reason: "late write"}},
		{Type: events.WorkspaceDeleted, Time: now, Tenant: "t", Workspace: &events.Workspace{Name: "w", DeletedStreams: 4}},
		{Type: events.RangeWritten, Time: now, Tenant: "t", Range: &events.Range{MinTime: 1, MaxTime: 2}},
	}
	for _, e := range cases {
		p := ToProto(e)
		if p.GetType() != string(e.Type) || p.GetTimeUnixNano() != now.UnixNano() || p.GetPayload() == nil {
			t.Fatalf("%s: %v", e.Type, p)
		}
	}
	if p := ToProto(cases[0]); p.GetSearch().GetDurationNs() != int64(time.Second) || p.GetSearch().GetError() != "boom" {
		t.Fatalf("search payload %v", p)
	}
	if p := ToProto(cases[1]); p.GetImport().GetCounters().GetFilesDone() != 2 || p.GetImport().GetCounters().GetBytesDone() != 9 {
		t.Fatalf("import payload %v", p)
	}
	if p := ToProto(cases[3]); p.GetWorkspace().GetDeletedStreams() != 4 {
		t.Fatalf("workspace payload %v", p)
	}
}

func TestSSEEndsWhenDoneCloses(t *testing.T) {
	done := make(chan struct{})
	srv, _ := newServer(t, Options{Heartbeat: time.Hour, Done: done})
	c := openSSE(t, srv.URL+Path, "t1")
	c.frame()
	close(done)
	if b, err := io.ReadAll(c.r); err != nil || len(b) != 0 {
		t.Fatalf("after Done: %q %v, want the stream to end", b, err)
	}
}
