package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/labels"
)

// benchPushLines returns about 1 MiB of the corpus's Apache access log, or
// synthetic lines of the same shape when the corpus is absent.
func benchPushLines(b *testing.B) [][]byte {
	if dir, ok := corpus.Dir(); ok {
		data, err := os.ReadFile(filepath.Join(dir, "elastic-examples", "apache_access_combined.log"))
		if err == nil {
			var lines [][]byte
			size := 0
			for _, l := range corpus.Lines(data) {
				if size >= 1<<20 {
					break
				}
				lines = append(lines, l)
				size += len(l)
			}
			return lines
		}
	}
	b.Log("corpus absent: synthetic lines")
	var lines [][]byte
	for size := 0; size < 1<<20; {
		l := fmt.Appendf(nil, `10.0.%d.%d - - [17/May/2015:10:05:%02d +0000] "GET /articles/%d HTTP/1.1" 200 %d "-" "Mozilla/5.0 (X11; Linux x86_64)"`, size%255, size%13, size%60, size, size%9999)
		lines = append(lines, l)
		size += len(l)
	}
	return lines
}

// BenchmarkAppendParallel measures Append end to end (WAL write and fsync,
// applying to the heads, cutting and flushing chunks under the default
// head budget) with four concurrent 1 MiB pushes of 8 streams, as the
// ingest benchmark sends them. MB/s counts raw line bytes acknowledged.
func BenchmarkAppendParallel(b *testing.B) {
	lines := benchPushLines(b)
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	raw := 0
	for _, l := range lines {
		raw += len(l)
	}
	var next atomic.Int64
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	b.SetBytes(int64(raw))
	b.SetParallelism(max(1, 4/runtime.GOMAXPROCS(0))) // about 4 pushes in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			push := next.Add(1)
			streams := make([]Stream, 8)
			for i := range streams {
				streams[i].Labels = labels.New("job", "apache", "host", fmt.Sprintf("web-%d", i))
			}
			for i, l := range lines {
				st := &streams[i%len(streams)]
				st.Entries = append(st.Entries, chunk.Entry{Timestamp: base + push*int64(time.Second) + int64(i), Line: l})
			}
			if err := s.Append(context.Background(), "t", streams); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		b.Fatal(err)
	}
}
