package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
)

// packet is one frame message of a stream, as Grafana Live forwards it.
type packet struct {
	Schema json.RawMessage `json:"schema"`
	Data   struct {
		Values []json.RawMessage `json:"values"`
	} `json:"data"`
}

// bodies decodes the body column of a packet.
func (p packet) bodies(t testing.TB) []string {
	t.Helper()
	if len(p.Data.Values) < 2 {
		return nil
	}
	var out []string
	if err := json.Unmarshal(p.Data.Values[1], &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func subscribe(t testing.TB, ds *pluginv2.DataSourceInstanceSettings, path, payload string) {
	t.Helper()
	res, err := h.stream.SubscribeStream(context.Background(), &pluginv2.SubscribeStreamRequest{PluginContext: pluginContext(ds), Path: path, Data: []byte(payload)})
	if err != nil || res.Status != pluginv2.SubscribeStreamResponse_OK {
		t.Fatalf("subscribe %s: %v %v", path, res, err)
	}
}

// tailTarget is the server the tail test runs against: the real server
// binary the harness started, whose /loki/api/v1/tail must upgrade to a
// WebSocket through its whole handler chain (metrics, auth, tracing).
func tailTarget(t *testing.T) (*lokiclient.Client, *pluginv2.DataSourceInstanceSettings) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.serverURL, "http")+"/loki/api/v1/tail?query="+url.QueryEscape(`{job="none"}`),
		&websocket.DialOptions{HTTPHeader: http.Header{"X-Scope-OrgID": {tenant}}})
	if err != nil {
		t.Fatalf("the server's /loki/api/v1/tail did not upgrade to a WebSocket: %v", err)
	}
	conn.CloseNow()
	return h.client(), h.ds
}

func TestLiveTail(t *testing.T) {
	ls := labels.New("workspace", "live", "job", "tail", "file", "tail.log")
	c, ds := tailTarget(t)
	start := time.Now()
	var backfill []chunk.Entry
	for i := 0; i < 30; i++ {
		backfill = append(backfill, chunk.Entry{Timestamp: start.Add(time.Duration(i-30) * time.Second).UnixNano(), Line: []byte(fmt.Sprintf("backfill %02d", i))})
	}
	if err := pushInBatches(c, ls, backfill); err != nil {
		t.Fatal(err)
	}
	payload := fmt.Sprintf(`{"refId":"A","expr":"{workspace=\"live\"}","maxLines":10,"from":%d}`, start.Add(-time.Hour).UnixMilli())
	subscribe(t, ds, "tail/live-1", payload)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := h.stream.RunStream(ctx, &pluginv2.RunStreamRequest{PluginContext: pluginContext(ds), Path: "tail/live-1", Data: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan packet, 100)
	go func() {
		for {
			msg, err := st.Recv()
			if err != nil {
				close(got)
				return
			}
			var p packet
			if json.Unmarshal(msg.Data, &p) == nil {
				got <- p
			}
		}
	}()
	var lines []string
	var packets []packet
	wait := func(n int) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for len(lines) < n {
			select {
			case p, ok := <-got:
				if !ok {
					t.Fatalf("stream ended after %d lines", len(lines))
				}
				packets = append(packets, p)
				lines = append(lines, p.bodies(t)...)
			case <-deadline:
				t.Fatalf("%d lines after 30s, want %d: %v", len(lines), n, lines)
			}
		}
	}
	// The backfill: the last 10 lines, oldest first.
	wait(10)
	if lines[0] != "backfill 20" || lines[9] != "backfill 29" {
		t.Errorf("backfill %v", lines)
	}
	// New lines arrive, batched.
	var live []chunk.Entry
	for i := 0; i < 50; i++ {
		live = append(live, chunk.Entry{Timestamp: time.Now().UnixNano() + int64(i), Line: []byte(fmt.Sprintf("live %02d", i))})
	}
	if err := pushInBatches(c, ls, live); err != nil {
		t.Fatal(err)
	}
	wait(60)
	for i, l := range lines[10:] {
		if l != fmt.Sprintf("live %02d", i) {
			t.Fatalf("live line %d is %q: %v", i, l, lines[10:])
		}
	}
	if len(packets[0].Schema) == 0 {
		t.Error("first packet without schema")
	}
	for i, p := range packets[1:] {
		if len(p.Schema) != 0 {
			t.Errorf("packet %d repeats the schema", i+1)
		}
	}
	if len(packets) >= 60 {
		t.Errorf("%d packets for 60 lines: not batched", len(packets))
	}
}

// TestStreamingSearch is the sliced search the plugin runs against a
// Loki server (lokiOnly); TestServerStreamedSearch is the one against a
// logsift server.
func TestStreamingSearch(t *testing.T) {
	want := count(containing("level=warn"))
	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)
	ds := settings(42, lokiOnly(t), `{"tenant":"`+tenant+`"}`)
	run := func(maxLines int) ([]string, []map[string]any) {
		payload := fmt.Sprintf(`{"refId":"A","expr":"{workspace=\"demo\"} |= \"level=warn\"","maxLines":%d,"from":%d,"to":%d}`,
			maxLines, from.UnixMilli(), to.UnixMilli())
		path := fmt.Sprintf("search/s-%d", maxLines)
		subscribe(t, ds, path, payload)
		st, err := h.stream.RunStream(context.Background(), &pluginv2.RunStreamRequest{PluginContext: pluginContext(ds), Path: path, Data: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		var progress []map[string]any
		for {
			msg, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break // the search ended the stream
			}
			if err != nil {
				t.Fatalf("search stream: %v", err)
			}
			var f data.Frame
			if err := json.Unmarshal(msg.Data, &f); err != nil {
				t.Fatalf("packet is not a full frame: %v", err)
			}
			lines = append(lines, rows(t, &f)...)
			progress = append(progress, f.Meta.Custom.(map[string]any)["progress"].(map[string]any))
		}
		return lines, progress
	}
	lines, progress := run(5000)
	if len(lines) != want || want == 0 {
		t.Fatalf("search found %d lines, brute force %d", len(lines), want)
	}
	last := progress[len(progress)-1]
	if len(progress) < 3 || last["done"] != true || last["rangeCovered"] != 1.0 || last["chunksCovered"] != 1.0 || int(last["linesMatched"].(float64)) != want {
		t.Errorf("%d progress reports, last %v", len(progress), last)
	}
	if first := progress[0]; first["rangeCovered"].(float64) >= 0.5 {
		t.Errorf("first report %v: the first slice should be a small share of the range", first)
	}
	// Lines arrive before the search ends.
	if early := progress[len(progress)-2]; early["linesSent"].(float64) <= 0 || early["bytesScanned"].(float64) <= 0 {
		t.Errorf("no lines before the last slice: %v", early)
	}

	lines, progress = run(40)
	last = progress[len(progress)-1]
	if len(lines) != 40 || last["limitReached"] != true || last["done"] != true || last["rangeCovered"].(float64) >= 1 {
		t.Errorf("limited search: %d lines, last %v", len(lines), last)
	}
	for _, l := range lines {
		if !strings.Contains(l, "level=warn") {
			t.Fatalf("search line %q does not match", l)
		}
	}
}

func streamRequest(path, payload string) *pluginv2.RunStreamRequest {
	return &pluginv2.RunStreamRequest{PluginContext: pluginContext(h.ds), Path: path, Data: []byte(payload)}
}

// TestSearchFirstResultBeforeScanEnds proves, for the sliced search the
// plugin runs against a Loki server, the order, not the timing:
// a proxy between the plugin and the real server holds query n until the
// test has received n-1 frames. A plugin that sent nothing before the
// whole range was scanned would never get past the second query, and the
// gate would time out; here every slice's answer reaches Grafana before
// the next slice is scanned, and lines arrive before the last one is.
func TestSearchFirstResultBeforeScanEnds(t *testing.T) {
	target, err := url.Parse(h.serverURL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var events []string
	received := 0 // frames the test has received
	var queries int
	proxy := httputil.NewSingleHostReverseProxy(target)
	gated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == client.SearchPath {
			http.NotFound(w, r) // as a Loki server: the plugin slices
			return
		}
		if r.URL.Path == "/loki/api/v1/query_range" {
			mu.Lock()
			queries++
			n := queries
			timedOut := false
			timer := time.AfterFunc(20*time.Second, func() {
				mu.Lock()
				timedOut = true
				cond.Broadcast()
				mu.Unlock()
			})
			for received < n-1 && !timedOut {
				cond.Wait()
			}
			timer.Stop()
			if timedOut {
				events = append(events, fmt.Sprintf("query %d: gate timed out", n))
			} else {
				events = append(events, fmt.Sprintf("query %d", n))
			}
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	})
	ps := httptest.NewServer(gated)
	t.Cleanup(ps.Close)
	ds := settings(30, ps.URL, `{"tenant":"`+tenant+`"}`)

	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)
	payload := fmt.Sprintf(`{"refId":"A","expr":"{workspace=\"demo\"} |= \"level=\"","maxLines":100000,"from":%d,"to":%d}`, from.UnixMilli(), to.UnixMilli())
	subscribe(t, ds, "search/order", payload)
	st, err := h.stream.RunStream(context.Background(), &pluginv2.RunStreamRequest{PluginContext: pluginContext(ds), Path: "search/order", Data: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	var last map[string]any
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("search stream: %v", err)
		}
		var f data.Frame
		if err := json.Unmarshal(msg.Data, &f); err != nil {
			t.Fatal(err)
		}
		n := len(rows(t, &f))
		last = f.Meta.Custom.(map[string]any)["progress"].(map[string]any)
		mu.Lock()
		received++
		if n > 0 && lines == 0 {
			events = append(events, fmt.Sprintf("first lines (%d)", n))
		}
		cond.Broadcast()
		mu.Unlock()
		lines += n
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("events: %v", events)
	want := count(containing("level="))
	if lines != want || last["done"] != true {
		t.Fatalf("%d lines (brute force %d), last progress %v", lines, want, last)
	}
	firstLines, lastQuery := -1, -1
	for i, e := range events {
		switch {
		case strings.Contains(e, "timed out"):
			t.Errorf("%s: the plugin scanned on without sending what it had", e)
		case strings.HasPrefix(e, "first lines"):
			firstLines = i
		case strings.HasPrefix(e, "query"):
			lastQuery = i
		}
	}
	if queries < 3 || firstLines < 0 || firstLines > lastQuery {
		t.Errorf("%d queries; events %v: lines did not arrive before the last slice was scanned", queries, events)
	}
}
