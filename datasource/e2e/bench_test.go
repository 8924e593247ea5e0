package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/logsift/logsift/pkg/cputime"
)

// execSeconds reads the server's exec time from a frame's statistics.
func execSeconds(fs data.Frames) float64 {
	for _, f := range fs {
		if f.Meta == nil {
			continue
		}
		for _, s := range f.Meta.Stats {
			if s.DisplayName == "Summary: exec time" {
				return s.Value
			}
		}
	}
	return 0
}

// BenchmarkQueryDataOverhead measures what the plugin adds to a query:
// QueryData through the plugin's gRPC interface, as Grafana calls it,
// against the same query sent straight to the server's HTTP API (answer
// read, not decoded), and against the server's own execution time.
//
//	vs-direct-ms/op     plugin round trip minus the direct HTTP query: the
//	                    plugin's own work (the < 5 ms budget)
//	overhead-ms/op      plugin round trip minus the server's exec time
//	                    (also counts the server writing its JSON answer)
//	plugin-cpu-ms/op    CPU time of the plugin process per query
func BenchmarkQueryDataOverhead(b *testing.B) {
	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)
	cases := []struct {
		name, json, expr string
		limit            int
		metric           bool
	}{
		{"logs-100", `{"expr":"{workspace=\"demo\"}","maxLines":100}`, `{workspace="demo"}`, 100, false},
		{"logs-1000", `{"expr":"{workspace=\"demo\"}","maxLines":1000}`, `{workspace="demo"}`, 1000, false},
		{"logs-filter-1000", `{"expr":"{workspace=\"demo\"} |= \"level=info\"","maxLines":1000}`, `{workspace="demo"} |= "level=info"`, 1000, false},
		{"metric-range", `{"expr":"sum by (job) (count_over_time({workspace=\"demo\"} [1m]))","step":"1m"}`, `sum by (job) (count_over_time({workspace="demo"} [1m]))`, 0, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			q := query{refID: "A", from: from, to: to, json: tc.json}
			queryData(b, nil, q) // warm up connections and caches
			var plugin, exec, direct time.Duration
			cpu0 := pluginCPU()
			for b.Loop() {
				resp, rpcTime := queryDataRaw(b, q)
				plugin += rpcTime
				res := decodeResult(b, resp, "A")
				if res.err != "" {
					b.Fatal(res.err)
				}
				exec += time.Duration(execSeconds(res.frames) * float64(time.Second))

				start := time.Now()
				directQuery(b, directURL(tc.expr, from, to, tc.limit, tc.metric))
				direct += time.Since(start)
			}
			n := float64(b.N)
			ms := func(d time.Duration) float64 { return float64(d) / n / 1e6 }
			if cpu0 >= 0 {
				b.ReportMetric(ms(pluginCPU()-cpu0), "plugin-cpu-ms/op")
			}
			b.ReportMetric(ms(plugin), "plugin-ms/op")
			b.ReportMetric(ms(exec), "server-exec-ms/op")
			b.ReportMetric(ms(direct), "direct-http-ms/op")
			b.ReportMetric(ms(plugin-exec), "overhead-ms/op")
			b.ReportMetric(ms(plugin-direct), "vs-direct-ms/op")
		})
	}
}

// directURL is the query_range request the plugin sends for a case.
func directURL(expr string, from, to time.Time, limit int, metric bool) string {
	v := url.Values{"query": {expr}, "start": {strconv.FormatInt(from.UnixNano(), 10)}, "end": {strconv.FormatInt(to.UnixNano(), 10)}}
	if metric {
		v.Set("step", "60")
	} else {
		v.Set("direction", "backward")
		v.Set("limit", strconv.Itoa(limit))
	}
	return h.serverURL + "/loki/api/v1/query_range?" + v.Encode()
}

// directQuery is the server's part of a query as a client sees it: the
// request and the whole answer read, not decoded, so that the difference
// to the plugin's round trip is all the plugin's own work (decoding, the
// frame, Arrow, gRPC).
func directQuery(tb testing.TB, u string) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("X-Scope-OrgID", tenant)
	req.Header.Set("X-Loki-Response-Encoding-Flags", "categorize-labels")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("direct query: %d %v", resp.StatusCode, err)
	}
}

// queryDataRaw times the QueryData call alone: Grafana decodes the
// frames on its side.
func queryDataRaw(tb testing.TB, q query) (*pluginv2.QueryDataResponse, time.Duration) {
	req := &pluginv2.QueryDataRequest{PluginContext: pluginContext(h.ds), Queries: []*pluginv2.DataQuery{{
		RefId: q.refID, MaxDataPoints: 1000, IntervalMS: 60000,
		TimeRange: &pluginv2.TimeRange{FromEpochMS: q.from.UnixMilli(), ToEpochMS: q.to.UnixMilli()},
		Json:      []byte(q.json),
	}}}
	start := time.Now()
	resp, err := h.data.QueryData(context.Background(), req)
	d := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, d
}

func decodeResult(tb testing.TB, resp *pluginv2.QueryDataResponse, refID string) result {
	r := resp.Responses[refID]
	fs, err := data.UnmarshalArrowFrames(r.Frames)
	if err != nil {
		tb.Fatal(err)
	}
	return result{frames: fs, err: r.Error, status: r.Status}
}

// BenchmarkSearchFirstFrame measures how soon a streaming search's first
// lines reach Grafana compared with the whole search.
func BenchmarkSearchFirstFrame(b *testing.B) {
	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)
	payload := `{"expr":"{workspace=\"demo\"} |= \"level=\"","maxLines":5000,"from":` + strconv.FormatInt(from.UnixMilli(), 10) +
		`,"to":` + strconv.FormatInt(to.UnixMilli(), 10) + `}`
	var first, total time.Duration
	for b.Loop() {
		start := time.Now()
		st, err := h.stream.RunStream(context.Background(), streamRequest("search/bench", payload))
		if err != nil {
			b.Fatal(err)
		}
		frames := 0
		for {
			msg, err := st.Recv()
			if err != nil {
				break
			}
			if frames == 0 && len(msg.Data) > 0 {
				first += time.Since(start)
			}
			frames++
		}
		total += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(first)/n/1e6, "first-frame-ms/op")
	b.ReportMetric(float64(total)/n/1e6, "complete-ms/op")
}

// pluginCPU is the CPU time the plugin process has used, or -1 where it
// cannot be read.
func pluginCPU() time.Duration {
	d, err := cputime.Process(h.plugin.ReattachConfig().Pid)
	if err != nil {
		return -1
	}
	return d
}
