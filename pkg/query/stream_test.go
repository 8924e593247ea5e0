package query

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// collectBatches runs StreamLogs and keeps every batch.
func collectBatches(t *testing.T, eng *Engine, req LogRequest) ([]*Batch, *LogResult) {
	t.Helper()
	var batches []*Batch
	res, err := eng.StreamLogs(context.Background(), req, func(b *Batch) error {
		batches = append(batches, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return batches, res
}

// checkBatches checks what every stream must hold: batches in the
// query's direction, each strictly after the one before, progress that
// only grows, and one last batch marked done. It returns the entries in
// the order they were sent.
func checkBatches(t *testing.T, what string, batches []*Batch, dir Direction) []keyed {
	t.Helper()
	if len(batches) == 0 || !batches[len(batches)-1].Progress.Done {
		t.Fatalf("%s: %d batches, the last not done", what, len(batches))
	}
	var sent []keyed
	var prev Progress
	// edge is the last timestamp of the batches so far, in the direction.
	var edge int64
	for i, b := range batches {
		p := b.Progress
		if p.Done != (i == len(batches)-1) {
			t.Fatalf("%s: batch %d done=%v", what, i, p.Done)
		}
		if p.SourcesDone < prev.SourcesDone || p.Stats.DecompressedBytes < prev.Stats.DecompressedBytes ||
			p.Stats.PostFilterLines < prev.Stats.PostFilterLines || p.ChunksDone < prev.ChunksDone ||
			p.CoveredTo-p.CoveredFrom < prev.CoveredTo-prev.CoveredFrom {
			t.Fatalf("%s: progress went back in batch %d: %+v after %+v", what, i, p, prev)
		}
		es := flatten(b.Streams, dir) // panics when a stream is out of order
		if int64(len(sent)+len(es)) != p.Stats.EntriesReturned {
			t.Fatalf("%s: batch %d says %d entries sent, %d were", what, i, p.Stats.EntriesReturned, len(sent)+len(es))
		}
		for _, e := range es {
			if len(sent) > 0 && (dir == Backward && e.ts >= edge || dir == Forward && e.ts <= edge) {
				t.Fatalf("%s: batch %d has %+v, not after %d of an earlier batch", what, i, e, edge)
			}
		}
		for _, e := range es {
			if len(sent) == 0 || dir == Backward && e.ts < edge || dir == Forward && e.ts > edge {
				edge = e.ts
			}
			sent = append(sent, e)
		}
		prev = p
	}
	last := batches[len(batches)-1].Progress
	if last.SourcesDone+last.SourcesSkipped != last.SourcesTotal {
		t.Fatalf("%s: last batch %+v: sources neither done nor skipped", what, last)
	}
	return sent
}

func TestStreamLogsEqualsLogs(t *testing.T) {
	// A batch at every step of the frontier, to check each cut.
	old := streamInterval
	streamInterval = 0
	defer func() { streamInterval = old }()
	multi := 0
	for _, flush := range []bool{false, true} {
		f := newFixture(t, flush)
		cases := []struct {
			query string
			keep  func([]byte) bool
		}{
			{`{job="test"}`, nil},
			{`{job="test"} |= "refused"`, func(l []byte) bool { return bytes.Contains(l, []byte("refused")) }},
			{`{job="test"} |~ "(?i)error"`, regexp.MustCompile(`(?i)error`).Match},
			{`{job="test"} |= "nothing like this"`, func(l []byte) bool { return false }},
			{`{job="test", stream=~"[13]"} |= "beta" | line_format "{{.stream}}: {{__line__}}"`, nil},
		}
		for _, tc := range cases {
			for _, dir := range []Direction{Forward, Backward} {
				for _, limit := range []int{1, 37, 1000, 100000} {
					for _, par := range []int{1, 3} {
						what := fmt.Sprintf("flush=%v %s dir=%v limit=%d par=%d", flush, tc.query, dir, limit, par)
						start := f.base + int64(200*time.Second)
						end := f.base + int64(2500*time.Second)
						eng := &Engine{Store: f.eng.Store, Parallelism: par}
						p := Params{Tenant: "t", Query: tc.query, Start: time.Unix(0, start), End: time.Unix(0, end), Limit: limit, Direction: dir}
						want, err := eng.Exec(context.Background(), p)
						if err != nil {
							t.Fatal(err)
						}
						// With one worker, each source waits until the batch
						// of the one before is out, so that every step of the
						// frontier is cut, whatever the scheduler does.
						var seen atomic.Int64
						notify := make(chan struct{}, 1)
						ctx := context.Background()
						if par == 1 {
							ctx = WithSourceHook(ctx, func(i, _ int) {
								for seen.Load() < int64(i) {
									select {
									case <-notify:
									case <-time.After(10 * time.Second):
										t.Errorf("%s: no batch after source %d", what, i-1)
										return
									}
								}
							})
						}
						var batches []*Batch
						res, err := eng.StreamQuery(ctx, p, func(b *Batch) error {
							batches = append(batches, b)
							seen.Store(int64(b.Progress.SourcesDone))
							select {
							case notify <- struct{}{}:
							default:
							}
							return nil
						})
						if err != nil {
							t.Fatalf("%s: %v", what, err)
						}
						sent := checkBatches(t, what, batches, dir)
						if par == 1 && withEntries(batches) > 1 {
							multi++
						}
						got := flatten(res.Streams, dir)
						wantEs := flatten(want.Streams, dir)
						if len(sent) != len(got) || len(got) != len(wantEs) {
							t.Fatalf("%s: %d sent, %d returned, Logs %d", what, len(sent), len(got), len(wantEs))
						}
						// Which of several entries at the limit's boundary
						// timestamp are kept is not fixed; all else must be equal.
						cut := func(es []keyed) (int64, bool) {
							if len(es) < limit {
								return 0, false
							}
							w := es[0].ts
							for _, e := range es {
								if dir == Forward && e.ts > w || dir == Backward && e.ts < w {
									w = e.ts
								}
							}
							return w, true
						}
						boundary, limited := cut(wantEs)
						strict := func(es []keyed) []keyed {
							var out []keyed
							for _, e := range es {
								if !limited || e.ts != boundary {
									out = append(out, e)
								}
							}
							slices.SortFunc(out, func(a, b keyed) int {
								return cmp.Or(cmpInt64(a.ts, b.ts), strings.Compare(a.stream, b.stream), strings.Compare(a.line, b.line))
							})
							return out
						}
						if !slices.Equal(strict(sent), strict(wantEs)) || !slices.Equal(strict(got), strict(wantEs)) {
							t.Fatalf("%s: the streamed answer differs from Logs'", what)
						}
						if tc.keep != nil {
							all := f.want(tc.keep, start, end, limit, dir)
							in := map[keyed]bool{}
							for _, w := range all {
								in[w] = true
							}
							for _, g := range sent {
								if !in[g] {
									t.Fatalf("%s: %+v does not match", what, g)
								}
							}
						}
						last := batches[len(batches)-1].Progress
						// Without a flush the store cuts chunks in the background,
						// so the two runs may see different chunks.
						if flush && last.Stats.ChunksRef != want.Stats.ChunksRef || res.Stats.EntriesReturned != int64(len(got)) ||
							last.Stats.Streams != int64(len(res.Streams)) || last.LimitReached != (len(got) == limit) {
							t.Fatalf("%s: final progress %+v, Logs' stats %+v", what, last, want.Stats)
						}
						if last.LimitReached {
							if dir == Backward && last.CoveredFrom != boundary || dir == Forward && last.CoveredTo != boundary+1 {
								t.Fatalf("%s: limited answer covers [%d, %d), boundary %d", what, last.CoveredFrom, last.CoveredTo, boundary)
							}
						} else if last.CoveredFrom != start || last.CoveredTo != end {
							t.Fatalf("%s: final batch covers [%d, %d), want the whole range", what, last.CoveredFrom, last.CoveredTo)
						}
					}
				}
			}
		}
	}
	// Most cases must have been cut into several batches with entries,
	// or the order checks above checked little.
	if multi < 20 {
		t.Fatalf("only %d cases streamed more than one batch with entries", multi)
	}
}

func withEntries(bs []*Batch) int {
	n := 0
	for _, b := range bs {
		if len(b.Streams) > 0 {
			n++
		}
	}
	return n
}

// TestStreamLogsSendsBeforeScanEnds proves the order, not the timing:
// the worker that is about to scan the last source waits until a batch
// with entries has reached fn. A scan that sent nothing before it ended
// would never get past that source, and the wait would time out.
func TestStreamLogsSendsBeforeScanEnds(t *testing.T) {
	f := newFixture(t, true)
	for _, dir := range []Direction{Backward, Forward} {
		for _, par := range []int{1, 2} {
			req := LogRequest{Tenant: "t", Start: f.base - int64(time.Hour), End: f.base + int64(2*time.Hour), Limit: 100000, Direction: dir}
			var mu sync.Mutex
			var events []string
			firstLines := make(chan struct{})
			var once sync.Once
			total := countSources(f.eng, req)
			hook := func(i, n int) {
				if i == n-1 {
					select {
					case <-firstLines:
					case <-time.After(20 * time.Second):
						mu.Lock()
						events = append(events, "gate timed out")
						mu.Unlock()
					}
				}
				mu.Lock()
				events = append(events, fmt.Sprintf("scan %d", i))
				mu.Unlock()
			}
			eng := &Engine{Store: f.eng.Store, Parallelism: par}
			var batches []*Batch
			_, err := eng.StreamLogs(WithSourceHook(context.Background(), hook), req, func(b *Batch) error {
				mu.Lock()
				defer mu.Unlock()
				batches = append(batches, b)
				if len(b.Streams) > 0 {
					events = append(events, fmt.Sprintf("batch with %d sources done", b.Progress.SourcesDone))
					once.Do(func() { close(firstLines) })
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkBatches(t, "order", batches, dir)
			first, lastScan := -1, -1
			for i, e := range events {
				switch {
				case e == "gate timed out":
					t.Fatalf("dir=%v par=%d: the scan reached its last source without sending anything: %v", dir, par, events)
				case e == fmt.Sprintf("scan %d", total-1):
					lastScan = i
				case first < 0 && len(e) > 5 && e[:5] == "batch":
					first = i
				}
			}
			if total < 10 || first < 0 || lastScan < first || batches[0].Progress.SourcesDone >= total {
				t.Fatalf("dir=%v par=%d: %d sources; events %v", dir, par, total, events)
			}
		}
	}
}

// countSources is the number of sources StreamLogs scans for req.
func countSources(eng *Engine, req LogRequest) int {
	n := 0
	for _, sd := range eng.Store.Select(req.Tenant, req.Matchers, req.Start, req.End) {
		n += len(sd.Chunks)
		if len(sd.Head) > 0 {
			n++
		}
	}
	return n
}

// TestStreamLogsStopsOnCancel: after the first batch the caller cancels;
// workers already past their source check stop at the next block, none
// takes another source, and the error is the context's.
func TestStreamLogsStopsOnCancel(t *testing.T) {
	f := newFixture(t, true)
	req := LogRequest{Tenant: "t", Start: f.base - int64(time.Hour), End: f.base + int64(2*time.Hour), Limit: 100000}
	total := countSources(f.eng, req)
	const par = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	canceled := make(chan struct{})
	var scans atomic.Int32
	hook := func(i, n int) {
		// Past the first sources, workers wait for the cancellation, so
		// that the scan cannot end before it. The wait goes by source
		// index, not by arrival: a worker slow to reach the hook for
		// source 0 must still scan it, or no batch can ever be cut.
		scans.Add(1)
		if i >= 3 {
			select {
			case <-canceled:
			case <-time.After(20 * time.Second):
			}
		}
	}
	eng := &Engine{Store: f.eng.Store, Parallelism: par}
	batches := 0
	_, err := eng.StreamLogs(WithSourceHook(ctx, hook), req, func(b *Batch) error {
		batches++
		if len(b.Streams) > 0 {
			cancel()
			close(canceled)
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if n := int(scans.Load()); n > 3+par || n >= total || batches != 1 {
		t.Fatalf("%d of %d sources started after %d batches; the scan did not stop", n, total, batches)
	}

	// An error from the callback stops the scan the same way.
	gone := errors.New("client gone")
	_, err = eng.StreamLogs(context.Background(), req, func(b *Batch) error { return gone })
	if !errors.Is(err, gone) {
		t.Fatalf("err %v, want the callback's", err)
	}
}

func TestStreamQueryRefusesMetricQueriesAndEmptyRanges(t *testing.T) {
	f := newFixture(t, false)
	_, err := f.eng.StreamQuery(context.Background(), Params{Tenant: "t", Query: `count_over_time({job="test"}[1m])`, Start: time.Unix(0, 0), End: time.Now(), Limit: 10}, func(*Batch) error { return nil })
	var qe *Error
	if !errors.As(err, &qe) {
		t.Fatalf("metric query: %v", err)
	}
	if _, err := f.eng.StreamQuery(context.Background(), Params{Tenant: "t", Query: `{job="test"`, Limit: 10}, func(*Batch) error { return nil }); err == nil {
		t.Fatal("syntax error accepted")
	}
	var got []*Batch
	res, err := f.eng.StreamQuery(context.Background(), Params{Tenant: "t", Query: `{job="test"}`, Start: time.Unix(0, f.base), End: time.Unix(0, f.base), Limit: 10}, func(b *Batch) error {
		got = append(got, b)
		return nil
	})
	if err != nil || len(got) != 1 || !got[0].Progress.Done || len(res.Streams) != 0 {
		t.Fatalf("empty range: %v, %d batches", err, len(got))
	}
	if _, err := f.eng.StreamLogs(context.Background(), LogRequest{Tenant: "t", End: 1}, func(*Batch) error { return nil }); err == nil {
		t.Fatal("limit 0 accepted")
	}
}
