package frames

import (
	"strconv"
	"testing"
	"time"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/pkg/cputime"
	"github.com/logsift/logsift/pkg/sampledata"
)

// benchResult is a streams answer of about n lines shaped like the
// server's for the e2e data: four streams of six labels, every entry
// with its level and line number as structured metadata.
func benchResult(n int) *client.Result {
	streams := sampledata.Generate(sampledata.Options{Seed: 3, End: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Span: time.Hour, Lines: n / 4})
	res := &client.Result{Type: client.ResultStreams}
	for _, s := range streams {
		ls := client.FromMap(s.Labels.Map())
		ls = client.FromMap(map[string]string{"env": "demo", "file": "var/log/" + ls.Get("job") + ".log", "workspace": "demo",
			"host": ls.Get("host"), "job": ls.Get("job"), "service_name": ls.Get("job")})
		st := client.Stream{Labels: ls}
		for i := len(s.Entries) - 1; i >= 0; i-- { // newest first, as asked
			e := s.Entries[i]
			st.Entries = append(st.Entries, client.Entry{Timestamp: e.Timestamp, Line: string(e.Line),
				Metadata: client.Labels{{Name: "detected_level", Value: "info"}, {Name: "line", Value: strconv.Itoa(i + 1)}}})
		}
		res.Streams = append(res.Streams, st)
	}
	return res
}

// BenchmarkLogs is building the log-lines frame of a 1,000-line answer;
// ref is the builder before per-stream layouts, for comparison.
func BenchmarkLogs(b *testing.B) {
	res := benchResult(1000)
	b.Run("layouts", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cputime.Self()
		for b.Loop() {
			Logs(res, LogsOptions{RefID: "A"})
		}
		reportCPU(b, cpu)
	})
	b.Run("ref", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cputime.Self()
		for b.Loop() {
			refLogs(res, LogsOptions{RefID: "A"})
		}
		reportCPU(b, cpu)
	})
}

// reportCPU reports the CPU time per operation since start (cputime.Self).
func reportCPU(b *testing.B, start time.Duration) {
	if ms, ok := cputime.PerOp(start, b.N); ok {
		b.ReportMetric(ms, "cpu-ms/op")
	}
}
