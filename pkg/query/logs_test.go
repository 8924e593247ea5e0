package query

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

// fixture is a store with known content and the brute-force view of it.
type fixture struct {
	eng     *Engine
	entries map[string][]chunk.Entry // by stream, in push order
	base    int64
}

func newFixture(t *testing.T, flush bool) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{TargetChunkSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	f := &fixture{eng: &Engine{Store: st}, entries: map[string][]chunk.Entry{}, base: time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "beta", "gamma", "connection refused", "timeout", "GET /index.html", "ERROR", "Error", "user=bob", "trace=abc123"}
	for s := 0; s < 5; s++ {
		ls := labels.New("job", "test", "stream", fmt.Sprint(s))
		var es []chunk.Entry
		for i := 0; i < 3000; i++ {
			ts := f.base + int64(i)*int64(time.Second) + int64(s)*int64(time.Millisecond)
			if i%7 == 3 {
				ts -= int64(90 * time.Second) // out of order
			}
			line := fmt.Sprintf("s%d i%d %s %s", s, i, words[r.IntN(len(words))], words[r.IntN(len(words))])
			if i%500 == 0 {
				line = "" // empty lines are entries too
			}
			es = append(es, chunk.Entry{Timestamp: ts, Line: []byte(line)})
		}
		for i := 0; i < len(es); i += 250 {
			if err := st.Append(context.Background(), "t", []store.Stream{{Labels: ls, Entries: es[i:min(i+250, len(es))]}}); err != nil {
				t.Fatal(err)
			}
		}
		f.entries[ls.String()] = es
	}
	if flush {
		if err := st.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

type keyed struct {
	stream string
	ts     int64
	line   string
}

// want computes the expected answer by brute force.
func (f *fixture) want(keep func([]byte) bool, start, end int64, limit int, dir Direction) []keyed {
	var all []keyed
	for s, es := range f.entries {
		for _, e := range es {
			if e.Timestamp >= start && e.Timestamp < end && (keep == nil || keep(e.Line)) {
				all = append(all, keyed{s, e.Timestamp, string(e.Line)})
			}
		}
	}
	slices.SortStableFunc(all, func(a, b keyed) int {
		if dir == Forward {
			return cmpInt64(a.ts, b.ts)
		}
		return cmpInt64(b.ts, a.ts)
	})
	if len(all) > limit {
		// Ties at the cut may be broken either way; keep every entry at
		// the boundary timestamp and let the caller compare counts.
		cut := all[limit-1].ts
		n := limit
		for n < len(all) && all[n].ts == cut {
			n++
		}
		all = all[:n]
	}
	return all
}

func flatten(streams []StreamResult, dir Direction) []keyed {
	var out []keyed
	for _, s := range streams {
		for i, e := range s.Entries {
			if i > 0 {
				prev := s.Entries[i-1].Timestamp
				if (dir == Forward && prev > e.Timestamp) || (dir == Backward && prev < e.Timestamp) {
					panic(fmt.Sprintf("stream %s out of order at %d", s.Labels, i))
				}
			}
			out = append(out, keyed{s.Labels.String(), e.Timestamp, string(e.Line)})
		}
	}
	return out
}

func TestLogsMatchBruteForce(t *testing.T) {
	for _, flush := range []bool{false, true} {
		f := newFixture(t, flush)
		cases := []struct {
			query string
			keep  func([]byte) bool
		}{
			{`{job="test"}`, nil},
			{`{job="test"} |= "refused"`, func(l []byte) bool { return bytes.Contains(l, []byte("refused")) }},
			{`{job="test"} |= "onnection refus"`, func(l []byte) bool { return bytes.Contains(l, []byte("onnection refus")) }},
			{`{job="test"} |~ "(?i)error"`, regexp.MustCompile(`(?i)error`).Match},
			{`{job="test"} != "alpha" |= "beta"`, func(l []byte) bool { return !bytes.Contains(l, []byte("alpha")) && bytes.Contains(l, []byte("beta")) }},
			{`{job="test"} |= "nothing like this"`, func(l []byte) bool { return false }},
			{`{job="test"} |= "timeout" or "trace="`, func(l []byte) bool {
				return bytes.Contains(l, []byte("timeout")) || bytes.Contains(l, []byte("trace="))
			}},
		}
		for _, tc := range cases {
			for _, dir := range []Direction{Forward, Backward} {
				for _, limit := range []int{1, 37, 1000, 100000} {
					start := f.base + int64(200*time.Second)
					end := f.base + int64(2500*time.Second)
					res, err := f.eng.Exec(context.Background(), Params{Tenant: "t", Query: tc.query, Start: time.Unix(0, start), End: time.Unix(0, end), Limit: limit, Direction: dir})
					if err != nil {
						t.Fatalf("%s: %v", tc.query, err)
					}
					got := flatten(res.Streams, dir)
					want := f.want(tc.keep, start, end, limit, dir)
					wantN := min(limit, len(want))
					if len(got) != wantN {
						t.Fatalf("flush=%v %s dir=%v limit=%d: %d entries, want %d", flush, tc.query, dir, limit, len(got), wantN)
					}
					inWant := map[keyed]bool{}
					for _, w := range want {
						inWant[w] = true
					}
					for _, g := range got {
						if !inWant[g] {
							t.Fatalf("flush=%v %s dir=%v limit=%d: unexpected entry %+v", flush, tc.query, dir, limit, g)
						}
					}
				}
			}
		}
	}
}

func TestNeedlePrunesChunksAndLimitStopsEarly(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	all := Params{Tenant: "t", Start: time.Unix(0, f.base-int64(time.Hour)), End: time.Unix(0, f.base+int64(10*time.Hour)), Limit: 10, Direction: Backward}
	p := all
	p.Query = `{job="test"} |= "zzzz-absent-token"`
	res, err := f.eng.Exec(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.ChunksRef == 0 || res.Stats.ChunksPruned != res.Stats.ChunksRef || res.Stats.DecompressedLines != 0 {
		t.Fatalf("absent needle: %+v; want every chunk pruned and nothing decoded", res.Stats)
	}
	p.Query = `{job="test"}`
	res, err = f.eng.Exec(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.ChunksDecoded >= res.Stats.ChunksRef/2 {
		t.Fatalf("limit 10 decoded %d of %d chunks; the scan should stop early", res.Stats.ChunksDecoded, res.Stats.ChunksRef)
	}
}

func TestDuplicatesAreDroppedAndTenantsSeparate(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	eng := &Engine{Store: st}
	ctx := context.Background()
	ls := labels.New("job", "dup")
	es := []chunk.Entry{{Timestamp: 10, Line: []byte("same")}, {Timestamp: 10, Line: []byte("other")}, {Timestamp: 11, Line: []byte("same")}}
	for i := 0; i < 3; i++ { // a client resending after lost acknowledgements
		if err := st.Append(ctx, "t", []store.Stream{{Labels: ls, Entries: es}}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := st.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := eng.Exec(ctx, Params{Tenant: "t", Query: `{job="dup"}`, Start: time.Unix(0, 0), End: time.Unix(0, 100), Limit: 100, Direction: Forward})
	if err != nil {
		t.Fatal(err)
	}
	got := flatten(res.Streams, Forward)
	if len(got) != 3 || res.Stats.Duplicates != 6 {
		t.Fatalf("got %v with %d duplicates; want the 3 distinct entries and 6 duplicates dropped", got, res.Stats.Duplicates)
	}
	res, err = eng.Exec(ctx, Params{Tenant: "other", Query: `{job="dup"}`, Start: time.Unix(0, 0), End: time.Unix(0, 100), Limit: 100})
	if err != nil || len(res.Streams) != 0 {
		t.Fatalf("another tenant: %v %v", res, err)
	}
}

func TestQueryErrors(t *testing.T) {
	f := newFixture(t, false)
	for _, q := range []string{`{job="test"`, `{job="test"} |~ "[z-a]"`, `{job="test"} |= "a" [5m]`} {
		_, err := f.eng.Exec(context.Background(), Params{Tenant: "t", Query: q, Start: time.Unix(0, 0), End: time.Now(), Limit: 10})
		if err == nil {
			t.Errorf("%s: no error", q)
		}
	}
}

func TestCanceledQueryStops(t *testing.T) {
	f := newFixture(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.eng.Exec(ctx, Params{Tenant: "t", Query: `{job="test"} |= "x"`, Start: time.Unix(0, 0), End: time.Unix(0, f.base+int64(10*time.Hour)), Limit: 10})
	if err == nil {
		t.Fatal("a canceled query returned no error")
	}
}

// TestSearchDoesNotMatchAcrossLines checks the block search: lines lie back
// to back in a decoded block, so a needle can occur across a line boundary,
// which must not count as a match of either line.
func TestSearchDoesNotMatchAcrossLines(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	es := []chunk.Entry{
		{Timestamp: 1, Line: []byte("ends with abc")},
		{Timestamp: 2, Line: []byte("def starts this one")},
		{Timestamp: 3, Line: []byte("")},
		{Timestamp: 4, Line: []byte("abcdef whole")},
		{Timestamp: 5, Line: []byte("abc")},
		{Timestamp: 6, Line: []byte("def")},
	}
	if err := st.Append(ctx, "t", []store.Stream{{Labels: labels.New("job", "x"), Entries: es}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	eng := &Engine{Store: st}
	for _, dir := range []Direction{Forward, Backward} {
		res, err := eng.Exec(ctx, Params{Tenant: "t", Query: `{job="x"} |= "cdef"`, Start: time.Unix(0, 0), End: time.Unix(0, 100), Limit: 10, Direction: dir})
		if err != nil {
			t.Fatal(err)
		}
		got := flatten(res.Streams, dir)
		if len(got) != 1 || got[0].line != "abcdef whole" {
			t.Fatalf("dir %v: %v", dir, got)
		}
	}
}

// TestPipelineStagesShapeTheResult runs parsers, label filters and
// formatting through the engine: parsed labels arrive apart from the
// stream labels, label filters see them, line_format rewrites the line.
func TestPipelineStagesShapeTheResult(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	es := []chunk.Entry{
		{Timestamp: 1, Line: []byte(`{"level":"error","msg":"disk full","user":"ann"}`), Metadata: labels.New("trace_id", "t1")},
		{Timestamp: 2, Line: []byte(`{"level":"info","msg":"ok","user":"bob"}`)},
		{Timestamp: 3, Line: []byte(`{"level":"error","msg":"timeout","user":"bob"}`)},
		{Timestamp: 4, Line: []byte(`not json at all`)},
	}
	if err := st.Append(ctx, "t", []store.Stream{{Labels: labels.New("job", "app"), Entries: es}}); err != nil {
		t.Fatal(err)
	}
	eng := &Engine{Store: st}
	for _, flush := range []bool{false, true} {
		if flush {
			if err := st.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		res, err := eng.Exec(ctx, Params{Tenant: "t", Query: `{job="app"} | json | level="error" | line_format "{{.user}}: {{.msg}}"`, Start: time.Unix(0, 0), End: time.Unix(0, 10), Limit: 10, Direction: Forward})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Streams) != 1 || res.Streams[0].Labels.String() != `{job="app"}` {
			t.Fatalf("streams: %+v", res.Streams)
		}
		got := res.Streams[0].Entries
		if len(got) != 2 || string(got[0].Line) != "ann: disk full" || string(got[1].Line) != "bob: timeout" {
			t.Fatalf("flush=%v entries: %+v", flush, got)
		}
		if got[0].Parsed.Get("user") != "ann" || got[0].Parsed.Get("level") != "error" || got[0].Metadata.Get("trace_id") != "t1" {
			t.Fatalf("labels of the first entry: parsed %v metadata %v", got[0].Parsed, got[0].Metadata)
		}
		// Entries that fail to parse carry __error__ and can be dropped.
		res, err = eng.Exec(ctx, Params{Tenant: "t", Query: `{job="app"} | json | __error__ != ""`, Start: time.Unix(0, 0), End: time.Unix(0, 10), Limit: 10, Direction: Forward})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(flatten(res.Streams, Forward)); n != 1 {
			t.Fatalf("flush=%v: %d entries with __error__, want 1", flush, n)
		}
	}
}
