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
	"github.com/logsift/logsift/pkg/store"
)

// jsonBench is a store of real JSON lines: the Zeek DNS and "weird" logs of
// the corpus (zeek-wrccdc/json), repeated until about LOGSIFT_BENCH_MB of
// raw lines (150 by default), the copies shifted in time so that they
// follow one another over 24 hours.
var jsonBench sharedStore

func loadJSONBench(b *testing.B) *Engine {
	root := corpus.Require(b)
	return jsonBench.open(b, "logsift-json-bench-", store.Options{}, func(ctx context.Context, st *store.Store) error {
		var files [][][]byte
		var per int64 // raw bytes of one copy
		for _, name := range []string{"dns.json", "weird.json"} {
			data, err := os.ReadFile(filepath.Join(root, "zeek-wrccdc", "json", name))
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
		t := jsonBench.start.UnixNano()
		for c := 0; c < copies; c++ {
			for f, ls := range files {
				s := store.Stream{Labels: labels.New("job", "zeek", "log", fmt.Sprint(f))}
				for i, l := range ls {
					s.Entries = append(s.Entries, chunk.Entry{Timestamp: t, Line: l})
					t += step
					jsonBench.raw += int64(len(l))
					if len(s.Entries) == 4000 || i == len(ls)-1 {
						if err := st.Append(ctx, "t", []store.Stream{s}); err != nil {
							return err
						}
						s.Entries = s.Entries[:0]
					}
				}
			}
		}
		return st.Flush(ctx)
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
