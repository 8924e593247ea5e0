package cache

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/events"
)

// fakeClock is a settable clock for Writes.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestWritesMatchNaiveModel records random writes and compares Newest
// with a per-instant model over a small time axis.
func TestWritesMatchNaiveModel(t *testing.T) {
	const axis = 200
	clk := &fakeClock{t: time.Unix(1000, 0)}
	for _, maxSpans := range []int{1024, 8} {
		r := rand.New(rand.NewPCG(1, uint64(maxSpans)))
		w := NewWrites(WritesConfig{Now: clk.now, MaxSpans: maxSpans, MaxAge: 1000 * time.Hour})
		floor := w.floor.Load()
		model := make([]int64, axis) // newest write per instant
		for op := 0; op < 3000; op++ {
			lo := r.Int64N(axis)
			hi := lo + r.Int64N(min(axis-lo, 1+r.Int64N(40)))
			at := floor + 1 + r.Int64N(1e6)
			w.Record("t", lo, hi, time.Unix(0, at))
			for x := lo; x <= hi; x++ {
				model[x] = max(model[x], at)
			}
			if w.Spans("t") > maxSpans {
				t.Fatalf("%d spans, bound %d", w.Spans("t"), maxSpans)
			}
			for range 5 {
				qlo := r.Int64N(axis)
				qhi := qlo + r.Int64N(axis-qlo)
				want := floor
				for x := qlo; x <= qhi; x++ {
					want = max(want, model[x])
				}
				got := w.Newest("t", qlo, qhi)
				if maxSpans >= 1024 && got != want {
					t.Fatalf("op %d: Newest(%d, %d) = %d, want %d", op, qlo, qhi, got, want)
				}
				// Merged spans may only err on the side of invalidating.
				if got < want {
					t.Fatalf("op %d (max %d spans): Newest(%d, %d) = %d, below the truth %d", op, maxSpans, qlo, qhi, got, want)
				}
			}
		}
		if w.Newest("other", 0, axis) != floor {
			t.Fatal("a tenant without writes must answer the floor")
		}
	}
}

func TestWritesValid(t *testing.T) {
	clk := &fakeClock{t: time.Unix(10_000, 0)}
	w := NewWrites(WritesConfig{Now: clk.now, Skew: time.Second, MaxAge: time.Hour})
	start := clk.t.UnixNano()
	clk.t = clk.t.Add(time.Minute)
	computed := clk.t.UnixNano()
	if !w.Valid("t", 100, 200, computed) {
		t.Fatal("nothing written since: valid")
	}
	if w.Valid("t", 100, 200, start) {
		t.Fatal("computed at the floor: invalid")
	}
	// A write next to the window leaves it alone, one into it does not.
	w.Record("t", 201, 300, clk.t.Add(time.Second))
	if !w.Valid("t", 100, 200, computed) {
		t.Fatal("write outside the window invalidated it")
	}
	w.Record("t", 150, 150, clk.t.Add(time.Second))
	if w.Valid("t", 100, 200, computed) {
		t.Fatal("write into the window after the computation: must be invalid")
	}
	if !w.Valid("other", 100, 200, computed) {
		t.Fatal("writes of another tenant must not matter")
	}
	// A query across tenants reads every one of them.
	if w.Valid("other|t", 100, 200, computed) || w.Valid("t|other", 100, 200, computed) {
		t.Fatal("a write into one tenant of a query across tenants must invalidate it")
	}
	if !w.Valid("other|third", 100, 200, computed) {
		t.Fatal("writes of tenants outside a query across tenants must not matter")
	}
	// Computed after the write (beyond the skew): valid again.
	clk.t = clk.t.Add(5 * time.Second)
	if !w.Valid("t", 100, 200, clk.t.UnixNano()) {
		t.Fatal("computed after the write: valid")
	}
	// Within the skew of the write: not trusted.
	if w.Valid("t", 100, 200, clk.t.Add(-4500*time.Millisecond).UnixNano()) {
		t.Fatal("computed within the skew after the write: invalid")
	}
	// Too old.
	clk.t = clk.t.Add(2 * time.Hour)
	if w.Valid("t", 100, 200, clk.t.Add(-61*time.Minute).UnixNano()) {
		t.Fatal("older than MaxAge: invalid")
	}
	// Reset raises the floor for everyone.
	c := clk.t.UnixNano()
	clk.t = clk.t.Add(time.Minute)
	w.Reset(clk.t)
	if w.Valid("x", 0, 1, c) {
		t.Fatal("computed before a reset: invalid")
	}
}

func TestWritesForgetOldSpans(t *testing.T) {
	clk := &fakeClock{t: time.Unix(10_000, 0)}
	w := NewWrites(WritesConfig{Now: clk.now, MaxAge: time.Hour})
	w.Record("t", 0, 10, clk.t)
	w.Record("t", 20, 30, clk.t)
	clk.t = clk.t.Add(2 * time.Hour)
	w.Record("t", 40, 50, clk.t)
	if n := w.Spans("t"); n != 1 {
		t.Fatalf("%d spans after the old ones aged out, want 1", n)
	}
}

func TestWritesExtremes(t *testing.T) {
	w := NewWrites(WritesConfig{})
	now := time.Now()
	w.Record("t", -1<<63, 1<<63-1, now)
	w.Record("t", 5, 5, now.Add(time.Second))
	w.Record("t", 1<<63-1, -1<<63, now.Add(2*time.Second)) // reversed
	if got := w.Newest("t", 0, 0); got != now.Add(2*time.Second).UnixNano() {
		t.Fatalf("Newest = %d", got)
	}
	if w.Spans("t") != 1 {
		t.Fatalf("%d spans, want 1", w.Spans("t"))
	}
}

func TestWritesFollowBus(t *testing.T) {
	bus := events.NewMemory("test")
	defer bus.Close()
	w := NewWrites(WritesConfig{Skew: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := w.Follow(ctx, bus); err != nil {
		t.Fatal(err)
	}
	computed := time.Now().Add(10 * time.Millisecond).UnixNano()
	at := time.Unix(0, computed).Add(time.Second)
	if err := bus.Publish(ctx, &events.Event{Type: events.RangeWritten, Tenant: "t", Time: at, Range: &events.Range{MinTime: 100, MaxTime: 200}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.Valid("t", 150, 160, computed) {
		if time.Now().After(deadline) {
			t.Fatal("the RangeWritten event never invalidated the window")
		}
		time.Sleep(time.Millisecond)
	}
	if w.Newest("t", 150, 160) != at.UnixNano() {
		t.Fatalf("Newest = %d, want the event's time %d", w.Newest("t", 150, 160), at.UnixNano())
	}
}

func TestWritesHookPublishes(t *testing.T) {
	bus := events.NewMemory("test")
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := bus.Subscribe(ctx, events.RangeWritten)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWrites(WritesConfig{Skew: time.Millisecond})
	before := time.Now().UnixNano()
	w.Hook(bus)("acme", 10, 20)
	if w.Valid("acme", 15, 15, before+int64(time.Microsecond)) {
		t.Fatal("the hook must record locally at once")
	}
	e := <-sub.C
	if e.Tenant != "acme" || e.Range == nil || e.Range.MinTime != 10 || e.Range.MaxTime != 20 {
		t.Fatalf("published %+v", e)
	}
}
