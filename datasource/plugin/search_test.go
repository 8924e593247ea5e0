package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/querymodel"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/search"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// logsiftServer is a real store behind the server's query API and its
// streaming search, for tenant team-a: three streams of 2,000 entries,
// one every 3 seconds from qFrom, in chunks of 200 entries. hook, when
// set, reaches the engine of every streaming search. paths counts the
// requests by path.
type logsiftServer struct {
	url   string
	eng   *query.Engine
	mu    sync.Mutex
	paths map[string]int
}

func (s *logsiftServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[path]
}

func newLogsiftServer(t *testing.T, hook func(i, n int)) *logsiftServer {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{TargetChunkSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	for s, app := range []string{"api", "db", "web"} {
		var es []chunk.Entry
		for i := 0; i < 2000; i++ {
			level := "info"
			if i%4 == 0 {
				level = "error"
			}
			es = append(es, chunk.Entry{Timestamp: qFrom.Add(time.Duration(i)*3*time.Second + time.Duration(s)*time.Millisecond).UnixNano(),
				Line: []byte(fmt.Sprintf("%s level=%s i=%d", app, level, i))})
		}
		// Heads are cut at append boundaries: 200 entries make a chunk.
		for i := 0; i < len(es); i += 200 {
			if err := st.Append(context.Background(), "team-a", []store.Stream{{Labels: labels.New("job", "app", "service", app), Entries: es[i : i+200]}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	eng := &query.Engine{Store: st}
	resolver := tenant.Resolver{}
	mux := http.NewServeMux()
	(&lokiapi.API{Engine: eng, Store: st, Limits: lokiapi.DefaultLimits(), Tenants: resolver}).Register(mux)
	(&search.HTTP{Service: &search.Service{Engine: eng, Store: st, Limits: lokiapi.DefaultLimits(), Tenants: resolver}}).Register(mux)
	ls := &logsiftServer{eng: eng, paths: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls.mu.Lock()
		ls.paths[r.URL.Path]++
		ls.mu.Unlock()
		if hook != nil {
			r = r.WithContext(query.WithSourceHook(r.Context(), hook))
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ls.url = srv.URL
	return ls
}

// searchRequest builds a search channel's request over the whole data.
func searchRequest(t *testing.T, in *Instance, expr string, maxLines int, dir string) querymodel.Request {
	t.Helper()
	js := fmt.Sprintf(`{"refId":"A","expr":%q,"maxLines":%d,"direction":%q,"from":%d,"to":%d}`, expr, maxLines, dir, qFrom.UnixMilli(), qFrom.Add(2*time.Hour).UnixMilli())
	_, r, err := in.streamRequest("search/x", json.RawMessage(js))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// brute is the engine's answer: the bodies query_range would give.
func (s *logsiftServer) brute(t *testing.T, expr string, limit int, dir query.Direction) []string {
	t.Helper()
	res, err := s.eng.Exec(context.Background(), query.Params{Tenant: "team-a", Query: expr, Start: qFrom, End: qFrom.Add(2 * time.Hour), Limit: limit, Direction: dir})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, st := range res.Streams {
		for _, e := range st.Entries {
			out = append(out, string(e.Line))
		}
	}
	slices.Sort(out)
	return out
}

func TestSearchUsesTheServersStream(t *testing.T) {
	srv := newLogsiftServer(t, nil)
	in := testInstance(t, srv.url)
	for _, tc := range []struct {
		expr     string
		maxLines int
		dir      string
	}{
		{`{job="app"} |= "level=error"`, 5000, "backward"},
		{`{job="app"} |= "level=error"`, 5000, "forward"},
		{`{job="app"}`, 150, "forward"},
	} {
		r := searchRequest(t, in, tc.expr, tc.maxLines, tc.dir)
		s := newRecordingSender()
		if err := in.runSearch(context.Background(), r, s); err != nil {
			t.Fatal(err)
		}
		fs, inc := s.snapshot()
		dir := query.Backward
		if tc.dir == "forward" {
			dir = query.Forward
		}
		want := srv.brute(t, tc.expr, tc.maxLines, dir)
		got := s.bodies()
		// Frames come in the search's direction, each after the last.
		prev := int64(0)
		for i, f := range fs {
			if inc[i] != data.IncludeAll {
				t.Fatalf("frame %d without schema and progress", i)
			}
			n, _ := f.RowLen()
			for j := 0; j < n; j++ {
				ts := f.Fields[0].At(j).(time.Time).UnixNano()
				if prev != 0 && (dir == query.Forward && ts < prev || dir == query.Backward && ts > prev) {
					t.Fatalf("%s: frame %d row %d goes back in time", tc.expr, i, j)
				}
				prev = ts
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s %s: %d lines, the engine %d", tc.expr, tc.dir, len(got), len(want))
		}
		var last Progress
		for i, f := range fs {
			p := progressOf(t, f)
			if p.LinesSent < last.LinesSent || p.ChunksScanned < last.ChunksScanned || p.BytesScanned < last.BytesScanned || p.RangeCovered < last.RangeCovered {
				t.Fatalf("progress went back: %+v after %+v", p, last)
			}
			if p.Done != (i == len(fs)-1) || p.Slice != i+1 || p.Slices != 0 {
				t.Fatalf("frame %d progress %+v", i, p)
			}
			last = p
		}
		limited := tc.maxLines == 150
		if last.LinesSent != len(want) || last.LimitReached != limited || last.ChunksTotal == 0 || last.BytesScanned == 0 ||
			last.LinesMatched < int64(len(want)) || limited != (last.RangeCovered < 1) || limited != (last.ChunksScanned < last.ChunksTotal) ||
			!limited && last.ChunksCovered != 1 {
			t.Fatalf("%s: last progress %+v", tc.expr, last)
		}
		if fs[len(fs)-1].Meta.Stats == nil {
			t.Error("no statistics in the frame meta")
		}
	}
	if n := srv.count("/loki/api/v1/query_range"); n != 0 || srv.count(client.SearchPath) != 3 {
		t.Errorf("%d query_range calls, %d streamed searches: the server's stream was not used", n, srv.count(client.SearchPath))
	}
}

// TestSearchFirstFrameBeforeServerScanEnds: past its first sources the
// server's scan waits until Grafana has a frame with lines. A plugin that
// waited for the whole answer would never send one, and the gate would
// time out.
func TestSearchFirstFrameBeforeServerScanEnds(t *testing.T) {
	s := newRecordingSender()
	var timedOut atomic.Bool
	var held atomic.Int32
	srv := newLogsiftServer(t, func(i, n int) {
		if i < 3 {
			return
		}
		held.Add(1)
		deadline := time.After(20 * time.Second)
		for len(s.bodies()) == 0 {
			select {
			case <-s.notify:
			case <-deadline:
				timedOut.Store(true)
				return
			}
		}
	})
	in := testInstance(t, srv.url)
	r := searchRequest(t, in, `{job="app"} |= "level=error"`, 5000, "backward")
	if err := in.runSearch(context.Background(), r, s); err != nil {
		t.Fatal(err)
	}
	fs, _ := s.snapshot()
	first := progressOf(t, fs[0])
	if timedOut.Load() || held.Load() == 0 || len(fs) < 2 || first.ChunksScanned >= first.ChunksTotal || first.LinesSent == 0 {
		t.Fatalf("timed out %v, %d sources held, %d frames, first %+v", timedOut.Load(), held.Load(), len(fs), first)
	}
	if got, want := len(s.bodies()), len(srv.brute(t, `{job="app"} |= "level=error"`, 5000, query.Backward)); got != want {
		t.Fatalf("%d lines, want %d", got, want)
	}
}

// TestSearchFallsBackToSlices: a Loki server has no streaming search, and
// a logsift server refuses a line limit above its maximum; both times the
// search runs in slices over query_range, which pages.
func TestSearchFallsBackToSlices(t *testing.T) {
	srv := newLogsiftServer(t, nil)
	in := testInstance(t, srv.url)
	r := searchRequest(t, in, `{job="app"}`, 6000, "forward")
	s := newRecordingSender()
	if err := in.runSearch(context.Background(), r, s); err != nil {
		t.Fatal(err)
	}
	if got := s.bodies(); len(got) != 6000 || srv.count("/loki/api/v1/query_range") < 2 || srv.count(client.SearchPath) != 1 {
		t.Fatalf("%d lines, %d query_range calls, %d stream calls", len(got), srv.count("/loki/api/v1/query_range"), srv.count(client.SearchPath))
	}

	from := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	f := searchServer(t, from, 120, nil) // answers 404 to the stream
	in = testInstance(t, f.srv.URL)
	_, rr, err := in.streamRequest("search/x", json.RawMessage(`{"expr":"{job=\"app\"}","from":`+
		itoa(from.UnixMilli())+`,"to":`+itoa(from.Add(2*time.Hour).UnixMilli())+`}`))
	if err != nil {
		t.Fatal(err)
	}
	s = newRecordingSender()
	if err := in.runSearch(context.Background(), rr, s); err != nil {
		t.Fatal(err)
	}
	if got := s.bodies(); len(got) != 120 || f.count(client.SearchPath) != 1 || f.count("/loki/api/v1/query_range") < 2 {
		t.Fatalf("Loki server: %d lines, %d slices", len(got), f.count("/loki/api/v1/query_range"))
	}
}

// TestSearchReportsServerErrors: a search the server refuses is an error
// of the stream, as Grafana shows it; one that fails after lines went out
// too.
func TestSearchReportsServerErrors(t *testing.T) {
	srv := newLogsiftServer(t, nil)
	in := testInstance(t, srv.url)
	r := searchRequest(t, in, `{job="app"} |~ "(("`, 100, "backward")
	err := in.runSearch(context.Background(), r, newRecordingSender())
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad query: %v", err)
	}
	f := newFakeServer(t)
	f.handle(client.SearchPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = w.Write([]byte(`{"progress":{"chunksTotal":3,"done":false}}` + "\n" + `{"error":"internal error: chunk checksum mismatch"}` + "\n"))
	})
	in = testInstance(t, f.srv.URL)
	s := newRecordingSender()
	err = in.runSearch(context.Background(), searchRequest(t, in, `{job="app"}`, 100, "backward"), s)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || len(s.jsons) != 1 {
		t.Fatalf("failure after the start: %v, %d frames", err, len(s.jsons))
	}
}
