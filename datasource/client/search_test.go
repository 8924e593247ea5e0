package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/search"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

var searchBase = time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)

// searchServer is a real store behind the server's streaming search
// handler, with two streams of 3,000 entries, one a second.
func searchServer(t *testing.T) (*httptest.Server, *query.Engine) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{TargetChunkSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	for s, app := range []string{"api", "db"} {
		var es []chunk.Entry
		for i := 0; i < 3000; i++ {
			e := chunk.Entry{Timestamp: searchBase.Add(time.Duration(i)*time.Second + time.Duration(s)).UnixNano(), Line: []byte(fmt.Sprintf("%s line %d status=%d", app, i, 200+i%5))}
			if i%2 == 0 {
				e.Metadata = labels.New("line", fmt.Sprint(i+1))
			}
			es = append(es, e)
		}
		for i := 0; i < len(es); i += 500 {
			if err := st.Append(context.Background(), "t", []store.Stream{{Labels: labels.New("app", app), Entries: es[i : i+500]}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	eng := &query.Engine{Store: st}
	mux := http.NewServeMux()
	(&search.HTTP{Service: &search.Service{Engine: eng, Store: st, Limits: lokiapi.DefaultLimits(), Tenants: tenant.Resolver{}}}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, eng
}

func TestSearchReadsBatchesUntilDone(t *testing.T) {
	srv, eng := searchServer(t)
	c, err := New(Config{URL: srv.URL, Tenant: "t", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"backward", "forward"} {
		q := `{app=~".+"} |= "status=203"`
		ss, err := c.Search(context.Background(), SearchRequest{Query: q, Start: searchBase, End: searchBase.Add(time.Hour), Limit: 5000, Direction: dir})
		if err != nil {
			t.Fatal(err)
		}
		type key struct {
			stream string
			ts     int64
			line   string
			meta   string
		}
		var got []key
		var last SearchProgress
		batches := 0
		for {
			b, err := ss.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			batches++
			for _, s := range b.Streams {
				for _, e := range s.Entries {
					got = append(got, key{s.Labels.String(), e.Timestamp, e.Line, e.Metadata.String()})
				}
			}
			if b.Progress.EntriesSent != int64(len(got)) {
				t.Fatalf("progress says %d sent, %d arrived", b.Progress.EntriesSent, len(got))
			}
			last = b.Progress
		}
		ss.Close()
		d := query.Backward
		if dir == "forward" {
			d = query.Forward
		}
		res, err := eng.Exec(context.Background(), query.Params{Tenant: "t", Query: q, Start: searchBase, End: searchBase.Add(time.Hour), Limit: 5000, Direction: d})
		if err != nil {
			t.Fatal(err)
		}
		var want []key
		for _, s := range res.Streams {
			ls := Labels{}
			for _, l := range s.Labels {
				ls = append(ls, Label{l.Name, l.Value})
			}
			for _, e := range s.Entries {
				md := Labels{}
				for _, l := range e.Metadata {
					md = append(md, Label{l.Name, l.Value})
				}
				want = append(want, key{ls.String(), e.Timestamp, string(e.Line), md.String()})
			}
		}
		cmp := func(a, b key) int { return int(a.ts - b.ts) }
		slices.SortFunc(got, cmp)
		slices.SortFunc(want, cmp)
		if !slices.Equal(got, want) || len(want) != 1200 {
			t.Fatalf("%s: %d entries, the engine %d", dir, len(got), len(want))
		}
		st := last.Stats()
		if !last.Done || batches < 1 || st.ChunksRef != res.Stats.ChunksRef || st.PostFilterLines != res.Stats.PostFilterLines || st.EntriesReturned != 1200 ||
			last.CoveredFrom != searchBase.UnixNano() || last.CoveredTo != searchBase.Add(time.Hour).UnixNano() {
			t.Fatalf("%s: last progress %+v, stats %+v", dir, last, st)
		}
		if _, err := ss.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("after done: %v", err)
		}
	}
}

func TestSearchTellsWhenServerHasNoStream(t *testing.T) {
	srv, _ := searchServer(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/search/stream", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("query") {
		case "html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>an app behind the same proxy</html>"))
		case "405":
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		default:
			http.NotFound(w, r)
		}
	})
	other := httptest.NewServer(mux)
	defer other.Close()
	loki, _ := New(Config{URL: other.URL})
	for _, q := range []string{"404", "html", "405"} {
		if _, err := loki.Search(context.Background(), SearchRequest{Query: q}); !errors.Is(err, ErrNoSearchStream) {
			t.Errorf("%s: %v", q, err)
		}
	}
	// A logsift server refuses what the client got wrong with 400.
	c, _ := New(Config{URL: srv.URL, Tenant: "t"})
	_, err := c.Search(context.Background(), SearchRequest{Query: `{app="api"}`, Start: searchBase, End: searchBase.Add(time.Hour), Limit: 100000})
	if !IsStatus(err, 400) || !strings.Contains(err.Error(), "max_entries_limit_per_query") {
		t.Errorf("limit over the server's: %v", err)
	}
	_, err = c.Search(context.Background(), SearchRequest{Query: `{app="api"`, Start: searchBase, End: searchBase.Add(time.Hour)})
	if !IsStatus(err, 400) {
		t.Errorf("bad query: %v", err)
	}
}

// TestSearchRefusesBrokenAnswers: what a broken or hostile server sends
// is an error, never a panic, a hang or a search taken as complete.
func TestSearchRefusesBrokenAnswers(t *testing.T) {
	bodies := map[string]string{
		"cut":     `{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}]}` + "\n",
		"error":   `{"progress":{"done":false}}` + "\n" + `{"error":"query timed out: context deadline exceeded"}` + "\n",
		"garbage": "{\"streams\":[{\"stream\":{\"a\":1}}]}\n",
		"unknown": `{"what":1}` + "\n",
		"badprog": `{"progress":{"start":"soon"}}` + "\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = io.WriteString(w, bodies[r.URL.Query().Get("query")])
	}))
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL})
	want := map[string]string{"cut": "ended before the search was done", "error": "query timed out", "garbage": "search answer line",
		"unknown": "neither streams, progress nor error", "badprog": "decode search progress"}
	for name, msg := range want {
		ss, err := c.Search(context.Background(), SearchRequest{Query: name})
		if err != nil {
			t.Fatal(err)
		}
		var last error
		for i := 0; i < 10; i++ {
			if _, last = ss.Next(); last != nil {
				break
			}
		}
		ss.Close()
		if last == nil || errors.Is(last, io.EOF) || !strings.Contains(last.Error(), msg) {
			t.Errorf("%s: %v, want an error with %q", name, last, msg)
		}
	}
}

// TestSearchTimeoutBoundsTheStart: the timeout bounds the wait for the
// answer's start; the search itself may take longer.
func TestSearchTimeoutBoundsTheStart(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("query") == "slow-start" {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.(http.Flusher).Flush()
		<-release // longer than the timeout
		_, _ = io.WriteString(w, `{"progress":{"done":true}}`+"\n")
	}))
	defer srv.Close()
	defer close(release)
	c, _ := New(Config{URL: srv.URL, Timeout: 200 * time.Millisecond})
	_, err := c.Search(context.Background(), SearchRequest{Query: "slow-start"})
	var ce *ConnectError
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no answer: %v", err)
	}
	ss, err := c.Search(context.Background(), SearchRequest{Query: "slow-search"})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	done := make(chan error, 1)
	go func() {
		_, err := ss.Next()
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the timeout cut a running search: %v", err)
	case <-time.After(600 * time.Millisecond): // three timeouts
	}
}

func FuzzDecodeSearchLine(f *testing.F) {
	f.Add([]byte(`{"streams":[{"stream":{"app":"api"},"values":[["1711929600000000000","api line 0",{"structuredMetadata":{"line":"1"}}]]}]}`))
	f.Add([]byte(`{"progress":{"sourcesTotal":4,"sourcesDone":1,"chunksTotal":4,"start":"1711929600000000000","coveredFrom":"1711933000000000001","done":false}}`))
	f.Add([]byte(`{"error":"query canceled"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, streams, p, _, err := DecodeSearchLine(b)
		if err != nil {
			return
		}
		switch kind {
		case "streams":
			for _, s := range streams {
				for i := 1; i < len(s.Labels); i++ {
					if s.Labels[i-1].Name >= s.Labels[i].Name {
						t.Fatalf("labels not sorted: %v", s.Labels)
					}
				}
			}
		case "progress":
			_ = p.Stats()
		case "error":
		default:
			t.Fatalf("kind %q without an error", kind)
		}
	})
}
