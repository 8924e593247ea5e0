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
