package importer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/cputime"
)

// benchInput writes about size bytes of log lines to dir: the corpus file
// rel repeated when the corpus is present, else generated access-log lines.
func benchInput(b *testing.B, rel string, size int) []byte {
	var unit []byte
	if dir, ok := corpus.Dir(); ok {
		unit, _ = os.ReadFile(filepath.Join(dir, rel))
	}
	if len(unit) == 0 {
		var buf bytes.Buffer
		for i := 0; buf.Len() < 1<<20; i++ {
			fmt.Fprintf(&buf, "10.0.%d.%d - - [17/May/2015:10:%02d:%02d +0000] \"GET /articles/%d HTTP/1.1\" 200 %d \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"\n", i%256, i%200, i/60%60, i%60, i, 1000+i%5000)
		}
		unit = buf.Bytes()
	}
	out := make([]byte, 0, size+len(unit))
	for len(out) < size {
		out = append(out, unit...)
	}
	return out
}

func benchImport(b *testing.B, name string, data []byte, raw int, mods ...func(*Options)) {
	path := writeFile(b, filepath.Join(b.TempDir(), name), data)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Self()
	defer func() {
		// MB per CPU-second does not depend on what else the machine
		// runs: times the cores a quiet machine gives, it bounds MB/s.
		if cpu := cputime.Self() - cpu0; cpu > 0 {
			b.ReportMetric(float64(raw)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
		}
	}()
	for i := 0; i < b.N; i++ {
		sink := newFakeShipper(b)
		sink.noStore = true
		opts := Options{Paths: []string{path}, Workspace: "bench", Logger: log}
		for _, m := range mods {
			m(&opts)
		}
		sum, err := Run(context.Background(), opts, sink)
		if err != nil {
			b.Fatal(err)
		}
		if sum.Bytes != int64(raw) {
			b.Fatalf("imported %d bytes, want %d", sum.Bytes, raw)
		}
	}
}

// BenchmarkImportPlain is the whole pipeline (read, detect, assemble,
// encode, ship to a no-op shipper, acknowledge) on a plain access log.
func BenchmarkImportPlain(b *testing.B) {
	data := benchInput(b, "elastic-examples/apache_access_combined.log", 64<<20)
	benchImport(b, "access.log", data, len(data))
}

// BenchmarkImportPlainNoDiscovery is BenchmarkImportPlain without level
// and service name discovery: the difference is what they cost.
func BenchmarkImportPlainNoDiscovery(b *testing.B) {
	data := benchInput(b, "elastic-examples/apache_access_combined.log", 64<<20)
	benchImport(b, "access.log", data, len(data), func(o *Options) { o.NoLevels, o.NoServiceName = true, true })
}

// BenchmarkImportGzip is the same through gzip; compare with
// BenchmarkGunzip for the speed of decompression alone.
func BenchmarkImportGzip(b *testing.B) {
	data := benchInput(b, "elastic-examples/apache_access_combined.log", 64<<20)
	benchImport(b, "access.log.gz", gzipBytes(b, data), len(data))
}

// BenchmarkGunzip is decompression alone, the floor for BenchmarkImportGzip.
func BenchmarkGunzip(b *testing.B) {
	data := benchInput(b, "elastic-examples/apache_access_combined.log", 64<<20)
	gz := gzipBytes(b, data)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := io.Copy(io.Discard, r); n != int64(len(data)) {
			b.Fatal("short read")
		}
	}
}

// BenchmarkImportSyslog is the pipeline on short syslog lines, where the
// cost per entry shows more than the cost per byte.
func BenchmarkImportSyslog(b *testing.B) {
	data := benchInput(b, "elastic-examples/auth.log", 64<<20)
	benchImport(b, "auth.log", data, len(data))
}
