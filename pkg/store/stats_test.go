package store

import (
	"context"
	"testing"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// TestVisitStatsMatchesTheData checks the counts against the entries
// themselves, for data in heads and, after a flush, in chunks, and that a
// range clips heads exactly while whole chunks are reported.
func TestVisitStatsMatchesTheData(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer closeTest(t, s)
	ctx := context.Background()
	var es []chunk.Entry
	for i := range 100 {
		es = append(es, chunk.Entry{Timestamp: int64(1000 + i), Line: make([]byte, i%7+1)})
	}
	wantBytes := int64(0)
	for _, e := range es {
		wantBytes += int64(len(e.Line))
	}
	if err := s.Append(ctx, "t", []Stream{
		{Labels: labels.New("app", "a"), Entries: es},
		{Labels: labels.New("app", "b"), Entries: es[:10]},
	}); err != nil {
		t.Fatal(err)
	}

	visit := func(ms []*labels.Matcher, from, through int64) map[string]StreamStats {
		out := map[string]StreamStats{}
		s.VisitStats("t", ms, from, through, func(ss *StreamStats) {
			var n, b int64
			ss.EachHeadEntry(func(ts int64, size int) {
				if ts < from || ts >= through {
					t.Errorf("head entry at %d outside [%d, %d)", ts, from, through)
				}
				n++
				b += int64(size)
			})
			if n != ss.HeadEntries || b != ss.HeadBytes {
				t.Errorf("EachHeadEntry saw %d entries/%d bytes, counts say %d/%d", n, b, ss.HeadEntries, ss.HeadBytes)
			}
			c := *ss
			c.Chunks = append([]ChunkRef(nil), ss.Chunks...)
			out[ss.Labels.Get("app")] = c
		})
		return out
	}

	got := visit(sel(t, "app", "a"), 0, 1<<62)
	if a := got["a"]; len(got) != 1 || a.HeadEntries != 100 || a.HeadBytes != wantBytes || a.HeadChunks != 1 || len(a.Chunks) != 0 {
		t.Fatalf("heads: %+v", got)
	}
	got = visit(nil, 1050, 1060)
	if a := got["a"]; len(got) != 1 || a.HeadEntries != 10 {
		t.Fatalf("clipped range: %+v", got)
	}
	if got := visit(nil, 5000, 6000); len(got) != 0 {
		t.Fatalf("empty range: %+v", got)
	}
	if got := visit(nil, 0, 1<<62); len(got) != 2 || got["b"].HeadEntries != 10 {
		t.Fatalf("all streams: %+v", got)
	}
	if n := 0; func() bool { s.VisitStats("other", nil, 0, 1<<62, func(*StreamStats) { n++ }); return n != 0 }() {
		t.Fatal("another tenant sees data")
	}

	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got = visit(sel(t, "app", "a"), 1050, 1060)
	a := got["a"]
	if a.HeadEntries != 0 || len(a.Chunks) != 1 {
		t.Fatalf("after flush: %+v", a)
	}
	if c := a.Chunks[0]; c.Entries != 100 || c.RawBytes != wantBytes || c.MinTime != 1000 || c.MaxTime != 1099 {
		t.Fatalf("chunk ref: %+v", c)
	}
}
