//go:build unix

package tail

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/agent/build"
	"github.com/logsift/logsift/agent/ship"
	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/cputime"
)

// benchLines returns about n bytes of log lines: a real log from the
// shared corpus repeated when it is there, synthetic access-log lines
// otherwise.
func benchLines(b *testing.B, n int) []byte {
	b.Helper()
	root, _ := corpus.Dir()
	src, err := os.ReadFile(filepath.Join(root, "zeek-wrccdc", "tsv", "dns.log"))
	if err != nil || len(src) == 0 {
		rnd := rand.New(rand.NewPCG(1, 2))
		var buf bytes.Buffer
		for buf.Len() < 1<<20 {
			fmt.Fprintf(&buf, "10.%d.%d.%d - - [12/Mar/2026:10:%02d:%02d +0000] \"GET /api/v1/items/%d HTTP/1.1\" %d %d \"-\" \"curl/8.%d\"\n",
				rnd.IntN(256), rnd.IntN(256), rnd.IntN(256), rnd.IntN(60), rnd.IntN(60), rnd.IntN(100000),
				[]int{200, 200, 200, 404, 500}[rnd.IntN(5)], rnd.IntN(50000), rnd.IntN(10))
		}
		src = buf.Bytes()
	}
	out := make([]byte, 0, n+len(src))
	for len(out) < n {
		out = append(out, src...)
	}
	return out[:bytes.LastIndexByte(out[:n], '\n')+1]
}

// countingSink ships into a real spool (chunks written and fsynced) and
// counts the raw bytes of the lines it was given, via the chunks' tags.
type countingSink struct {
	spool *ship.Spool
	lines atomic.Int64
	bytes atomic.Int64
}

func (c *countingSink) ShipTagged(ctx context.Context, data, tag []byte, ack func()) error {
	tg, err := decodeTag(tag)
	if err == nil {
		c.bytes.Add(tg.end - tg.start)
	}
	return c.spool.ShipTagged(ctx, data, tag, ack)
}

// benchTail follows files until size bytes are read and all but the last
// partial chunk of each of files files are built and spooled (files 0:
// many small files, of which at most the buffer budget may still wait for
// its age cut).
func benchTail(b *testing.B, glob string, size int64, files int, mod func(*Options)) {
	b.Helper()
	sp, err := ship.Open(ship.Options{Dir: filepath.Join(b.TempDir(), "spool"), MaxBytes: 8 << 30, Logger: quiet(), Metrics: metrics.NewSet()})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	sink := &countingSink{spool: sp}
	opts := Options{
		Groups:        []Group{{Include: []string{glob}}},
		PositionsFile: filepath.Join(b.TempDir(), "positions.json"),
		Build:         build.Options{MaxAge: 200 * time.Millisecond},
		Logger:        quiet(),
		Metrics:       metrics.NewSet(),
	}
	if mod != nil {
		mod(&opts)
	}
	tl, err := New(opts, sink)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tl.Run(ctx)
	}()
	// Done when every byte is read and every full chunk is encoded and in
	// the spool; the last partial chunk of each file waits for max_age by
	// design, which is latency, not throughput.
	// With many small files, what is left is at most the buffer budget.
	left := int64(build.DefaultTargetBytes) * int64(files)
	if files == 0 {
		left = tl.opts.BufferBytes
	}
	for int64(tl.m.bytes.Get()) < size || sink.bytes.Load() < size-left {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}

// BenchmarkTailOneFile tails with level and service name discovery on, as
// the agent runs by default; BenchmarkTailOneFileNoDiscovery shows what
// the discovery costs.
func BenchmarkTailOneFile(b *testing.B) { benchTailOneFile(b, nil) }

func BenchmarkTailOneFileNoDiscovery(b *testing.B) {
	benchTailOneFile(b, func(o *Options) { o.NoLevels, o.NoServiceName = true, true })
}

func benchTailOneFile(b *testing.B, mod func(*Options)) {
	dir := b.TempDir()
	data := benchLines(b, 64<<20)
	if err := os.WriteFile(filepath.Join(dir, "big.log"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	cpu := cputime.Self()
	for range b.N {
		benchTail(b, filepath.Join(dir, "*.log"), int64(len(data)), 1, mod)
	}
	reportCPU(b, cpu, int64(len(data))*int64(b.N))
}

// reportCPU reports throughput per CPU-second, which other load on the
// machine does not distort the way it distorts wall-clock MB/s.
func reportCPU(b *testing.B, start time.Duration, bytes int64) {
	if used := cputime.Self() - start; used > 0 {
		b.ReportMetric(float64(bytes)/(1<<20)/used.Seconds(), "MB/cpu-s")
	}
}

func BenchmarkTail1000Files(b *testing.B) {
	dir := b.TempDir()
	data := benchLines(b, 64<<10)
	for i := range 1000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.log", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	total := int64(len(data)) * 1000
	b.SetBytes(total)
	var ms runtime.MemStats
	b.ResetTimer()
	cpu := cputime.Self()
	for range b.N {
		benchTail(b, filepath.Join(dir, "*.log"), total, 0, nil)
	}
	b.StopTimer()
	reportCPU(b, cpu, total*int64(b.N))
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}
