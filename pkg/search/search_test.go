package search

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// base is the first entry's time; the fixture holds n entries per stream,
// one a second, with distinct timestamps across streams so that any limit
// has exactly one right answer.
var base = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

const perStream = 4000

// needles are the entries with "needle": every third of each of 3 streams.
const needles = 3 * ((perStream + 2) / 3)

type fixture struct {
	st  *store.Store
	svc *Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{TargetChunkSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	ctx := context.Background()
	for s, app := range []string{"api", "db", "web"} {
		var es []chunk.Entry
		for i := 0; i < perStream; i++ {
			ts := base.Add(time.Duration(i)*time.Second + time.Duration(s)*time.Millisecond).UnixNano()
			line := fmt.Sprintf("%s i=%d level=info msg=%q", app, i, "request served")
			var md labels.Labels
			if i%3 == 0 {
				line = fmt.Sprintf("%s i=%d level=error msg=%q", app, i, "needle in \"quotes\"\tand tab")
				md = labels.New("trace_id", fmt.Sprintf("t%d", i))
			}
			es = append(es, chunk.Entry{Timestamp: ts, Line: []byte(line), Metadata: md})
		}
		for i := 0; i < len(es); i += 500 {
			if err := st.Append(ctx, "t", []store.Stream{{Labels: labels.New("job", "test", "app", app), Entries: es[i:min(i+500, len(es))]}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, svc: &Service{
		Engine:  &query.Engine{Store: st},
		Store:   st,
		Limits:  lokiapi.DefaultLimits(),
		Tenants: tenant.Resolver{Default: "t"},
		Now:     func() time.Time { return base.Add(2 * time.Hour) },
	}}
}

type entry struct {
	stream string
	ts     int64
	line   string
	meta   string
}

// want is the engine's answer, the one query_range gives.
func (f *fixture) want(t *testing.T, q string, limit int, dir query.Direction) ([]entry, *query.Result) {
	t.Helper()
	res, err := f.svc.Engine.Exec(context.Background(), query.Params{Tenant: "t", Query: q, Start: base, End: base.Add(2 * time.Hour), Limit: limit, Direction: dir})
	if err != nil {
		t.Fatal(err)
	}
	var out []entry
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			out = append(out, entry{s.Labels.String(), e.Timestamp, string(e.Line), e.Metadata.String()})
		}
	}
	sortEntries(out)
	return out, res
}

func sortEntries(es []entry) {
	slices.SortFunc(es, func(a, b entry) int {
		if a.ts != b.ts {
			return int(a.ts - b.ts)
		}
		return strings.Compare(a.stream, b.stream)
	})
}

// ndjsonLine is one line of the HTTP answer.
type ndjsonLine struct {
	Streams []struct {
		Stream map[string]string `json:"stream"`
		Values []json.RawMessage `json:"values"`
	} `json:"streams"`
	Progress *ProgressJSON `json:"progress"`
	Error    string        `json:"error"`
}

// readNDJSON reads an answer line by line, calling each (when set) as
// every line arrives.
func readNDJSON(t *testing.T, r io.Reader, each func(ndjsonLine)) []ndjsonLine {
	t.Helper()
	var out []ndjsonLine
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l ndjsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d is not JSON: %v: %.200s", len(out)+1, err, sc.Text())
		}
		if (l.Streams != nil) == (l.Progress != nil) && l.Error == "" {
			t.Fatalf("line %d has both or neither of streams and progress: %.200s", len(out)+1, sc.Text())
		}
		out = append(out, l)
		if each != nil {
			each(l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// entriesOf decodes the streams lines in order, checking that each batch
// comes after the ones before in the direction.
func entriesOf(t *testing.T, lines []ndjsonLine, dir query.Direction) []entry {
	t.Helper()
	var out []entry
	for _, l := range lines {
		var batch []entry
		for _, s := range l.Streams {
			ls := labels.FromMap(s.Stream)
			for _, v := range s.Values {
				var parts []json.RawMessage
				if err := json.Unmarshal(v, &parts); err != nil || len(parts) < 2 {
					t.Fatalf("value %s", v)
				}
				var tsStr, line string
				_ = json.Unmarshal(parts[0], &tsStr)
				_ = json.Unmarshal(parts[1], &line)
				ts, err := strconv.ParseInt(tsStr, 10, 64)
				if err != nil {
					t.Fatalf("timestamp %s", parts[0])
				}
				e := entry{stream: ls.String(), ts: ts, line: line}
				if len(parts) == 3 {
					var cat struct {
						StructuredMetadata map[string]string `json:"structuredMetadata"`
					}
					if err := json.Unmarshal(parts[2], &cat); err != nil {
						t.Fatal(err)
					}
					e.meta = labels.FromMap(cat.StructuredMetadata).String()
				} else {
					e.meta = "{}"
				}
				batch = append(batch, e)
			}
		}
		for _, e := range batch {
			for _, p := range out {
				if dir == query.Backward && e.ts >= p.ts || dir == query.Forward && e.ts <= p.ts {
					t.Fatalf("entry %+v of a later batch is not after %+v", e, p)
				}
			}
		}
		out = append(out, batch...)
	}
	return out
}

func (f *fixture) httpServer(t *testing.T, hook func(i, n int)) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	(&HTTP{Service: f.svc}).Register(mux)
	var h http.Handler = mux
	if hook != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r.WithContext(query.WithSourceHook(r.Context(), hook)))
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func searchURL(srv *httptest.Server, q string, limit int, dir string) string {
	v := url.Values{"query": {q}, "start": {strconv.FormatInt(base.UnixNano(), 10)}, "end": {strconv.FormatInt(base.Add(2*time.Hour).UnixNano(), 10)},
		"limit": {strconv.Itoa(limit)}, "direction": {dir}}
	return srv.URL + Path + "?" + v.Encode()
}

func TestHTTPStreamsNDJSON(t *testing.T) {
	f := newFixture(t)
	srv := f.httpServer(t, nil)
	for _, categorized := range []bool{true, false} {
		for _, dir := range []query.Direction{query.Backward, query.Forward} {
			for _, limit := range []int{1, 500, 5000} {
				for _, q := range []string{`{job="test"} |= "needle"`, `{app=~"api|web"}`} {
					what := fmt.Sprintf("%s dir=%v limit=%d categorized=%v", q, dir, limit, categorized)
					d := map[query.Direction]string{query.Backward: "backward", query.Forward: "FORWARD"}[dir]
					req, _ := http.NewRequest(http.MethodGet, searchURL(srv, q, limit, d), nil)
					if categorized {
						req.Header.Set("X-Loki-Response-Encoding-Flags", "categorize-labels")
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
						b, _ := io.ReadAll(resp.Body)
						t.Fatalf("%s: %d %s %s", what, resp.StatusCode, resp.Header.Get("Content-Type"), b)
					}
					lines := readNDJSON(t, resp.Body, nil)
					resp.Body.Close()
					got := entriesOf(t, lines, dir)
					want, res := f.want(t, q, limit, dir)
					sortEntries(got)
					if !categorized {
						// Without the flag, metadata joins the stream labels.
						for i := range want {
							if want[i].meta != "{}" {
								m := map[string]string{}
								for _, l := range mustParse(t, want[i].stream) {
									m[l.Name] = l.Value
								}
								for _, l := range mustParse(t, want[i].meta) {
									m[l.Name] = l.Value
								}
								want[i].stream = labels.FromMap(m).String()
								want[i].meta = "{}"
							}
						}
						sortEntries(want)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("%s: %d entries streamed, query_range has %d; first differences %v / %v", what, len(got), len(want), head(got), head(want))
					}
					last := lines[len(lines)-1].Progress
					if last == nil || !last.Done || last.EntriesSent != int64(len(want)) || last.ChunksTotal != res.Stats.ChunksRef ||
						last.SourcesDone+last.SourcesSkipped != last.SourcesTotal || last.Start != base.UnixNano() || last.End != base.Add(2*time.Hour).UnixNano() ||
						last.LinesMatched < int64(len(want)) || last.BytesScanned == 0 || last.LimitReached != (len(want) == limit) {
						t.Fatalf("%s: last progress %+v", what, last)
					}
					for _, l := range lines[:len(lines)-1] {
						if l.Progress != nil && l.Progress.Done {
							t.Fatalf("%s: a progress line before the last says done", what)
						}
					}
				}
			}
		}
	}
}

func mustParse(t *testing.T, s string) labels.Labels {
	t.Helper()
	ls, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func head(es []entry) []entry {
	return es[:min(3, len(es))]
}

// TestHTTPFirstBatchBeforeScanEnds proves that batches are flushed as
// they are cut, not when the answer is complete: past the first sources
// (the newest chunk of each stream) the server's scan is held until the
// client has read a whole batch. A handler that did not flush would leave
// that small batch in the server's buffer, the client would never read
// it, and the gate would time out.
func TestHTTPFirstBatchBeforeScanEnds(t *testing.T) {
	f := newFixture(t)
	gate := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var events []string
	log := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	srv := f.httpServer(t, func(i, n int) {
		if i >= 3 {
			select {
			case <-gate:
			case <-time.After(20 * time.Second):
				log("gate timed out")
			}
			if i == n-1 {
				log("last source scanned")
			}
		}
	})
	// The newest line of each stream: the first batch is three entries,
	// far below the server's buffer.
	resp, err := http.Get(searchURL(srv, `{job="test"} |= "i=3999 "`, 5000, "backward"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// A batch ends with its progress line.
	sawLines := false
	lines := readNDJSON(t, resp.Body, func(l ndjsonLine) {
		sawLines = sawLines || len(l.Streams) > 0
		if sawLines && l.Progress != nil {
			once.Do(func() {
				log("client read a batch")
				close(gate)
			})
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 2 || events[0] != "client read a batch" || slices.Contains(events, "gate timed out") {
		t.Fatalf("events %v: lines did not reach the client before the scan ended", events)
	}
	got := entriesOf(t, lines, query.Backward)
	if last := lines[len(lines)-1].Progress; last == nil || !last.Done || last.EntriesSent != 3 || len(got) != 3 {
		t.Fatalf("last line %+v, %d entries", lines[len(lines)-1], len(got))
	}
	var first *ProgressJSON
	for _, l := range lines {
		if l.Progress != nil {
			first = l.Progress
			break
		}
	}
	if first.SourcesDone >= first.SourcesTotal || first.CoveredFrom <= first.Start || first.CoveredTo != first.End || first.EntriesSent == 0 {
		t.Fatalf("first progress %+v: not part-way", first)
	}
}

func TestHTTPErrors(t *testing.T) {
	f := newFixture(t)
	f.svc.Limits.MaxQueryLength = 24 * time.Hour
	srv := f.httpServer(t, nil)
	for _, tc := range []struct {
		params string
		code   int
		msg    string
	}{
		{"", 400, "query parameter is required"},
		{"query=" + url.QueryEscape(`{job="test"`), 400, "parse error"},
		{"query=" + url.QueryEscape(`count_over_time({job="test"}[1m])`), 400, "needs a log query"},
		{"query=" + url.QueryEscape(`{job="test"}`) + "&limit=0", 400, "invalid limit"},
		{"query=" + url.QueryEscape(`{job="test"}`) + "&limit=5001", 400, "max_entries_limit_per_query"},
		{"query=" + url.QueryEscape(`{job="test"}`) + "&direction=sideways", 400, "invalid direction"},
		{"query=" + url.QueryEscape(`{job="test"}`) + "&start=2000000000&end=1000000000", 400, "end timestamp must not be before start time"},
		{"query=" + url.QueryEscape(`{job="test"}`) + "&since=72h", 400, "max_query_length"},
		{"query=" + url.QueryEscape(`{job="test"}`) + "&start=yesterday", 400, "invalid start"},
		{"query=" + url.QueryEscape(`{job="test"} |~ "[z-a]"`), 400, "invalid"},
	} {
		resp, err := http.Get(srv.URL + Path + "?" + tc.params)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.msg) {
			t.Errorf("%s: %d %q, want %d with %q", tc.params, resp.StatusCode, b, tc.code, tc.msg)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+Path, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("PUT: %v %v", resp, err)
	}
	// A tenant is required and none is named.
	f.svc.Tenants = tenant.Resolver{Required: true}
	resp, err := http.Get(searchURL(srv, `{job="test"}`, 10, "backward"))
	if err != nil || resp.StatusCode != 401 {
		t.Errorf("no tenant: %v %v", resp, err)
	}
	// Another tenant sees nothing of t's.
	req, _ = http.NewRequest(http.MethodGet, searchURL(srv, `{job="test"}`, 10, "backward"), nil)
	req.Header.Set("X-Scope-OrgID", "other")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("other tenant: %v %v", resp, err)
	}
	lines := readNDJSON(t, resp.Body, nil)
	resp.Body.Close()
	if len(lines) != 1 || lines[0].Progress == nil || lines[0].Progress.EntriesSent != 0 || lines[0].Progress.SourcesTotal != 0 {
		t.Errorf("other tenant got %+v", lines)
	}
}

// TestHTTPErrorAfterLinesWentOut: once lines are out, a failure is a last
// {"error"} line, since the status is sent.
func TestHTTPErrorAfterLinesWentOut(t *testing.T) {
	f := newFixture(t)
	f.svc.Limits.QueryTimeout = 300 * time.Millisecond
	firstOut := make(chan struct{})
	var once sync.Once
	srv := f.httpServer(t, func(i, n int) {
		if i == n-1 {
			select {
			case <-firstOut:
			case <-time.After(20 * time.Second):
			}
			// Past the query timeout: the scan ends at its next block.
			time.Sleep(time.Second)
		}
	})
	// Fewer matches than the limit: every source is scanned, the last too.
	resp, err := http.Get(searchURL(srv, `{job="test"} |= "needle"`, 5000, "forward"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := readNDJSON(t, resp.Body, func(l ndjsonLine) {
		if l.Progress != nil {
			once.Do(func() { close(firstOut) })
		}
	})
	last := lines[len(lines)-1]
	if resp.StatusCode != 200 || !strings.Contains(last.Error, "query timed out") {
		t.Fatalf("%d, last line %+v", resp.StatusCode, last)
	}
	for _, l := range lines {
		if l.Progress != nil && l.Progress.Done {
			t.Fatal("a failed search said done")
		}
	}
}
