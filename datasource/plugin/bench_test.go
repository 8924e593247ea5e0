package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/logsift/logsift/pkg/sampledata"
)

// cannedLogs is a streams answer of n lines shaped like the server's:
// four services, each entry with its level and line number.
func cannedLogs(n int) []byte {
	streams := sampledata.Generate(sampledata.Options{Seed: 3, End: qTo, Span: time.Hour, Lines: n / 4})
	var result []any
	for _, s := range streams {
		var vals [][]any
		for i, e := range s.Entries {
			vals = append(vals, []any{itoa(e.Timestamp), string(e.Line),
				map[string]any{"structuredMetadata": map[string]string{"detected_level": "info", "line": itoa(int64(i + 1))}}})
		}
		result = append(result, map[string]any{"stream": s.Labels.Map(), "values": vals})
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "streams", "result": result,
		"stats": map[string]any{"summary": map[string]any{"execTime": 0.01}}}})
	return b
}

// BenchmarkQueryDataLogs is the plugin's own work on a log query: the
// HTTP round trip to a server that answers at once, decoding, the frame,
// and the Arrow encoding Grafana's gRPC call carries.
func BenchmarkQueryDataLogs(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(itoa(int64(n)), func(b *testing.B) {
			body := cannedLogs(n)
			f := newFakeServer(&testing.T{})
			f.handle("/loki/api/v1/query_range", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
			in := newInstance(backend.DataSourceInstanceSettings{UID: "b", URL: f.srv.URL})
			defer in.Dispose()
			q := dataQuery("A", `{"expr":"{job=~\".+\"}","maxLines":`+itoa(int64(n))+`}`)
			b.ReportAllocs()
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
		})
	}
}
