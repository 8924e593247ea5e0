package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime/debug"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/logsift/logsift/pkg/cputime"
	"github.com/logsift/logsift/pkg/sampledata"
)

// cannedLogs is a streams answer of n lines as the server writes it:
// its keys in its order (the result type before the result), four
// services with their entries newest first, each entry with its level
// and line number.
func cannedLogs(n int) []byte {
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][]any           `json:"values"`
	}
	type answer struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string         `json:"resultType"`
			Result     []stream       `json:"result"`
			Stats      map[string]any `json:"stats"`
		} `json:"data"`
	}
	a := answer{Status: "success"}
	a.Data.ResultType = "streams"
	a.Data.Stats = map[string]any{"summary": map[string]any{"execTime": 0.01}}
	for _, s := range sampledata.Generate(sampledata.Options{Seed: 3, End: qTo, Span: time.Hour, Lines: n / 4}) {
		st := stream{Stream: s.Labels.Map()}
		for i := len(s.Entries) - 1; i >= 0; i-- {
			e := s.Entries[i]
			st.Values = append(st.Values, []any{itoa(e.Timestamp), string(e.Line),
				map[string]any{"structuredMetadata": map[string]string{"detected_level": "info", "line": itoa(int64(i + 1))}}})
		}
		a.Data.Result = append(a.Data.Result, st)
	}
	b, _ := json.Marshal(a)
	return b
}

// BenchmarkQueryDataLogs is the plugin's own work on a log query: the
// HTTP round trip to a server that answers at once, decoding, the frame,
// and the Arrow encoding Grafana's gRPC call carries.
func BenchmarkQueryDataLogs(b *testing.B) {
	// As the plugin's main sets it: with the default the collector runs
	// on nearly every query and dominates the figures.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for _, n := range []int{100, 1000} {
		b.Run(itoa(int64(n)), func(b *testing.B) {
			body := cannedLogs(n)
			f := newFakeServer(&testing.T{})
			f.handle("/loki/api/v1/query_range", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
			in := newInstance(backend.DataSourceInstanceSettings{UID: "b", URL: f.srv.URL})
			defer in.Dispose()
			q := dataQuery("A", `{"expr":"{job=~\".+\"}","maxLines":`+itoa(int64(n))+`}`)
			b.ReportAllocs()
			cpu := cputime.Self()
			for b.Loop() {
				resp, _ := in.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{q}})
				dr := resp.Responses["A"]
				if dr.Error != nil {
					b.Fatal(dr.Error)
				}
				if _, err := dr.Frames.MarshalArrow(); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports the CPU time per operation since start (cputime.Self).
func reportCPU(b *testing.B, start time.Duration) {
	if ms, ok := cputime.PerOp(start, b.N); ok {
		b.ReportMetric(ms, "cpu-ms/op")
	}
}
