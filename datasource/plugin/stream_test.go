package plugin

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/querymodel"
)

const tailBase = int64(1714564800000000000)

// tailEntry is entry i of the test stream: one per second after tailBase.
func tailEntry(i int) [2]string {
	return [2]string{itoa(tailBase + int64(i)*1e9), "entry " + itoa(int64(i))}
}

func tailMessage(entries ...int) []byte {
	vals := make([][2]string, 0, len(entries))
	for _, i := range entries {
		vals = append(vals, tailEntry(i))
	}
	b, _ := json.Marshal(map[string]any{"streams": []any{map[string]any{
		"stream": map[string]string{"job": "app", "detected_level": "info"}, "values": vals}}})
	return b
}

// fastTail shortens the tail's timers for a test.
func fastTail(t *testing.T, reconnectLimit int) {
	oldMin, oldLimit, oldFlush := tailBackoffMin, tailReconnectLimit, tailFlushEvery
	tailBackoffMin, tailReconnectLimit, tailFlushEvery = 5*time.Millisecond, reconnectLimit, 20*time.Millisecond
	t.Cleanup(func() { tailBackoffMin, tailReconnectLimit, tailFlushEvery = oldMin, oldLimit, oldFlush })
}

// waitBodies waits until the sender has n rows.
func waitBodies(t *testing.T, s *recordingSender, n int) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if b := s.bodies(); len(b) >= n {
			return b
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("only %d rows after 10s: %v", len(s.bodies()), s.bodies())
		}
	}
}

func TestTailReconnectsWithoutGapsOrRepeats(t *testing.T) {
	fastTail(t, 1000)
	f := newFakeServer(t)
	var conns atomic.Int32
	params := make(chan map[string]string, 4)
	f.handle("/loki/api/v1/tail", func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		params <- map[string]string{"start": r.Form.Get("start"), "limit": r.Form.Get("limit"), "tenant": r.Header.Get("X-Scope-OrgID")}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := r.Context()
		switch n {
		case 1:
			_ = c.Write(ctx, websocket.MessageText, tailMessage(1, 2)) // backfill
			_ = c.Write(ctx, websocket.MessageText, tailMessage(3))    // live
			time.Sleep(50 * time.Millisecond)
			_ = c.CloseNow() // the server goes away
		default:
			// Entry 4 arrived while the plugin was away: the backfill
			// since the resume point repeats 2 and 3 and brings 4.
			_ = c.Write(ctx, websocket.MessageText, tailMessage(2, 3, 4))
			_ = c.Write(ctx, websocket.MessageText, tailMessage(5))
			c.CloseRead(ctx)
			<-ctx.Done()
		}
	})
	in := testInstance(t, f.srv.URL)
	s := newRecordingSender()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	r, err := in.BuildRequest(dataQuery("A", `{"expr":"{job=\"app\"}","queryType":"stream"}`), false)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- in.runTail(ctx, r, s) }()
	got := waitBodies(t, s, 5)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "entry 1,entry 2,entry 3,entry 4,entry 5" {
		t.Errorf("rows %v", got)
	}
	p1, p2 := <-params, <-params
	if p1["limit"] != "500" || p1["tenant"] != "team-a" || p1["start"] != itoa(qFrom.UnixNano()) {
		t.Errorf("first connection %v", p1)
	}
	if p2["limit"] != "1000" || p2["start"] != itoa(tailBase+3e9-int64(tailOverlap)) {
		t.Errorf("reconnection %v (want start %d)", p2, tailBase+3e9-int64(tailOverlap))
	}
	_, inc := s.snapshot()
	if inc[0] != data.IncludeAll {
		t.Errorf("first frame sent without its schema")
	}
	for i, x := range inc[1:] {
		if x != data.IncludeDataOnly {
			t.Errorf("frame %d repeats the schema", i+1)
		}
	}
	fs, _ := s.snapshot()
	var types map[string]string
	_ = json.Unmarshal(fs[0].Fields[5].At(0).(json.RawMessage), &types)
	if types["job"] != "I" || types["detected_level"] != "S" {
		t.Errorf("label types %v", types)
	}
}

func TestTailFillsGapAfterLongOutage(t *testing.T) {
	fastTail(t, 2)
	f := newFakeServer(t)
	var conns atomic.Int32
	f.handle("/loki/api/v1/tail", func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := r.Context()
		if n == 1 {
			_ = c.Write(ctx, websocket.MessageText, tailMessage(1))
			time.Sleep(30 * time.Millisecond)
			_ = c.CloseNow()
			return
		}
		// A full backfill (the limit is 2): 2 and 3 are missing from it.
		_ = c.Write(ctx, websocket.MessageText, tailMessage(4, 5))
		c.CloseRead(ctx)
		<-ctx.Done()
	})
	// The gap is read forward in pages of the reconnect limit.
	f.handle("/loki/api/v1/query_range", func(w http.ResponseWriter, r *http.Request) {
		start, _ := parseInt(r.Form.Get("start"))
		end, _ := parseInt(r.Form.Get("end"))
		limit, _ := parseInt(r.Form.Get("limit"))
		var vals [][]any
		for i := 1; i <= 5 && int64(len(vals)) < limit; i++ {
			ts := tailBase + int64(i)*1e9
			if ts >= start && ts < end {
				e := tailEntry(i)
				vals = append(vals, []any{e[0], e[1], map[string]any{"structuredMetadata": map[string]string{"detected_level": "info"}}})
			}
		}
		b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "streams",
			"result": []any{map[string]any{"stream": map[string]string{"job": "app"}, "values": vals}}}})
		_, _ = w.Write(b)
	})
	in := testInstance(t, f.srv.URL)
	r, err := in.BuildRequest(dataQuery("A", `{"expr":"{job=\"app\"}","queryType":"stream"}`), false)
	if err != nil {
		t.Fatal(err)
	}
	s := newRecordingSender()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.runTail(ctx, r, s) }()
	got := waitBodies(t, s, 5)
	cancel()
	<-done
	if strings.Join(got, ",") != "entry 1,entry 2,entry 3,entry 4,entry 5" {
		t.Errorf("rows %v", got)
	}
	if n := f.count("/loki/api/v1/query_range"); n < 2 {
		t.Errorf("gap read in %d range queries, want pages", n)
	}
}

// TestTailFrameGolden pins the frames of a live tail: the first with the
// schema (labels merged by the server, typed by name), then data only.
func TestTailFrameGolden(t *testing.T) {
	in := testInstance(t, "http://127.0.0.1:1")
	s := newRecordingSender()
	tl := &tailer{in: in, req: querymodel.Request{RefID: "A", Expr: `{job="app"}`}, sender: s, sent: map[tailKey]int64{}}
	for _, msg := range [][]byte{tailMessage(1, 2), tailMessage(3)} {
		m, err := client.DecodeTailMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		tl.accept(m)
		if err := tl.flush(); err != nil {
			t.Fatal(err)
		}
	}
	_, inc := s.snapshot()
	if len(s.jsons) != 2 || inc[0] != data.IncludeAll || inc[1] != data.IncludeDataOnly {
		t.Fatalf("%d frames, %v", len(s.jsons), inc)
	}
	var first, second any
	_ = json.Unmarshal(s.jsons[0], &first)
	_ = json.Unmarshal(s.jsons[1], &second)
	checkGolden(t, "stream_tail_first", first)
	checkGolden(t, "stream_tail_next", second)
}

// A connection that stays open but no longer answers (a server hung, a
// proxy that dropped the peer) is found by the heartbeat, and the tail
// reconnects without a gap.
func TestTailHeartbeatDetectsDeadConnection(t *testing.T) {
	fastTail(t, 1000)
	oldBeat, oldTimeout := tailHeartbeat, tailHeartbeatTimeout
	tailHeartbeat, tailHeartbeatTimeout = 30*time.Millisecond, 30*time.Millisecond
	t.Cleanup(func() { tailHeartbeat, tailHeartbeatTimeout = oldBeat, oldTimeout })
	f := newFakeServer(t)
	var conns atomic.Int32
	hung := make(chan struct{})
	f.handle("/loki/api/v1/tail", func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := r.Context()
		if n == 1 {
			_ = c.Write(ctx, websocket.MessageText, tailMessage(1, 2))
			// Never read again: pings go unanswered, and the socket
			// stays open until the test ends.
			select {
			case <-hung:
			case <-ctx.Done():
			}
			_ = c.CloseNow()
			return
		}
		_ = c.Write(ctx, websocket.MessageText, tailMessage(2, 3))
		c.CloseRead(ctx)
		<-ctx.Done()
	})
	defer close(hung)
	in := testInstance(t, f.srv.URL)
	r, err := in.BuildRequest(dataQuery("A", `{"expr":"{job=\"app\"}","queryType":"stream"}`), false)
	if err != nil {
		t.Fatal(err)
	}
	s := newRecordingSender()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.runTail(ctx, r, s) }()
	got := waitBodies(t, s, 3)
	cancel()
	<-done
	if strings.Join(got, ",") != "entry 1,entry 2,entry 3" {
		t.Errorf("rows %v", got)
	}
	if n := conns.Load(); n < 2 {
		t.Errorf("%d connections: the dead one was not replaced", n)
	}
}

func TestSubscribeStream(t *testing.T) {
	in := testInstance(t, "http://127.0.0.1:1")
	for _, c := range []struct {
		path, data string
		want       backend.SubscribeStreamStatus
	}{
		{"tail/x", `{"expr":"{job=\"app\"}"}`, backend.SubscribeStreamStatusOK},
		{"search/x", `{"expr":"{job=\"app\"} |= \"a\"","from":1714564800000,"to":1714568400000}`, backend.SubscribeStreamStatusOK},
		{"tail/x", `{"expr":"rate({job=\"app\"}[1m])"}`, backend.SubscribeStreamStatusNotFound},
		{"tail/x", `{"expr":""}`, backend.SubscribeStreamStatusNotFound},
		{"other/x", `{"expr":"{job=\"app\"}"}`, backend.SubscribeStreamStatusNotFound},
		{"tail/x", `not json`, backend.SubscribeStreamStatusNotFound},
	} {
		res, err := in.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: c.path, Data: json.RawMessage(c.data)})
		if err != nil || res.Status != c.want {
			t.Errorf("%s %s: %v %v", c.path, c.data, res, err)
		}
	}
	pub, _ := in.PublishStream(context.Background(), &backend.PublishStreamRequest{Path: "tail/x"})
	if pub.Status != backend.PublishStreamStatusPermissionDenied {
		t.Errorf("publish: %v", pub.Status)
	}
}

// searchServer holds one entry per minute over [from, from+n minutes) and
// answers range queries over any part of it; index stats count one chunk
// per hour.
func searchServer(t *testing.T, from time.Time, n int, gate func(call int)) *fakeServer {
	f := newFakeServer(t)
	// One chunk per hour of entries; the index counts those a range
	// overlaps, as the server's does.
	f.handle("/loki/api/v1/index/stats", func(w http.ResponseWriter, r *http.Request) {
		start, _ := parseInt(r.Form.Get("start"))
		end, _ := parseInt(r.Form.Get("end"))
		chunks, entries := 0, 0
		for h := 0; h < (n+59)/60; h++ {
			cs, ce := from.Add(time.Duration(h)*time.Hour).UnixNano(), from.Add(time.Duration(min(60*h+59, n-1))*time.Minute).UnixNano()
			if cs <= end && ce >= start {
				chunks++
				entries += min(60, n-60*h)
			}
		}
		_, _ = w.Write([]byte(`{"streams":1,"chunks":` + itoa(int64(chunks)) + `,"entries":` + itoa(int64(entries)) + `,"bytes":` + itoa(int64(entries*10)) + `}`))
	})
	var calls atomic.Int32
	f.handle("/loki/api/v1/query_range", func(w http.ResponseWriter, r *http.Request) {
		call := int(calls.Add(1))
		if gate != nil {
			gate(call)
		}
		start, _ := parseInt(r.Form.Get("start"))
		end, _ := parseInt(r.Form.Get("end"))
		limit, _ := parseInt(r.Form.Get("limit"))
		var vals [][2]string
		scanned := 0
		for i := 0; i < n; i++ {
			ts := from.Add(time.Duration(i) * time.Minute).UnixNano()
			if ts >= start && ts < end {
				scanned++
				vals = append(vals, [2]string{itoa(ts), "hit " + itoa(int64(i))})
			}
		}
		if r.Form.Get("direction") != "forward" {
			for i, j := 0, len(vals)-1; i < j; i, j = i+1, j-1 {
				vals[i], vals[j] = vals[j], vals[i]
			}
		}
		if int64(len(vals)) > limit {
			vals = vals[:limit]
		}
		b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "streams",
			"result": []any{map[string]any{"stream": map[string]string{"job": "app"}, "values": vals}},
			"stats": map[string]any{"summary": map[string]any{"totalBytesProcessed": scanned * 10, "totalPostFilterLines": scanned},
				"querier": map[string]any{"store": map[string]any{"totalChunksRef": (scanned + 59) / 60}}}}})
		_, _ = w.Write(b)
	})
	return f
}

func progressOf(t *testing.T, f *data.Frame) Progress {
	t.Helper()
	b, _ := json.Marshal(f.Meta.Custom.(map[string]any)["progress"])
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSearchStreamsSlicesWithProgress(t *testing.T) {
	from := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	const n = 24 * 60 // a day of entries, one a minute
	f := searchServer(t, from, n, nil)
	in := testInstance(t, f.srv.URL)
	_, r, err := in.streamRequest("search/x", json.RawMessage(`{"refId":"A","expr":"{job=\"app\"}","maxLines":100000,"from":`+
		itoa(from.UnixMilli())+`,"to":`+itoa(from.Add(24*time.Hour).UnixMilli())+`}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newRecordingSender()
	if err := in.runSearch(context.Background(), r, s); err != nil {
		t.Fatal(err)
	}
	fs, inc := s.snapshot()
	if len(fs) < 4 {
		t.Fatalf("%d frames: the search was not sliced", len(fs))
	}
	var last Progress
	seen := map[string]bool{}
	prevTS := int64(1 << 62)
	for i, fr := range fs {
		if inc[i] != data.IncludeAll {
			t.Errorf("frame %d without schema and progress", i)
		}
		p := progressOf(t, fr)
		if p.RangeCovered < last.RangeCovered || p.BytesScanned < last.BytesScanned || p.LinesSent < last.LinesSent ||
			p.ChunksCovered < last.ChunksCovered || p.ChunksScanned < last.ChunksScanned {
			t.Errorf("progress went back: %+v after %+v", p, last)
		}
		if p.Done != (i == len(fs)-1) {
			t.Errorf("frame %d done=%v", i, p.Done)
		}
		rows, _ := fr.RowLen()
		for j := 0; j < rows; j++ {
			b := fr.Fields[1].At(j).(string)
			ts := fr.Fields[0].At(j).(time.Time).UnixNano()
			if seen[b] || ts > prevTS {
				t.Fatalf("row %s repeated or out of order", b)
			}
			seen[b], prevTS = true, ts
		}
		last = p
	}
	// The first and the last message as Grafana Live carries them.
	checkGolden(t, "stream_search_first", fs[0])
	checkGolden(t, "stream_search_last", fs[len(fs)-1])
	if len(seen) != n || last.RangeCovered != 1 || last.ChunksCovered != 1 || last.LinesMatched != n || last.BytesScanned != n*10 || last.LimitReached {
		t.Errorf("final: %d rows, %+v", len(seen), last)
	}
	// The first slice is a small share of the range, newest first, and
	// covers the chunks of its part: the last of the day's 24.
	if p := progressOf(t, fs[0]); p.RangeCovered > 1.0/32 || p.SearchedTo != from.Add(24*time.Hour).UnixMilli() ||
		p.ChunksTotal != 24 || p.ChunksScanned != 1 || p.ChunksCovered != 1.0/24 || p.Slices != len(fs) {
		t.Errorf("first slice %+v", p)
	}
	// Chunk coverage follows the range: in the middle, about half.
	for _, fr := range fs {
		if p := progressOf(t, fr); p.RangeCovered >= 0.5 {
			if want := int64(math.Ceil(p.RangeCovered * 24)); p.ChunksScanned < want || p.ChunksScanned > want+1 {
				t.Errorf("%.2f of the range searched, %d of 24 chunks", p.RangeCovered, p.ChunksScanned)
			}
			break
		}
	}
}

func TestSearchStopsAtLineLimit(t *testing.T) {
	from := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	f := searchServer(t, from, 24*60, nil)
	in := testInstance(t, f.srv.URL)
	_, r, err := in.streamRequest("search/x", json.RawMessage(`{"expr":"{job=\"app\"}","direction":"forward","maxLines":150,"from":`+
		itoa(from.UnixMilli())+`,"to":`+itoa(from.Add(24*time.Hour).UnixMilli())+`}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newRecordingSender()
	if err := in.runSearch(context.Background(), r, s); err != nil {
		t.Fatal(err)
	}
	got := s.bodies()
	fs, _ := s.snapshot()
	p := progressOf(t, fs[len(fs)-1])
	if len(got) != 150 || got[0] != "hit 0" || got[149] != "hit 149" || !p.Done || !p.LimitReached || p.RangeCovered >= 1 {
		t.Errorf("%d rows (%s..), final %+v", len(got), got[0], p)
	}
}

func TestSearchSendsBeforeScanEnds(t *testing.T) {
	from := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	s := newRecordingSender()
	// The second slice is answered only once the first slice's frame has
	// reached Grafana: a search that waited for the whole scan would
	// never get there.
	gate := func(call int) {
		if call == 2 {
			select {
			case <-s.notify:
			case <-time.After(10 * time.Second):
				t.Error("second slice asked before the first was sent")
			}
		}
	}
	f := searchServer(t, from, 600, gate)
	in := testInstance(t, f.srv.URL)
	_, r, err := in.streamRequest("search/x", json.RawMessage(`{"expr":"{job=\"app\"}","from":`+
		itoa(from.UnixMilli())+`,"to":`+itoa(from.Add(10*time.Hour).UnixMilli())+`}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.runSearch(context.Background(), r, s); err != nil {
		t.Fatal(err)
	}
	if fs, _ := s.snapshot(); len(fs) < 2 {
		t.Errorf("%d frames", len(fs))
	}
}

func TestSearchSlices(t *testing.T) {
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(64 * time.Hour)
	for _, fwd := range []bool{false, true} {
		sl := searchSlices(start, end, fwd)
		var total time.Duration
		for i, s := range sl {
			total += s[1].Sub(s[0])
			if i > 0 && fwd && !s[0].Equal(sl[i-1][1]) || i > 0 && !fwd && !s[1].Equal(sl[i-1][0]) {
				t.Errorf("gap between slices %d and %d", i-1, i)
			}
		}
		if total != end.Sub(start) || sl[0][1].Sub(sl[0][0]) != time.Hour {
			t.Errorf("forward=%v: %d slices covering %v, first %v", fwd, len(sl), total, sl[0][1].Sub(sl[0][0]))
		}
	}
}

// packetRecorder is the gRPC side of a stream sender.
type packetRecorder struct {
	packets [][]byte
}

func (p *packetRecorder) Send(pkt *backend.StreamPacket) error {
	p.packets = append(p.packets, append([]byte(nil), pkt.Data...))
	return nil
}

func TestRunStreamSearch(t *testing.T) {
	from := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	f := searchServer(t, from, 120, nil)
	in := testInstance(t, f.srv.URL)
	var rec packetRecorder
	req := &backend.RunStreamRequest{Path: "search/q1", Data: json.RawMessage(`{"expr":"{job=\"app\"}","from":` +
		itoa(from.UnixMilli()) + `,"to":` + itoa(from.Add(2*time.Hour).UnixMilli()) + `}`)}
	if err := in.RunStream(context.Background(), req, backend.NewStreamSender(&rec)); err != nil {
		t.Fatal(err)
	}
	if len(rec.packets) < 2 || !strings.Contains(string(rec.packets[len(rec.packets)-1]), `"done":true`) {
		t.Errorf("%d packets, last %.300s", len(rec.packets), rec.packets[len(rec.packets)-1])
	}
	if err := in.RunStream(context.Background(), &backend.RunStreamRequest{Path: "bogus/x"}, backend.NewStreamSender(&rec)); err == nil {
		t.Error("unknown channel ran")
	}
}

func TestDisposeEndsStreams(t *testing.T) {
	fastTail(t, 1000)
	f := newFakeServer(t)
	f.handle("/loki/api/v1/tail", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.CloseRead(r.Context())
		<-r.Context().Done()
	})
	in := testInstance(t, f.srv.URL)
	var rec packetRecorder
	done := make(chan error, 1)
	go func() {
		done <- in.RunStream(context.Background(), &backend.RunStreamRequest{Path: "tail/x", Data: json.RawMessage(`{"expr":"{job=\"app\"}"}`)}, backend.NewStreamSender(&rec))
	}()
	time.Sleep(50 * time.Millisecond)
	in.Dispose()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tail ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tail kept running after Dispose")
	}
}

// Grafana subscribes to the channel a stream query's frame names
// (meta.channel) without subscription data: the plugin finds the query
// by the channel's key.
func TestTailChannelFromQueryData(t *testing.T) {
	fastTail(t, 1000)
	f := newFakeServer(t)
	asked := make(chan string, 1)
	f.handle("/loki/api/v1/tail", func(w http.ResponseWriter, r *http.Request) {
		asked <- r.Form.Get("query") + " limit=" + r.Form.Get("limit")
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_ = c.Write(r.Context(), websocket.MessageText, tailMessage(1))
		c.CloseRead(r.Context())
		<-r.Context().Done()
	})
	in := testInstance(t, f.srv.URL)
	dr := runQuery(t, in, nil, dataQuery("A", `{"expr":"{job=\"app\"}","queryType":"stream","workspace":"w","maxLines":20}`))
	if dr.Error != nil || len(dr.Frames) != 1 || dr.Frames[0].Meta.Channel == "" {
		t.Fatalf("stream query: %+v", dr)
	}
	path := strings.TrimPrefix(dr.Frames[0].Meta.Channel, "ds/ds-uid/")
	sub, err := in.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: path})
	if err != nil || sub.Status != backend.SubscribeStreamStatusOK {
		t.Fatalf("subscribe %s: %v %v", path, sub, err)
	}
	if sub, _ := in.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: "tail/unknown"}); sub.Status != backend.SubscribeStreamStatusNotFound {
		t.Errorf("unknown key without data: %v", sub.Status)
	}
	var rec packetRecorder
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- in.RunStream(ctx, &backend.RunStreamRequest{Path: path}, backend.NewStreamSender(&rec))
	}()
	select {
	case got := <-asked:
		if got != `{job="app", workspace="w"} limit=20` {
			t.Errorf("tailed %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no tail opened")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
