package events

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

func TestMarshalRoundTrip(t *testing.T) {
	e := &Event{Type: ImportProgress, Time: time.Unix(1700000000, 123).UTC(), Tenant: "t", Origin: "o", Actor: "a",
		Import: &Import{Workspace: "w", RunID: "r", Host: "h", Status: "running", FilesDone: 1, BytesDone: 2}}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(e.Time) || got.Actor != "a" || *got.Import != *e.Import || got.WorkspaceName() != "w" {
		t.Fatalf("round trip: %+v %+v", got, got.Import)
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"type":""}`, `{"type":"x","time":"yesterday"}`, `{"type":"x"`} {
		if _, err := Unmarshal([]byte(bad)); err == nil {
			t.Errorf("Unmarshal(%q) accepted", bad)
		}
	}
}

func TestParseTypes(t *testing.T) {
	for in, want := range map[string][]Type{
		"":                                  nil,
		" , ":                               nil,
		"import.progress":                   {ImportProgress},
		"import.progress, import.progress ": {ImportProgress},
		"cache.*":                           {CacheHit, CacheInvalidated, CacheMiss},
		"search.failed,workspace.*":         {SearchFailed, WorkspaceCreated, WorkspaceDeleted, WorkspaceRenamed},
	} {
		got, err := ParseTypes(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseTypes(%q) = %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"import", "nope.*", "import.progress,bogus", "*"} {
		if _, err := ParseTypes(bad); err == nil {
			t.Errorf("ParseTypes(%q) accepted", bad)
		}
	}
	for _, typ := range AllTypes {
		if !validTypeName(typ) {
			t.Errorf("type %q is not a valid subject token", typ)
		}
	}
	for _, bad := range []Type{"", ".a", "a.", "a..b", "A", "a b", "a.*", "a.>", Type(strings.Repeat("a", 65))} {
		if validTypeName(bad) {
			t.Errorf("validTypeName(%q)", bad)
		}
	}
}

func TestFilter(t *testing.T) {
	f := Filter{Tenants: []string{"a"}, Types: []Type{ImportProgress, WorkspaceRenamed}, Workspace: []string{"new", "old"}}
	for _, c := range []struct {
		e    Event
		want bool
	}{
		{Event{Type: ImportProgress, Tenant: "a", Import: &Import{Workspace: "old"}}, true},
		{Event{Type: ImportProgress, Tenant: "b", Import: &Import{Workspace: "new"}}, false},
		{Event{Type: ImportStarted, Tenant: "a", Import: &Import{Workspace: "new"}}, false},
		{Event{Type: ImportProgress, Tenant: "a", Import: &Import{Workspace: "x"}}, false},
		{Event{Type: WorkspaceRenamed, Tenant: "a", Workspace: &Workspace{Name: "newer", OldName: "new"}}, true},
		{Event{Type: ImportProgress, Tenant: "a"}, false},
	} {
		if got := f.Match(&c.e); got != c.want {
			t.Errorf("Match(%+v) = %v", c.e, got)
		}
	}
	if (&Filter{}).Match(&Event{Type: CacheHit, Tenant: "a"}) {
		t.Fatal("a filter without tenants let an event through")
	}
	if !(&Filter{Tenants: []string{""}}).Match(&Event{Type: CacheHit}) {
		t.Fatal("filter on the empty tenant")
	}
}

func TestMemoryBus(t *testing.T) {
	bus := NewMemory("here")
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := bus.Subscribe(ctx, CacheMiss)
	if err != nil {
		t.Fatal(err)
	}
	_ = bus.Publish(context.Background(), &Event{Type: CacheHit, Tenant: "t"})
	_ = bus.Publish(context.Background(), &Event{Type: CacheMiss, Tenant: "t"})
	e := <-sub.C
	if e.Type != CacheMiss || e.Origin != "here" || e.Time.IsZero() {
		t.Fatalf("got %+v", e)
	}
	// A subscriber that does not read loses events, counted.
	for i := 0; i < 2000; i++ {
		_ = bus.Publish(context.Background(), &Event{Type: CacheMiss, Tenant: "t"})
	}
	if sub.Dropped() != 2000-1024 {
		t.Fatalf("dropped %d", sub.Dropped())
	}
	cancel()
	n := 0
	for range sub.C {
		n++
	}
	if n != 1024 {
		t.Fatalf("drained %d", n)
	}
	bus.Close()
	late, _ := bus.Subscribe(context.Background())
	if _, ok := <-late.C; ok {
		t.Fatal("subscription on a closed bus delivers")
	}
}

func TestCountEventsCountsOwnOrigin(t *testing.T) {
	bus := NewMemory("me")
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := CountEvents(ctx, bus, "me", nil); err != nil {
		t.Fatal(err)
	}
	// Every known type is exported before its first event.
	var exposed bytes.Buffer
	metrics.WritePrometheus(&exposed, false)
	for _, typ := range AllTypes {
		if !strings.Contains(exposed.String(), `logsift_events_total{type="`+string(typ)+`"}`) {
			t.Errorf("logsift_events_total{type=%q} is not exported before its first event", typ)
		}
	}
	before, beforeHit := EventCount(SearchRequested), EventCount(CacheHit)
	_ = bus.Publish(ctx, &Event{Type: SearchRequested, Tenant: "t", Origin: "other-process"})
	for i := 0; i < 3; i++ {
		_ = bus.Publish(ctx, &Event{Type: SearchRequested, Tenant: "t"})
	}
	// The subscriber handles events in order: once the sentinel is counted
	// the others are too.
	_ = bus.Publish(ctx, &Event{Type: CacheHit, Tenant: "t"})
	deadline := time.Now().Add(20 * time.Second)
	for EventCount(CacheHit) == beforeHit {
		if time.Now().After(deadline) {
			t.Fatal("the metrics subscriber counted nothing")
		}
		time.Sleep(time.Millisecond)
	}
	if got := EventCount(SearchRequested) - before; got != 3 {
		t.Fatalf("counted %d search.requested events, want 3 (only this origin's)", got)
	}
	if eventCounter("made.up") != eventCounter("other.thing") {
		t.Fatal("unknown types must share one series")
	}
}

func TestActorAndOrigin(t *testing.T) {
	if ActorFromContext(context.Background()) != "" {
		t.Fatal("actor without WithActor")
	}
	if got := ActorFromContext(WithActor(context.Background(), "1.2.3.4")); got != "1.2.3.4" {
		t.Fatalf("actor %q", got)
	}
	if o := DefaultOrigin(); !strings.Contains(o, "/") {
		t.Fatalf("origin %q", o)
	}
	if got := redactURL("nats://u:p@h1:4222,nats://h2:4222,tls://tok@h3"); got != "nats://***@h1:4222,nats://h2:4222,tls://***@h3" {
		t.Fatalf("redacted %q", got)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"type":"import.progress","time":"2024-01-01T00:00:00Z","tenant":"t","import":{"workspace":"w","run_id":"r","files_done":3}}`))
	f.Add([]byte(`{"type":"search.completed","search":{"query_id":"q","duration":1000000,"results":-1}}`))
	f.Add([]byte(`{"type":"x","range":{"min_time":1e30}}`))
	f.Add([]byte(`{"type":"\u0000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			return
		}
		if e.Type == "" {
			t.Fatal("decoded an event without a type")
		}
		// What decodes must encode and decode to the same type.
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := Unmarshal(out)
		if err != nil || e2.Type != e.Type || e2.Tenant != e.Tenant {
			t.Fatalf("round trip: %v %+v", err, e2)
		}
		_ = e.WorkspaceName()
	})
}

func FuzzParseTypes(f *testing.F) {
	f.Add("import.*")
	f.Add("search.requested,cache.hit")
	f.Add(",,.*,")
	f.Add("a.*.*")
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTypes(s)
		if err != nil {
			return
		}
		for _, typ := range ts {
			if !typ.Known() || !validTypeName(typ) {
				t.Fatalf("ParseTypes(%q) gave %q", s, typ)
			}
		}
		if !slices.IsSorted(ts) {
			t.Fatalf("not sorted: %v", ts)
		}
	})
}
