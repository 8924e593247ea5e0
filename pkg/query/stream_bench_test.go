package query

import (
	"context"
	"testing"
	"time"
)

// streamBenchQuery matches about one line in a thousand of the benchmark
// set, fewer than the limit: the answer needs the whole range scanned, so
// the time to the first batch can be set against the time of the scan.
const streamBenchQuery = `{job="x"} |= "/checkout" |= "\" 503 "`

func streamBenchParams(dir Direction) Params {
	return Params{Tenant: "t", Query: streamBenchQuery, Start: benchData.start, End: benchData.start.Add(24 * time.Hour), Limit: 5000, Direction: dir}
}

// BenchmarkStreamFirstBatch reports, for a streaming search over the
// 150 MB benchmark set, the time until the first batch with entries
// (first-batch-ms) and until the last batch (ns/op); compare with
// BenchmarkLogsWholeScan, the same query answered at once.
func BenchmarkStreamFirstBatch(b *testing.B) {
	for _, dir := range []Direction{Backward, Forward} {
		b.Run(map[Direction]string{Backward: "backward", Forward: "forward"}[dir], func(b *testing.B) {
			eng := loadBenchData(b)
			p := streamBenchParams(dir)
			ctx := context.Background()
			var first time.Duration
			var batches, entries int64
			b.SetBytes(benchData.raw)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				seen := false
				res, err := eng.StreamQuery(ctx, p, func(bt *Batch) error {
					if !seen && len(bt.Streams) > 0 {
						first += time.Since(start)
						seen = true
					}
					batches++
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				entries += res.Stats.EntriesReturned
			}
			n := float64(b.N)
			b.ReportMetric(float64(first)/n/1e6, "first-batch-ms")
			b.ReportMetric(float64(batches)/n, "batches/op")
			b.ReportMetric(float64(entries)/n, "entries/op")
		})
	}
}

// BenchmarkLogsWholeScan is the same query through Logs.
func BenchmarkLogsWholeScan(b *testing.B) {
	for _, dir := range []Direction{Backward, Forward} {
		b.Run(map[Direction]string{Backward: "backward", Forward: "forward"}[dir], func(b *testing.B) {
			eng := loadBenchData(b)
			p := streamBenchParams(dir)
			ctx := context.Background()
			b.SetBytes(benchData.raw)
			b.ResetTimer()
			for b.Loop() {
				if _, err := eng.Exec(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
