package chunk

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
)

// fuzzSeedChunks are small valid chunks the fuzzers start from.
func fuzzSeedChunks(tb testing.TB) [][]byte {
	var out [][]byte
	add := func(ents []Entry, opts Options) {
		b, _, err := Encode(testLabels, ents, opts)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	rng := rand.New(rand.NewPCG(31, 32))
	add([]Entry{{Timestamp: 1, Line: []byte("hello world")}}, Options{})
	add([]Entry{{Timestamp: -5, Line: []byte("a")}, {Timestamp: 9, Metadata: labels.New("level", "warn")}}, Options{})
	add(randomEntries(rng, 40), Options{BlockSize: MinBlockSize})
	add(entriesOf(genAccessLog(rng, 30), 1e18), Options{})
	// The same under the other codec, so mutations reach both decoders.
	add(randomEntries(rng, 40), Options{BlockSize: MinBlockSize, Codec: CodecLZ4})
	add(entriesOf(genAccessLog(rng, 30), 1e18), Options{Codec: CodecLZ4})
	return out
}

func FuzzDecode(f *testing.F) {
	for _, b := range fuzzSeedChunks(f) {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("LSCK"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeHostile(t, b)
		// Again with checksums ignored, so mutations reach the parsers and
		// the decompressor instead of stopping at the first CRC.
		ignoreChecksums = true
		defer func() { ignoreChecksums = false }()
		decodeHostile(t, b)
	})
}

// decodeHostile runs every read path over whatever Decode accepts; the
// only failure is a panic or an inconsistency between the paths.
func decodeHostile(t *testing.T, b []byte) {
	headerHostile(t, b)
	c, err := Decode(b)
	if err != nil {
		if c != nil {
			t.Fatal("Decode returned a chunk with an error")
		}
		return
	}
	m := c.Meta()
	var buf, bare BlockBuffer
	for i := range m.Blocks {
		ents, err := c.ReadBlock(i, &buf)
		ts, err2 := c.BlockTimestamps(i, nil)
		bareEnts, err3 := c.ReadBlockWithoutLines(i, &bare)
		if err != nil {
			continue
		}
		if err2 != nil {
			t.Fatalf("block %d: ReadBlock ok but BlockTimestamps failed: %v", i, err2)
		}
		if err3 != nil || len(bareEnts) != len(ents) {
			t.Fatalf("block %d: ReadBlock ok but ReadBlockWithoutLines: %d entries, %v", i, len(bareEnts), err3)
		}
		if len(ents) != m.Blocks[i].Entries || len(ts) != len(ents) {
			t.Fatalf("block %d: %d entries, %d timestamps, header says %d", i, len(ents), len(ts), m.Blocks[i].Entries)
		}
		for k := range ents {
			if ents[k].Timestamp != ts[k] {
				t.Fatalf("block %d entry %d: timestamps disagree", i, k)
			}
		}
	}
	_ = c.Verify()
	fl := c.Filter()
	for _, nd := range []string{"hello", "wor", "ERROR", "kelvin"} {
		fl.MayContain([]byte(nd), false)
		fl.MayContain([]byte(nd), true)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, b := range fuzzSeedChunks(f) {
		c, err := Decode(b)
		if err != nil {
			f.Fatal(err)
		}
		m := c.Meta()
		f.Add(b[m.FilterOffset:m.FilterOffset+m.FilterLen], []byte("hello"), false)
	}
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte("abc"), true)
	f.Fuzz(func(t *testing.T, b, needle []byte, fold bool) {
		for _, parse := range []func([]byte) (*Filter, error){ParseFilter, ViewFilter} {
			fl, err := parse(b)
			if err != nil {
				continue
			}
			fl.MayContain(needle, fold)
			for i := -1; i <= fl.Blocks(); i++ {
				fl.BlockMayContain(i, needle, fold)
			}
		}
	})
}

// FuzzRoundTrip builds entries from arbitrary bytes: lines split on '\n',
// timestamps drawn (with repeats) from seed, metadata on some entries.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello world\nconnection refused\n\nKelvin \u212Aelvin\n"), uint64(1), uint16(0))
	f.Add([]byte("\x00\xff\xfe\n\n\n\nab\nc"), uint64(7), uint16(4096))
	f.Add(bytes.Repeat([]byte("GET /index.html 200\n"), 400), uint64(3), uint16(5000))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, blockSize uint16) {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		lines := bytes.Split(data, []byte("\n"))
		ents := make([]Entry, len(lines))
		for i, l := range lines {
			ents[i] = Entry{Timestamp: int64(rng.Uint64()>>60) - 8 + int64(rng.IntN(3))<<62, Line: l}
			if len(l) > 0 && l[0]%3 == 0 {
				ents[i].Metadata = labels.Labels{{Name: "m", Value: string(l[:min(len(l), 5)])}}
			}
		}
		want := cloneEntries(ents)
		slices.SortStableFunc(want, compareEntries)
		opts := Options{BlockSize: MinBlockSize + int(blockSize), Codec: Codec(1 + seed%2)}
		b, meta, err := Encode(testLabels, ents, opts)
		if err != nil {
			t.Fatal(err)
		}
		c, got := readAll(t, b)
		equalEntries(t, got, want)
		if c.Meta().ID != meta.ID {
			t.Fatal("ID changed through decode")
		}
		if err := c.Verify(); err != nil {
			t.Fatal(err)
		}
		fl := c.Filter()
		for _, e := range want {
			if len(e.Line) >= 3 {
				nd := e.Line[len(e.Line)/3:]
				if len(nd) >= 3 && !fl.MayContain(nd, false) {
					t.Fatalf("false negative for %q", nd)
				}
			}
		}
	})
}

// headerHostile runs the header-only path (DecodeHeader on a prefix, then
// timestamp sections read alone) over hostile bytes: it may fail, never
// panic, and where Decode accepts the whole chunk it must agree with it.
func headerHostile(t *testing.T, b []byte) {
	for _, cut := range []int{len(b), min(len(b), 64)} {
		h, err := DecodeHeader(b[:cut], len(b))
		if err != nil {
			continue
		}
		for i := range h.Meta().Blocks {
			off, n, err := h.TimestampSection(i)
			if err != nil {
				t.Fatalf("block %d of a decoded header: %v", i, err)
			}
			if off < 0 || n < 0 || off+n > len(b) {
				t.Fatalf("block %d: section [%d, %d) outside %d bytes", i, off, off+n, len(b))
			}
			ts, err := h.BlockTimestamps(i, b[off:off+n], nil)
			if c, cerr := Decode(b); cerr == nil {
				want, werr := c.BlockTimestamps(i, nil)
				if (err == nil) != (werr == nil) || !slices.Equal(ts, want) {
					t.Fatalf("block %d: header path %v %v, chunk path %v %v", i, ts, err, want, werr)
				}
			}
		}
	}
}

// FuzzDecompressSection feeds each codec's section decoder hostile bytes
// directly (FuzzDecode reaches it only through a whole chunk): it must
// return exactly rawLen bytes or an ErrCorrupt error, never panic, and
// never write past the buffer it sized.
func FuzzDecompressSection(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	raw := bytes.Join(genAccessLog(rng, 40), nil)
	for _, c := range []Codec{CodecZstd, CodecLZ4} {
		comp, err := compressSection(c, nil, raw)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(c), comp, uint32(len(raw)))
		f.Add(byte(c), comp[:len(comp)/2], uint32(len(raw)))
		f.Add(byte(c), comp, uint32(len(raw)/3))
	}
	f.Add(byte(CodecLZ4), []byte{0xf0, 0x00}, uint32(1<<20))
	f.Fuzz(func(t *testing.T, codec byte, comp []byte, rawLen uint32) {
		n := int(rawLen % (1 << 20))
		out, err := decompressSection(Codec(codec), nil, comp, n)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(out) != n {
			t.Fatalf("%d bytes out, want %d", len(out), n)
		}
		if len(comp) == n && !bytes.Equal(out, comp) {
			t.Fatal("a raw section came back changed")
		}
	})
}
