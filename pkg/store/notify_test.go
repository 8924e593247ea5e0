package store

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

type noted struct {
	tenant string
	lo, hi int64
}

func TestOnWriteCoalesces(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	var mu sync.Mutex
	var got []noted
	stop := s.OnWrite(time.Hour, func(tenant string, lo, hi int64) { // flushed by stop only
		mu.Lock()
		got = append(got, noted{tenant, lo, hi})
		mu.Unlock()
	})
	sec := int64(time.Second)
	// Live ingest: many batches close together become one range.
	for i := int64(0); i < 100; i++ {
		s.noteAppended("a", []Stream{{Entries: []chunk.Entry{{Timestamp: 1000 * sec}, {Timestamp: (1000 + i) * sec}}}})
	}
	// An import far in the past stays apart from it.
	s.noteWrite("a", 10*sec, 20*sec)
	s.noteWrite("b", 5, 5)
	s.noteDropped("b", 1)
	stop()
	want := map[noted]bool{
		{"a", 1000 * sec, 1099 * sec}:   true,
		{"a", 10 * sec, 20 * sec}:       true,
		{"b", 5, 5}:                     true,
		{"b", dayNanos, 2*dayNanos - 1}: true,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, n := range got {
		if !want[n] {
			t.Fatalf("unexpected notification %+v (all: %v)", n, got)
		}
	}
	// After the last stop, writes cost nothing and reach no one.
	if s.notifier() != nil {
		t.Fatal("notifier still registered after stop")
	}
	s.noteWrite("a", 1, 2)
}

func TestOnWriteBoundsRanges(t *testing.T) {
	var ss []writeSpan
	for i := int64(0); i < 100; i++ {
		ss = addWriteSpan(ss, i*int64(time.Hour), i*int64(time.Hour)+10)
	}
	if len(ss) > maxPendingSpans {
		t.Fatalf("%d pending ranges, bound %d", len(ss), maxPendingSpans)
	}
	// Everything written is still covered.
	for i := int64(0); i < 100; i++ {
		lo := i * int64(time.Hour)
		covered := false
		for _, s := range ss {
			if s.lo <= lo && lo+10 <= s.hi {
				covered = true
			}
		}
		if !covered {
			t.Fatalf("write at hour %d is not covered by %v", i, ss)
		}
	}
}

// TestOnWriteFromAppend checks the periodic delivery with real appends.
func TestOnWriteFromAppend(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	got := make(chan noted, 16)
	stop := s.OnWrite(10*time.Millisecond, func(tenant string, lo, hi int64) { got <- noted{tenant, lo, hi} })
	defer stop()
	streams := []Stream{{Labels: labels.New("job", "x"), Entries: []chunk.Entry{{Timestamp: 500, Line: []byte("a")}, {Timestamp: 700, Line: []byte("b")}}}}
	if err := s.Append(context.Background(), "t", streams); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != (noted{"t", 500, 700}) {
			t.Fatalf("notified %+v", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
}

// BenchmarkNoteAppended is the cost the apply path pays per WAL record.
func BenchmarkNoteAppended(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	stop := s.OnWrite(0, func(string, int64, int64) {})
	defer stop()
	es := make([]chunk.Entry, 1000)
	for i := range es {
		es[i].Timestamp = int64(i)
	}
	streams := []Stream{{Entries: es}}
	for b.Loop() {
		s.noteAppended("t", streams)
	}
}

// TestOnWriteFromWritePaths checks that every way entries become visible,
// or stop being visible, is reported: pushes (Append), agent chunks
// (PutChunk), deletions and retention.
func TestOnWriteFromWritePaths(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Retention: 48 * time.Hour})
	defer closeTest(t, s)
	ctx := context.Background()
	got := make(chan noted, 64)
	stop := s.OnWrite(5*time.Millisecond, func(tenant string, lo, hi int64) { got <- noted{tenant, lo, hi} })
	defer stop()
	expect := func(what string, want noted) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case n := <-got:
				if n == want {
					return
				}
			case <-deadline:
				t.Fatalf("%s: no notification %+v", what, want)
			}
		}
	}
	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour).Truncate(24 * time.Hour).UnixNano()

	if err := s.Append(ctx, "t", []Stream{{Labels: labels.New("job", "push"), Entries: entries(old, 3, "old")}}); err != nil {
		t.Fatal(err)
	}
	expect("Append", noted{"t", old, old + 2*int64(time.Millisecond)})

	base := time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	data, meta, err := chunk.Encode(labels.New("job", "agent"), entries(base, 10, "agent"), chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutChunk(ctx, "u", data); err != nil {
		t.Fatal(err)
	}
	expect("PutChunk", noted{"u", meta.MinTime, meta.MaxTime})

	if n, err := s.DeleteStreams(ctx, "u", sel(t, "job", "agent")); err != nil || n != 1 {
		t.Fatalf("DeleteStreams: %d, %v", n, err)
	}
	expect("DeleteStreams", noted{"u", math.MinInt64, math.MaxInt64})

	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.applyRetention(now)
	day := old / dayNanos * dayNanos
	expect("retention", noted{"t", day, day + dayNanos - 1})
}
