package chunk

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/logsift/logsift/pkg/corpus"
)

// benchChunks returns the entry lists the benchmarks encode: chunks of about
// 2 MiB of lines (the store's chunk size) from several corpus families when the corpus is present,
// otherwise generated access-log lines.
func benchChunks(b *testing.B) ([][]Entry, int64) {
	b.Helper()
	var sets [][][]byte
	if dir, ok := corpus.Dir(); ok {
		for _, rel := range []string{
			"elastic-examples/apache_access_combined.log",
			"elastic-examples/auth.log",
			"elastic-examples/kafka/kafka0/state-change.log.2016-12-19-16",
			"zeek-wrccdc/tsv/dns.log",
			"zeek-wrccdc/json/weird.json",
		} {
			data, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				b.Fatal(err)
			}
			data = data[:min(len(data), 8<<20)]
			sets = append(sets, bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")))
		}
	} else {
		sets = append(sets, genAccessLog(rand.New(rand.NewPCG(1, 2)), 60000))
	}
	var chunks [][]Entry
	var raw int64
	for _, lines := range sets {
		for _, g := range splitBytes(lines, 2<<20) {
			chunks = append(chunks, entriesOf(g, 1.7e18))
			for _, l := range g {
				raw += int64(len(l))
			}
		}
	}
	return chunks, raw
}

func BenchmarkEncode(b *testing.B) {
	chunks, raw := benchChunks(b)
	b.SetBytes(raw)
	b.ReportAllocs()
	var stored int64
	for b.Loop() {
		stored = 0
		for _, ents := range chunks {
			out, _, err := Encode(testLabels, ents, Options{})
			if err != nil {
				b.Fatal(err)
			}
			stored += int64(len(out))
		}
	}
	b.ReportMetric(float64(raw)/float64(stored), "raw/stored")
}

func encodeAll(b *testing.B, chunks [][]Entry) [][]byte {
	out := make([][]byte, len(chunks))
	for i, ents := range chunks {
		enc, _, err := Encode(testLabels, ents, Options{})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = enc
	}
	return out
}

// BenchmarkDecodeScan is the cost of a query no filter can help: decode
// every block and search its lines for an absent needle. MB/s is of raw
// line bytes.
func BenchmarkDecodeScan(b *testing.B) {
	chunks, raw := benchChunks(b)
	encoded := encodeAll(b, chunks)
	needle := []byte("no such text in any line")
	b.Run("block-index", func(b *testing.B) {
		b.SetBytes(raw)
		b.ReportAllocs()
		var buf BlockBuffer
		for b.Loop() {
			for _, enc := range encoded {
				c, err := Decode(enc)
				if err != nil {
					b.Fatal(err)
				}
				for i := range c.Meta().Blocks {
					if _, err := c.ReadBlock(i, &buf); err != nil {
						b.Fatal(err)
					}
					if bytes.Index(buf.Lines(), needle) >= 0 {
						b.Fatal("found the absent needle")
					}
				}
			}
		}
	})
	b.Run("per-line", func(b *testing.B) {
		b.SetBytes(raw)
		var buf BlockBuffer
		for b.Loop() {
			for _, enc := range encoded {
				c, err := Decode(enc)
				if err != nil {
					b.Fatal(err)
				}
				for i := range c.Meta().Blocks {
					ents, err := c.ReadBlock(i, &buf)
					if err != nil {
						b.Fatal(err)
					}
					for _, e := range ents {
						if bytes.Contains(e.Line, needle) {
							b.Fatal("found the absent needle")
						}
					}
				}
			}
		}
	})
}

func BenchmarkBlockTimestamps(b *testing.B) {
	chunks, _ := benchChunks(b)
	encoded := encodeAll(b, chunks)
	var n int64
	var ts []int64
	for b.Loop() {
		n = 0
		for _, enc := range encoded {
			c, _ := Decode(enc)
			for i := range c.Meta().Blocks {
				var err error
				if ts, err = c.BlockTimestamps(i, ts[:0]); err != nil {
					b.Fatal(err)
				}
				n += int64(len(ts))
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/float64(b.N), "ns/entry")
}

// BenchmarkMayContain is the cost of asking one chunk's filter about a
// needle it does not hold (ns/op is per chunk).
func BenchmarkMayContain(b *testing.B) {
	chunks, _ := benchChunks(b)
	encoded := encodeAll(b, chunks)
	filters := make([]*Filter, len(encoded))
	for i, enc := range encoded {
		c, err := Decode(enc)
		if err != nil {
			b.Fatal(err)
		}
		filters[i] = c.Filter()
	}
	for _, nd := range []string{"4bf92f3577b34da6", "10.99.88.77", "Connection reset by peer"} {
		needle := []byte(nd)
		b.Run("compiled/"+nd, func(b *testing.B) {
			compiled := CompileNeedle(needle, false)
			i := 0
			for b.Loop() {
				filters[i%len(filters)].MayContainNeedle(compiled)
				i++
			}
		})
		b.Run("bytes/"+nd, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				filters[i%len(filters)].MayContain(needle, false)
				i++
			}
		})
	}
}
