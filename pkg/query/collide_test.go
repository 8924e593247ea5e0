package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

func TestSharedIn(t *testing.T) {
	for _, c := range []struct {
		lists [][]int64
		want  []int64
	}{
		{nil, nil},
		{[][]int64{{1, 2, 3}}, nil},
		{[][]int64{{1, 1, 2, 2}}, nil}, // repeats within one list are not shared
		{[][]int64{{1, 2, 3}, {3, 4}}, []int64{3}},
		{[][]int64{{1, 5, 5, 9}, {}, {5, 6, 9}, {0, 9, 10}}, []int64{5, 9}},
		{[][]int64{{2, 4, 6}, {1, 3, 5}}, nil},
		{[][]int64{{7, 7}, {7}, {7, 7, 7}}, []int64{7}},
	} {
		if got := sharedIn(c.lists); !slices.Equal(got, c.want) {
			t.Errorf("sharedIn(%v) = %v, want %v", c.lists, got, c.want)
		}
	}
	// Against brute force on random lists.
	r := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		var lists [][]int64
		holders := map[int64]map[int]bool{}
		for k := range 1 + r.IntN(6) {
			var l []int64
			for range r.IntN(40) {
				l = append(l, int64(r.IntN(60)))
			}
			slices.Sort(l)
			for _, v := range l {
				if holders[v] == nil {
					holders[v] = map[int]bool{}
				}
				holders[v][k] = true
			}
			lists = append(lists, l)
		}
		var want []int64
		for v, h := range holders {
			if len(h) > 1 {
				want = append(want, v)
			}
		}
		slices.Sort(want)
		if got := sharedIn(lists); !slices.Equal(got, want) {
			t.Fatalf("sharedIn(%v) = %v, want %v", lists, got, want)
		}
	}
}

// pushOverlapping appends pushes to random streams of st the way
// concurrent clients do: each push starts a little before the previous
// one ended, so chunks of a stream overlap in time, and after the tenth
// one push in five resends an earlier push whole. gen returns the entries
// for one point in time sec; seen, when not nil, is told of every push.
// A flush follows push 10 and every flushEvery-th after it; the last
// pushes stay in the heads.
func pushOverlapping(t *testing.T, st *store.Store, r *rand.Rand, streams []labels.Labels, pushes, flushEvery int, gen func(sec float64) []chunk.Entry, seen func(stream int, es []chunk.Entry)) {
	t.Helper()
	ctx := context.Background()
	var sent [][]chunk.Entry
	var sentStream []int
	for push := range pushes {
		si := r.IntN(len(streams))
		var es []chunk.Entry
		if push > 10 && r.IntN(5) == 0 {
			k := r.IntN(len(sent))
			es, si = slices.Clone(sent[k]), sentStream[k]
		} else {
			base := float64(push)*20 - float64(r.IntN(30))
			for i := range 40 + r.IntN(40) {
				es = append(es, gen(base+float64(i)*0.5)...)
			}
		}
		if seen != nil {
			seen(si, es)
		}
		sent, sentStream = append(sent, es), append(sentStream, si)
		if err := st.Append(ctx, "t", []store.Stream{{Labels: streams[si], Entries: es}}); err != nil {
			t.Fatal(err)
		}
		if push%flushEvery == 10 {
			if err := st.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDuplicatesAcrossOverlappingSources: pushes that arrive out of order
// (as from concurrent clients) leave chunks of one stream that overlap in
// time, and a client that resends after a lost acknowledgement stores
// entries twice, in another chunk or in the head. Whatever the layout,
// a metric query with a pipeline counts each distinct entry once per
// window, and entries that only share a timestamp (different lines) are
// all counted. It runs with the shared-timestamp pre-pass and with its
// bound forced to zero (every entry in the overlaps goes through the set).
func TestDuplicatesAcrossOverlappingSources(t *testing.T) {
	for _, bound := range []int{maxCollideTimestamps, 0} {
		t.Run(fmt.Sprintf("bound=%d", bound), func(t *testing.T) {
			defer func(old int) { maxCollideTimestamps = old }(maxCollideTimestamps)
			maxCollideTimestamps = bound
			st, err := store.Open(t.TempDir(), store.Options{TargetChunkSize: 16 << 10, Chunk: chunk.Options{BlockSize: 4 << 10}})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close(context.Background())
			r := rand.New(rand.NewPCG(9, 10))
			type key struct {
				stream int
				ts     int64
				line   string
			}
			distinct := map[key]bool{}
			streams := []labels.Labels{labels.New("job", "d", "host", "a"), labels.New("job", "d", "host", "b")}
			pushOverlapping(t, st, r, streams, 120, 30, func(sec float64) []chunk.Entry {
				line := fmt.Sprintf("GET /p/%d status=%d", r.IntN(50), 200+r.IntN(3))
				es := []chunk.Entry{entry(sec, line)}
				if r.IntN(8) == 0 { // same timestamp, another line
					es = append(es, entry(sec, line+" again"))
				}
				return es
			}, func(si int, es []chunk.Entry) {
				for _, e := range es {
					distinct[key{si, e.Timestamp, string(e.Line)}] = true
				}
			})
			eng := &Engine{Store: st}
			const step = 5 * time.Minute
			// A line filter every line passes (needles prune nothing), one
			// that passes a third of them (its blocks are chosen by their
			// filters, in the scan and in the pre-pass), and a parser with
			// no needle at all.
			for _, c := range []struct {
				query string
				keep  func(line string) bool
			}{
				{`sum by (host) (count_over_time({job="d"} |= "GET" [5m]))`, func(string) bool { return true }},
				{`sum by (host) (count_over_time({job="d"} |= "status=201" [5m]))`, func(l string) bool { return strings.Contains(l, "status=201") }},
				{`sum by (host) (count_over_time({job="d"} | logfmt [5m]))`, func(string) bool { return true }},
			} {
				res := rangeQuery(t, eng, c.query, 0, 2700, step)
				want := map[string]map[int64]float64{}
				for k := range distinct {
					if !c.keep(k.line) {
						continue
					}
					host := streams[k.stream].Get("host")
					if want[host] == nil {
						want[host] = map[int64]float64{}
					}
					// The window (t-5m, t] of the first step t at or after ts.
					off := time.Duration(k.ts - at(0).UnixNano())
					n := (off + step - 1) / step
					want[host][ms(0)+int64(n*step/time.Millisecond)]++
				}
				if len(res.Matrix) != len(streams) {
					t.Fatalf("%s: %d series, want %d", c.query, len(res.Matrix), len(streams))
				}
				for _, s := range res.Matrix {
					host := s.Labels.Get("host")
					got := map[int64]float64{}
					for _, p := range s.Points {
						got[p.T] = p.V
					}
					for ts, v := range want[host] {
						if got[ts] != v {
							t.Errorf("%s: host %s at %d: %v, want %v", c.query, host, ts, got[ts], v)
						}
					}
					for ts, v := range got {
						if want[host][ts] != v {
							t.Errorf("%s: host %s at %d: %v, want %v", c.query, host, ts, v, want[host][ts])
						}
					}
				}
				if res.Stats.Duplicates == 0 {
					t.Fatalf("%s: no duplicates dropped: the resends test nothing", c.query)
				}
			}
		})
	}
}

func TestAppendInSpans(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 3))
	for range 500 {
		var spans []tspan
		for lo := int64(r.IntN(5)); lo < 100 && len(spans) < 6; {
			hi := lo + int64(r.IntN(10))
			spans = append(spans, tspan{lo, hi})
			lo = hi + 1 + int64(r.IntN(15))
		}
		var ts []int64
		for range r.IntN(50) {
			ts = append(ts, int64(r.IntN(120)))
		}
		slices.Sort(ts)
		var want []int64
		for _, v := range ts {
			if inSpans(spans, v) {
				want = append(want, v)
			}
		}
		if got := appendInSpans(nil, ts, spans); !slices.Equal(got, want) {
			t.Fatalf("appendInSpans(%v, %v) = %v, want %v", ts, spans, got, want)
		}
	}
}

// TestSharedTimestampsRemembered: the pre-pass's answer is remembered by
// the IDs of a stream's sealed chunks. A second query over the same chunks
// takes it from the memo and counts the same; a resend stored in a new
// chunk changes the IDs, so the remembered answer cannot hide the new
// duplicates.
func TestSharedTimestampsRemembered(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{TargetChunkSize: 16 << 10, Chunk: chunk.Options{BlockSize: 4 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	r := rand.New(rand.NewPCG(11, 12))
	streams := []labels.Labels{labels.New("job", "m", "host", "a"), labels.New("job", "m", "host", "b")}
	var pushes [][]chunk.Entry // of stream a
	stored := map[int64]int{}  // times each timestamp of stream a was pushed
	pushOverlapping(t, st, r, streams, 80, 20, func(sec float64) []chunk.Entry {
		return []chunk.Entry{entry(sec, fmt.Sprintf("level=info n=%d", r.Uint64()))}
	}, func(si int, es []chunk.Entry) {
		if si == 0 {
			pushes = append(pushes, slices.Clone(es))
			for _, e := range es {
				stored[e.Timestamp]++
			}
		}
	})
	// A push stored once: its resend makes timestamps shared that were
	// not, which a stale answer would not know of.
	var first []chunk.Entry
	for _, es := range pushes {
		if !slices.ContainsFunc(es, func(e chunk.Entry) bool { return stored[e.Timestamp] > 1 }) {
			first = es
			break
		}
	}
	if first == nil {
		t.Fatal("every push of stream a was resent")
	}
	if err := st.Flush(ctx); err != nil { // no head: every stream can be remembered
		t.Fatal(err)
	}
	eng := &Engine{Store: st}
	const q = `sum by (host) (count_over_time({job="m"} | logfmt [5m]))`
	total := func() (float64, int64) {
		res := rangeQuery(t, eng, q, 0, 2000, 5*time.Minute)
		sum := 0.0
		for _, s := range res.Matrix {
			for _, p := range s.Points {
				sum += p.V
			}
		}
		return sum, res.Stats.Duplicates
	}
	want, dups := total()
	if dups == 0 {
		t.Fatal("no duplicates dropped: the resends test nothing")
	}
	hits := sharedMemoHits.Get()
	if got, d := total(); got != want || d != dups {
		t.Fatalf("from the memo: %v entries, %d duplicates; first time %v, %d", got, d, want, dups)
	}
	if sharedMemoHits.Get() == hits {
		t.Fatal("the second query did not take the shared timestamps from the memo")
	}
	// A resend of the first push, sealed into a chunk of its own.
	if err := st.Append(ctx, "t", []store.Stream{{Labels: streams[0], Entries: first}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, d := total()
	if got != want {
		t.Fatalf("after a resend: %v entries, want %v (the resent ones counted again)", got, want)
	}
	if d <= dups {
		t.Fatalf("after a resend of %d entries: %d duplicates dropped, want more than %d", len(first), d, dups)
	}
}
