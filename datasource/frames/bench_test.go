package frames

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/datasource/client"
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
		cpu := processCPU()
		for b.Loop() {
			Logs(res, LogsOptions{RefID: "A"})
		}
		reportCPU(b, cpu)
	})
	b.Run("ref", func(b *testing.B) {
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			refLogs(res, LogsOptions{RefID: "A"})
		}
		reportCPU(b, cpu)
	})
}

// processCPU is the CPU time this process has used, every thread and
// the garbage collector included (Linux /proc), or -1 where it cannot
// be read. Unlike wall time it hardly grows when other work shares the
// machine, so benchmarks report it per operation as cpu-ms/op.
func processCPU() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// reportCPU reports the CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	if end := processCPU(); start >= 0 && end >= 0 {
		b.ReportMetric(float64(end-start)/float64(b.N)/1e6, "cpu-ms/op")
	}
}
