package chunk

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

var measure = flag.Bool("measure", false, "run TestMeasureCorpus: print the corpus measurements quoted in docs/formats/chunk.md")

// measureChunkSize is the raw size at which the measurement cuts each
// corpus file into chunks, as a store would cut a stream.
const measureChunkSize = 2 << 20

// TestMeasureCorpus prints the tables in docs/formats/chunk.md. It asserts
// nothing about sizes or speeds (they are measurements, not contracts) but
// fails on any false negative it meets on the way.
//
//	go test ./pkg/chunk -run TestMeasureCorpus -measure -count=1 -v
func TestMeasureCorpus(t *testing.T) {
	if !*measure {
		t.Skip("measurement only: pass -measure")
	}
	streams := loadCorpus(t, 0)
	out := os.Stdout
	fmt.Fprintf(out, "\ncorpus: %d files, %.1f MB of line bytes, chunks cut at %d MiB as the store does\n", len(streams), float64(sumRaw(streams))/1e6, measureChunkSize>>20)

	q := newNeedleSet(streams)
	fmt.Fprintf(out, "\n## Stored size and filter precision by family (default options)\n\n")
	res := measureConfig(t, streams, q, Options{}, true)
	printFamilies(out, res)

	fmt.Fprintf(out, "\n## Exact gram sets: the best any filter over these grams could do (256 KiB blocks)\n\n")
	measureExact(t, out, streams, q)

	fmt.Fprintf(out, "\n## Block size (whole corpus; 2 MiB blocks = one filter per chunk)\n\n")
	tw := table(out, "block size", "raw/stored", "filter/raw", "filter/compressed", "avg FPR (block)", "scan share", "encode MB/s", "decode MB/s")
	for _, bs := range []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20} {
		r := measureConfig(t, streams, q, Options{BlockSize: bs}, false).all
		row(tw, fmt.Sprintf("%d KiB", bs>>10), r.ratio(), pct(r.filter, r.raw), pct(r.filter, r.data), pct(r.avgFPR()), pct(r.scanShare()), r.encMBs(), r.decMBs())
	}
	tw.Flush()

	fmt.Fprintf(out, "\n## Filter fill target (256 KiB blocks, whole corpus)\n\n")
	tw = table(out, "fill", "filter/raw", "filter/compressed", "raw/stored", "avg FPR (block)", "scan share")
	saved := filterParams
	for _, fill := range []float64{0.3, 0.4, 0.5, 0.6, 0.7} {
		filterParams.fill = fill
		r := measureConfig(t, streams, q, Options{}, false).all
		row(tw, fmt.Sprintf("%.1f", fill), pct(r.filter, r.raw), pct(r.filter, r.data), r.ratio(), pct(r.avgFPR()), pct(r.scanShare()))
	}
	filterParams = saved
	tw.Flush()

	fmt.Fprintf(out, "\n## Codec on the line sections (256 KiB blocks, whole corpus, one core)\n\n")
	measureCodecs(t, out, streams)
}

func sumRaw(streams []*corpusStream) (n int) {
	for _, s := range streams {
		n += s.raw
	}
	return n
}

// needleSet holds the absent-needle generators: each kind of needle a user
// might search for that a given block does not contain.
type needleSet struct {
	words  []string
	kinds  []string
	byFam  map[string][][]byte // lines, for substrings of other families
	fams   []string
	hexRng *rand.Rand
}

func newNeedleSet(streams []*corpusStream) *needleSet {
	q := &needleSet{kinds: []string{"substring", "word", "hex16", "ipv4", "uuid", "number6"}, byFam: map[string][][]byte{}}
	seen := map[string]bool{}
	wre := regexp.MustCompile(`[A-Za-z]{4,12}`)
	for _, s := range streams {
		if _, ok := q.byFam[s.family]; !ok {
			q.fams = append(q.fams, s.family)
		}
		q.byFam[s.family] = append(q.byFam[s.family], s.lines...)
		for i, l := range s.lines {
			if i%7 == 0 {
				for _, w := range wre.FindAll(l, -1) {
					seen[string(w)] = true
				}
			}
		}
	}
	for w := range seen {
		q.words = append(q.words, w)
	}
	sort.Strings(q.words)
	sort.Strings(q.fams)
	return q
}

func (q *needleSet) needle(rng *rand.Rand, kind int, family string) []byte {
	switch kind {
	case 0:
		for {
			f := q.fams[rng.IntN(len(q.fams))]
			if f == family {
				continue
			}
			lines := q.byFam[f]
			l := lines[rng.IntN(len(lines))]
			n := 4 + rng.IntN(17)
			if len(l) < n {
				continue
			}
			st := rng.IntN(len(l) - n + 1)
			return l[st : st+n]
		}
	case 1:
		return []byte(q.words[rng.IntN(len(q.words))])
	case 2:
		b := make([]byte, 16)
		for i := range b {
			b[i] = "0123456789abcdef"[rng.IntN(16)]
		}
		return b
	case 3:
		return fmt.Appendf(nil, "%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
	case 4:
		return fmt.Appendf(nil, "%08x-%04x-%04x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<16))
	}
	return fmt.Appendf(nil, "%06d", rng.IntN(1000000))
}

type measured struct {
	raw, data, filter, header int64 // bytes: lines, block sections, filter section, rest
	chunks, blocks            int
	fpN, fpD                  [6]int // absent needles passed / absent needles asked, per kind
	fpBytes, askBytes         int64  // raw bytes of blocks a needle passed / was asked about
	chunkFPN, chunkFPD        int
	encTime, decTime          time.Duration
}

func (m *measured) add(o *measured) {
	m.raw += o.raw
	m.data += o.data
	m.filter += o.filter
	m.header += o.header
	m.chunks += o.chunks
	m.blocks += o.blocks
	for k := range m.fpN {
		m.fpN[k] += o.fpN[k]
		m.fpD[k] += o.fpD[k]
	}
	m.fpBytes += o.fpBytes
	m.askBytes += o.askBytes
	m.chunkFPN += o.chunkFPN
	m.chunkFPD += o.chunkFPD
	m.encTime += o.encTime
	m.decTime += o.decTime
}

func (m *measured) stored() int64 { return m.data + m.filter + m.header }
func (m *measured) ratio() string { return fmt.Sprintf("%.1f", float64(m.raw)/float64(m.stored())) }
func (m *measured) fpr(k int) float64 {
	return float64(m.fpN[k]) / float64(max(m.fpD[k], 1))
}
func (m *measured) avgFPR() float64 {
	s := 0.0
	for k := range m.fpN {
		s += m.fpr(k)
	}
	return s / float64(len(m.fpN))
}

// scanShare is the share of line bytes an absent-needle query would still
// decompress: the raw bytes of the blocks the filter let through.
func (m *measured) scanShare() float64 { return float64(m.fpBytes) / float64(max(m.askBytes, 1)) }
func (m *measured) encMBs() string {
	return fmt.Sprintf("%.0f", float64(m.raw)/1e6/m.encTime.Seconds())
}
func (m *measured) decMBs() string {
	return fmt.Sprintf("%.0f", float64(m.raw)/1e6/m.decTime.Seconds())
}

type measureResult struct {
	fams []string
	by   map[string]*measured
	all  *measured
}

// measureConfig encodes every stream in chunks, times encoding and a full
// decode, and asks each block's filter about needlesPerBlock absent needles
// of every kind (absence judged on ASCII-lowercased text).
func measureConfig(t *testing.T, streams []*corpusStream, q *needleSet, opts Options, perFamily bool) measureResult {
	const needlesPerBlock = 60
	res := measureResult{by: map[string]*measured{}, all: &measured{}}
	rng := rand.New(rand.NewPCG(1, 2))
	var buf BlockBuffer
	for _, s := range streams {
		m := res.by[s.family]
		if m == nil {
			m = &measured{}
			res.by[s.family] = m
			res.fams = append(res.fams, s.family)
		}
		for _, lines := range splitBytes(s.lines, measureChunkSize) {
			ents := entriesOf(lines, 1.7e18)
			// Timings take the best of three runs: the machine is shared.
			var b []byte
			var meta *Meta
			best := time.Duration(1 << 62)
			for range 3 {
				t0 := time.Now()
				var err error
				if b, meta, err = Encode(testLabels, ents, opts); err != nil {
					t.Fatal(err)
				}
				best = min(best, time.Since(t0))
			}
			m.encTime += best
			c, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			best = time.Duration(1 << 62)
			for range 3 {
				t0 := time.Now()
				for i := range meta.Blocks {
					if _, err := c.ReadBlock(i, &buf); err != nil {
						t.Fatal(err)
					}
				}
				best = min(best, time.Since(t0))
			}
			m.decTime += best
			m.chunks++
			m.blocks += len(meta.Blocks)
			m.raw += meta.RawBytes
			m.filter += int64(meta.FilterLen)
			var data int64
			for _, bl := range c.blocks {
				data += int64(bl.tsComp + bl.lineComp + bl.mdComp + 4)
			}
			m.data += data
			m.header += int64(meta.Size) - data - int64(meta.FilterLen)

			f := c.Filter()
			chunkText := make([][]byte, 0, len(meta.Blocks))
			for i := range meta.Blocks {
				ents, _ := c.ReadBlock(i, &buf)
				chunkText = append(chunkText, bytes.ToLower(bytes.Join(linesOf(ents), []byte{0})))
			}
			for k := range q.kinds {
				for range needlesPerBlock {
					nd := q.needle(rng, k, s.family)
					low := bytes.ToLower(nd)
					compiled := CompileNeedle(nd, false)
					inChunk := false
					for i, text := range chunkText {
						in := bytes.Contains(text, low)
						inChunk = inChunk || in
						may := f.BlockMayContainNeedle(i, compiled)
						if in && !may {
							t.Fatalf("false negative: %q in %s block %d", nd, s.path, i)
						}
						if in {
							continue
						}
						m.fpD[k]++
						m.askBytes += int64(meta.Blocks[i].RawBytes)
						if may {
							m.fpN[k]++
							m.fpBytes += int64(meta.Blocks[i].RawBytes)
						}
					}
					if !inChunk {
						m.chunkFPD++
						if f.MayContainNeedle(compiled) {
							m.chunkFPN++
						}
					}
				}
			}
		}
	}
	for _, f := range res.fams {
		res.all.add(res.by[f])
	}
	return res
}

func printFamilies(out *os.File, res measureResult) {
	tw := table(out, "family", "MB", "chunks", "blocks", "raw/stored", "raw/data", "filter/raw", "filter/compressed")
	for _, f := range append(slices.Clone(res.fams), "ALL") {
		m := res.all
		if f != "ALL" {
			m = res.by[f]
		}
		row(tw, f, fmt.Sprintf("%.1f", float64(m.raw)/1e6), m.chunks, m.blocks, m.ratio(),
			fmt.Sprintf("%.1f", float64(m.raw)/float64(m.data)), pct(m.filter, m.raw), pct(m.filter, m.data))
	}
	tw.Flush()
	fmt.Fprintf(out, "\nFalse-positive rate of absent needles, per block (chunk level in the last column):\n\n")
	heads := []string{"family"}
	for _, k := range []string{"substring", "word", "hex16", "ipv4", "uuid", "number6"} {
		heads = append(heads, k)
	}
	tw = table(out, append(heads, "avg", "scan share", "chunk avg")...)
	for _, f := range append(slices.Clone(res.fams), "ALL") {
		m := res.all
		if f != "ALL" {
			m = res.by[f]
		}
		cells := []any{f}
		for k := range m.fpN {
			cells = append(cells, pct(m.fpr(k)))
		}
		cells = append(cells, pct(m.avgFPR()), pct(m.scanShare()), pct(float64(m.chunkFPN)/float64(max(m.chunkFPD, 1))))
		row(tw, cells...)
	}
	tw.Flush()
}

// measureExact asks, per block, whether each absent needle's grams are all
// present in the block's exact sets of lowercased 3-grams, and of 3-, 4-
// and 5-grams: the false positives that no bitmap, however large, removes.
func measureExact(t *testing.T, out *os.File, streams []*corpusStream, q *needleSet) {
	const needlesPerBlock = 60
	rng := rand.New(rand.NewPCG(1, 2))
	var pass3, pass345, asked [6]int
	for _, s := range streams {
		for _, lines := range splitBytes(s.lines, measureChunkSize) {
			for _, blk := range splitBytes(lines, DefaultBlockSize) {
				set := map[uint64]struct{}{}
				var text [][]byte
				for _, l := range blk {
					low := bytes.ToLower(l)
					text = append(text, low)
					forGrams(low, func(k uint64) { set[k] = struct{}{} })
				}
				joined := bytes.Join(text, []byte{0})
				for k := range q.kinds {
					for range needlesPerBlock {
						nd := bytes.ToLower(q.needle(rng, k, s.family))
						if bytes.Contains(joined, nd) {
							continue
						}
						asked[k]++
						all3, all345 := true, true
						forGrams(nd, func(g uint64) {
							if _, ok := set[g]; !ok {
								all345 = false
								if g>>56 == 3 {
									all3 = false
								}
							}
						})
						if all3 {
							pass3[k]++
						}
						if all345 {
							pass345[k]++
						}
					}
				}
			}
		}
	}
	tw := table(out, append([]string{"grams"}, q.kinds...)...)
	for _, r := range []struct {
		name string
		pass [6]int
	}{{"3 only", pass3}, {"3, 4 and 5", pass345}} {
		cells := []any{r.name}
		for k := range q.kinds {
			cells = append(cells, pct(float64(r.pass[k])/float64(max(asked[k], 1))))
		}
		row(tw, cells...)
	}
	tw.Flush()
}

// forGrams calls fn with every 3-, 4- and 5-byte window of b, tagged with
// its length in the top byte.
func forGrams(b []byte, fn func(uint64)) {
	for n := 3; n <= 5; n++ {
		for i := 0; i+n <= len(b); i++ {
			var k uint64
			for _, c := range b[i : i+n] {
				k = k<<8 | uint64(c)
			}
			fn(k | uint64(n)<<56)
		}
	}
}

func measureCodecs(t *testing.T, out *os.File, streams []*corpusStream) {
	type codec struct {
		name string
		enc  func(dst, src []byte) []byte
		dec  func(dst, src []byte) ([]byte, error)
	}
	var codecs []codec
	for _, lv := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(lv), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		codecs = append(codecs, codec{"zstd " + lv.String(), func(dst, src []byte) []byte { return e.EncodeAll(src, dst[:0]) },
			func(dst, src []byte) ([]byte, error) { return d.DecodeAll(src, dst[:0]) }})
	}
	codecs = append(codecs,
		codec{"s2", func(dst, src []byte) []byte { return s2.Encode(dst[:cap(dst)], src) },
			func(dst, src []byte) ([]byte, error) { return s2.Decode(dst[:cap(dst)], src) }},
		codec{"s2 better", func(dst, src []byte) []byte { return s2.EncodeBetter(dst[:cap(dst)], src) },
			func(dst, src []byte) ([]byte, error) { return s2.Decode(dst[:cap(dst)], src) }})
	lz4Dec := func(dst, src []byte) ([]byte, error) {
		n, err := lz4.UncompressBlock(src, dst[:cap(dst)])
		return dst[:n], err
	}
	var fast lz4.Compressor
	hc := lz4.CompressorHC{Level: lz4.Level9}
	codecs = append(codecs,
		codec{"lz4", func(dst, src []byte) []byte { n, _ := fast.CompressBlock(src, dst[:cap(dst)]); return dst[:n] }, lz4Dec},
		codec{"lz4 hc9", func(dst, src []byte) []byte { n, _ := hc.CompressBlock(src, dst[:cap(dst)]); return dst[:n] }, lz4Dec})
	var blocks [][]byte
	var raw int
	for _, s := range streams {
		for _, g := range splitBytes(s.lines, DefaultBlockSize) {
			b := bytes.Join(g, nil)
			blocks = append(blocks, b)
			raw += len(b)
		}
	}
	tw := table(out, "codec", "raw/compressed", "compress MB/s", "decompress MB/s", "decompress+search MB/s")
	needle := []byte("no such text in any line")
	for _, c := range codecs {
		comp := make([][]byte, len(blocks))
		var n int
		t0 := time.Now()
		for i, b := range blocks {
			comp[i] = c.enc(make([]byte, 0, s2.MaxEncodedLen(len(b))), b)
			n += len(comp[i])
		}
		encT := time.Since(t0)
		dst := make([]byte, 0, MaxBlockRaw)
		var decT, scanT time.Duration
		for range 3 {
			t0 = time.Now()
			for i := range comp {
				var err error
				if dst, err = c.dec(dst, comp[i]); err != nil {
					t.Fatal(err)
				}
			}
			decT += time.Since(t0)
			t0 = time.Now()
			for i := range comp {
				dst, _ = c.dec(dst, comp[i])
				if bytes.Index(dst, needle) >= 0 {
					t.Fatal("found absent needle")
				}
			}
			scanT += time.Since(t0)
		}
		mb := float64(raw) / 1e6
		row(tw, c.name, fmt.Sprintf("%.1f", float64(raw)/float64(n)), fmt.Sprintf("%.0f", mb/encT.Seconds()),
			fmt.Sprintf("%.0f", 3*mb/decT.Seconds()), fmt.Sprintf("%.0f", 3*mb/scanT.Seconds()))
	}
	tw.Flush()
}

func table(out *os.File, heads ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintf(tw, "| %s |\n", strings.Join(heads, "\t| "))
	seps := make([]string, len(heads))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(tw, "| %s |\n", strings.Join(seps, "\t| "))
	return tw
}

func row(tw *tabwriter.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintf(tw, "| %s |\n", strings.Join(s, "\t| "))
}

// pct formats a share: pct(x) for a fraction, pct(a, b) for a/b.
func pct(v ...any) string {
	var f float64
	switch len(v) {
	case 1:
		f = v[0].(float64)
	case 2:
		f = float64(v[0].(int64)) / float64(v[1].(int64))
	}
	return fmt.Sprintf("%.2f%%", 100*f)
}
