package client

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/cputime"
	"github.com/logsift/logsift/pkg/sampledata"
)

// benchAnswer is a query_range answer of about n lines as the server
// writes it for the e2e data (keys in its order): four streams of six
// labels, every entry with its level and line number as structured
// metadata.
func benchAnswer(n int) []byte {
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
	a.Data.ResultType = ResultStreams
	a.Data.Stats = map[string]any{"summary": map[string]any{"execTime": 0.01, "totalEntriesReturned": n}}
	for _, s := range sampledata.Generate(sampledata.Options{Seed: 3, End: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Span: time.Hour, Lines: n / 4}) {
		job := s.Labels.Get("job")
		st := stream{Stream: map[string]string{"env": "demo", "file": "var/log/" + job + ".log", "host": s.Labels.Get("host"),
			"job": job, "service_name": job, "workspace": "demo"}}
		for i := len(s.Entries) - 1; i >= 0; i-- { // newest first, as asked
			e := s.Entries[i]
			st.Values = append(st.Values, []any{strconv.FormatInt(e.Timestamp, 10), string(e.Line),
				map[string]any{"structuredMetadata": map[string]string{"detected_level": "info", "line": strconv.Itoa(i + 1)}}})
		}
		a.Data.Result = append(a.Data.Result, st)
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkDecodeStreams is decoding a 1,000-line answer.
func BenchmarkDecodeStreams(b *testing.B) {
	body := string(benchAnswer(1000))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu := cputime.Self()
	for b.Loop() {
		if _, err := decodeQuery(body); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// reportCPU reports the CPU time per operation since start (cputime.Self).
func reportCPU(b *testing.B, start time.Duration) {
	if ms, ok := cputime.PerOp(start, b.N); ok {
		b.ReportMetric(ms, "cpu-ms/op")
	}
}
