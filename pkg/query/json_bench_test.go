package query

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/levels"
	"github.com/logsift/logsift/pkg/store"
)

// jsonBench is a store of real JSON lines: the Zeek DNS and "weird" logs of
// the corpus (zeek-wrccdc/json).
var jsonBench sharedStore

func loadJSONBench(b *testing.B) *Engine {
	return loadCorpusBench(b, &jsonBench, corpusBenchOptions{job: "zeek"}, "zeek-wrccdc/json/dns.json", "zeek-wrccdc/json/weird.json")
}

// accessBench is a store of the corpus's real Apache combined access log
// (elastic-examples/apache_access_combined.log, 10,000 lines).
var accessBench sharedStore

func loadAccessBench(b *testing.B) *Engine {
	return loadCorpusBench(b, &accessBench, corpusBenchOptions{job: "apache"}, accessLog)
}

// accessLevelsBench is accessBench with the structured metadata a server
// gives pushed entries: detected_level on every one ("unknown" on nearly
// all access lines), as limits.discover_log_levels adds it.
var accessLevelsBench sharedStore

func loadAccessLevelsBench(b *testing.B) *Engine {
	return loadCorpusBench(b, &accessLevelsBench, corpusBenchOptions{job: "apache", levels: true}, accessLog)
}

// accessLZ4Bench is accessLevelsBench in chunks of the LZ4 codec
// (store.chunk_codec: lz4).
var accessLZ4Bench sharedStore

func loadAccessLZ4Bench(b *testing.B) *Engine {
	return loadCorpusBench(b, &accessLZ4Bench, corpusBenchOptions{job: "apache", levels: true, codec: chunk.CodecLZ4}, accessLog)
}

// accessCompactedBench is accessLevelsBench after the store's compaction
// has re-encoded every chunk with the server's default settings, as a
// server's data is some minutes after it was written.
var accessCompactedBench sharedStore

func loadAccessCompactedBench(b *testing.B) *Engine {
	return loadCorpusBench(b, &accessCompactedBench, corpusBenchOptions{job: "apache", levels: true, compact: true, compactCodec: store.DefaultCompaction().Codec}, accessLog)
}

// accessCompactedZstdBench is accessCompactedBench with compaction.codec
// zstd: the chunks re-encoded at zstd's better level, the smallest.
var accessCompactedZstdBench sharedStore

func loadAccessCompactedZstdBench(b *testing.B) *Engine {
	return loadCorpusBench(b, &accessCompactedZstdBench, corpusBenchOptions{job: "apache", levels: true, compact: true, compactCodec: "zstd"}, accessLog)
}

const accessLog = "elastic-examples/apache_access_combined.log"

// corpusBenchOptions say how loadCorpusBench stores the corpus files.
type corpusBenchOptions struct {
	job     string
	levels  bool        // each entry carries detected_level, as the server's ingest sets it
	codec   chunk.Codec // of the chunks written at flush; 0 is the default
	compact bool        // compact the store after the flush
	// compactCodec is store.compaction.codec: what compaction writes
	// ("": each chunk's own codec).
	compactCodec string
}

// loadCorpusBench fills set with the corpus files at paths (relative to the
// corpus root), one stream per file labelled job and log=<index>, repeated
// until about LOGSIFT_BENCH_MB of raw lines (150 by default), the copies
// shifted in time so that they follow one another over 24 hours. The
// copies are further apart than a block, so a block never holds the same
// line twice and compresses as the file itself does.
func loadCorpusBench(b *testing.B, set *sharedStore, o corpusBenchOptions, paths ...string) *Engine {
	root := corpus.Require(b)
	job := o.job
	return set.open(b, "logsift-"+job+"-bench-", store.Options{Chunk: chunk.Options{Codec: o.codec}, Compaction: store.CompactionOptions{Codec: o.compactCodec}}, func(ctx context.Context, st *store.Store) error {
		var files [][][]byte
		var per int64 // raw bytes of one copy
		for _, name := range paths {
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
			if err != nil {
				return err
			}
			ls := corpus.Lines(data)
			for _, l := range ls {
				per += int64(len(l))
			}
			files = append(files, ls)
		}
		// Entries evenly over 24 hours, in order, whatever the size.
		var total int
		for _, ls := range files {
			total += len(ls)
		}
		copies := max(1, int(benchSize()/per))
		step := int64(24*time.Hour) / int64(copies*total)
		t := set.start.UnixNano()
		for c := 0; c < copies; c++ {
			for f, ls := range files {
				s := store.Stream{Labels: labels.New("job", job, "log", fmt.Sprint(f))}
				for i, l := range ls {
					e := chunk.Entry{Timestamp: t, Line: l}
					if o.levels {
						e.Metadata = levels.Metadata(levels.FromLine(l))
					}
					s.Entries = append(s.Entries, e)
					t += step
					set.raw += int64(len(l))
					set.lines++
					if len(s.Entries) == 4000 || i == len(ls)-1 {
						if err := st.Append(ctx, "t", []store.Stream{s}); err != nil {
							return err
						}
						s.Entries = s.Entries[:0]
					}
				}
			}
		}
		if err := st.Flush(ctx); err != nil || !o.compact {
			return err
		}
		return st.Compact(ctx)
	})
}

// BenchmarkJSONFilter is the third speed target: a json parse-and-filter
// query over every line at 300 MB/s or more (b.SetBytes is the raw size,
// so the MB/s column is the figure).
func BenchmarkJSONFilter(b *testing.B) {
	eng := loadJSONBench(b)
	for _, q := range []string{
		`sum by (qtype_name) (count_over_time({job="zeek"} | json | qtype_name=~"A|AAAA" [1h]))`,
		`sum(count_over_time({job="zeek"} | json rcode="rcode_name" | rcode!="NOERROR" [1h]))`,
	} {
		b.Run(q[:min(len(q), 60)], func(b *testing.B) { benchQuery(b, eng, &jsonBench, q) })
	}
}

// BenchmarkAccessPattern runs the pattern target on real access lines
// (BenchmarkSumByStatusPattern's generated lines have random addresses,
// sizes and ids in every line and compress less).
func BenchmarkAccessPattern(b *testing.B) {
	q := `sum by (status) (count_over_time({job="apache"} | pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <size> <_>" [1h]))`
	b.Run("plain", func(b *testing.B) { benchQuery(b, loadAccessBench(b), &accessBench, q) })
	b.Run("levels", func(b *testing.B) { benchQuery(b, loadAccessLevelsBench(b), &accessLevelsBench, q) })
	b.Run("levels-lz4", func(b *testing.B) { benchQuery(b, loadAccessLZ4Bench(b), &accessLZ4Bench, q) })
	b.Run("levels-compacted", func(b *testing.B) { benchQuery(b, loadAccessCompactedBench(b), &accessCompactedBench, q) })
	b.Run("levels-compacted-zstd", func(b *testing.B) { benchQuery(b, loadAccessCompactedZstdBench(b), &accessCompactedZstdBench, q) })
}

// BenchmarkCountByLevel is the query Grafana's Logs Drilldown runs for the
// volume of every service, by level: a count grouped by the structured
// metadata detected_level, which every entry of the access log carries.
// It reads timestamps and metadata, never a line.
func BenchmarkCountByLevel(b *testing.B) {
	q := `sum by (detected_level) (count_over_time({job="apache"}[1m]))`
	benchQuery(b, loadAccessLevelsBench(b), &accessLevelsBench, q)
}
