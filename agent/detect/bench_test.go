package detect

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/logsift/logsift/pkg/corpus"
)

// benchLines returns the lines of a corpus file, or generated lines in
// the same format when the corpus is absent.
func benchLines(b *testing.B, rel string, gen func(i int) string) [][]byte {
	var data []byte
	if dir, ok := corpus.Dir(); ok {
		data, _ = os.ReadFile(filepath.Join(dir, rel))
	}
	if len(data) == 0 {
		var buf bytes.Buffer
		for i := 0; buf.Len() < 2<<20; i++ {
			buf.WriteString(gen(i))
			buf.WriteByte('\n')
		}
		data = buf.Bytes()
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
}

// benchDetect measures detection plus parsing, record assembly and level
// detection on one core (the importer's per-file work, minus I/O and
// chunk encoding).
func benchDetect(b *testing.B, ls [][]byte) {
	n := 0
	for _, l := range ls {
		n += len(l) + 1
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := Detect(ls[:min(len(ls), SampleLines)], FileInfo{ModTime: ref}, Settings{})
		recs := 0
		a := NewAssembler(p, func(r *Record) error { recs++; return nil })
		for _, l := range ls {
			_ = a.Line(l)
		}
		_ = a.Close()
		if recs == 0 {
			b.Fatal("no records")
		}
	}
}

func BenchmarkDetectAccessLog(b *testing.B) {
	benchDetect(b, benchLines(b, "elastic-examples/apache_access_combined.log", func(i int) string {
		return fmt.Sprintf(`10.0.%d.%d - - [17/May/2015:10:%02d:%02d +0000] "GET /a/%d HTTP/1.1" 200 %d "-" "Mozilla/5.0 (X11; Linux x86_64)"`, i%256, i%200, i/60%60, i%60, i, i%5000)
	}))
}

func BenchmarkDetectAuthLog(b *testing.B) {
	benchDetect(b, benchLines(b, "elastic-examples/auth.log", func(i int) string {
		return fmt.Sprintf("Mar 27 13:%02d:%02d ip-10-77-20-248 sshd[%d]: Invalid user admin from 85.245.107.%d port %d", i/60%60, i%60, 1000+i, i%256, 40000+i%20000)
	}))
}

func BenchmarkDetectGCLog(b *testing.B) {
	benchDetect(b, benchLines(b, "elastic-examples/kafka/kafka0/kafkaServer-gc.log", func(i int) string {
		if i%25 == 0 {
			return fmt.Sprintf("2016-12-19T16:%02d:%02d.725+0100: 1.595: [GC pause (G1 Evacuation Pause) (young), 0.0096173 secs]", i/60%60, i%60)
		}
		return "      [Ext Root Scanning (ms):  2.1]"
	}))
}
