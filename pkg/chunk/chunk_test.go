package chunk

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
)

func cloneEntries(ents []Entry) []Entry {
	out := make([]Entry, len(ents))
	for i, e := range ents {
		out[i] = e.Clone()
	}
	return out
}

// readAll decodes b and returns every entry of every block, copied.
func readAll(t testing.TB, b []byte) (*Chunk, []Entry) {
	t.Helper()
	c, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var buf BlockBuffer
	var all []Entry
	for i := range c.Meta().Blocks {
		ents, err := c.ReadBlock(i, &buf)
		if err != nil {
			t.Fatalf("ReadBlock(%d): %v", i, err)
		}
		all = append(all, cloneEntries(ents)...)
	}
	return c, all
}

func equalEntries(t testing.TB, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Timestamp != w.Timestamp || !bytes.Equal(g.Line, w.Line) || len(g.Metadata) != len(w.Metadata) ||
			(len(w.Metadata) > 0 && !g.Metadata.Equal(w.Metadata)) {
			t.Fatalf("entry %d: got {%d %q %v}, want {%d %q %v}", i, g.Timestamp, g.Line, g.Metadata, w.Timestamp, w.Line, w.Metadata)
		}
	}
}

func randomEntries(rng *rand.Rand, n int) []Entry {
	lines := genNasty(rng, n/2)
	lines = append(lines, genAccessLog(rng, n-n/2)...)
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	ents := make([]Entry, n)
	base := int64(1_700_000_000_000_000_000)
	for i := range ents {
		ents[i] = Entry{Timestamp: base + int64(rng.IntN(n/4+1))*1e9, Line: lines[i]}
		switch rng.IntN(4) {
		case 0:
			ents[i].Metadata = labels.New("level", []string{"info", "warn", "error"}[rng.IntN(3)], "lineno", string(rune('0'+rng.IntN(10))))
		case 1:
			ents[i].Metadata = labels.New("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
		}
	}
	return ents
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var cases []struct {
		name string
		n    int
		opts Options
	}
	for _, codec := range []Codec{0, CodecZstd, CodecLZ4} {
		for _, c := range []struct {
			name string
			n    int
			opts Options
		}{
			{"one", 1, Options{}},
			{"small", 50, Options{}},
			{"many-blocks", 5000, Options{BlockSize: MinBlockSize}},
			{"default", 20000, Options{}},
		} {
			c.opts.Codec = codec
			c.name += "/" + codec.String()
			cases = append(cases, c)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ents := randomEntries(rng, tc.n)
			want := cloneEntries(ents)
			slices.SortStableFunc(want, compareEntries)
			b, meta, err := Encode(testLabels, ents, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			equalEntries(t, ents, want) // Encode sorted the caller's slice stably
			c, got := readAll(t, b)
			equalEntries(t, got, want)
			dm := c.Meta()
			if want := cmp.Or(tc.opts.Codec, DefaultCodec); dm.Codec != want || meta.Codec != want || b[5] != byte(want) {
				t.Fatalf("codec: decoded %v, encoded %v, byte 5 = %d; want %v", dm.Codec, meta.Codec, b[5], want)
			}
			if dm.ID != meta.ID || !dm.Labels.Equal(testLabels) || dm.MinTime != want[0].Timestamp ||
				dm.MaxTime != want[len(want)-1].Timestamp || dm.Entries != len(want) || dm.Size != len(b) ||
				dm.FilterOffset != meta.FilterOffset || dm.FilterLen != meta.FilterLen || !slices.Equal(dm.Blocks, meta.Blocks) {
				t.Fatalf("decoded meta %+v differs from encoded %+v", dm, meta)
			}
			var raw int64
			for _, e := range want {
				raw += int64(len(e.Line))
			}
			if dm.RawBytes != raw {
				t.Fatalf("RawBytes %d, want %d", dm.RawBytes, raw)
			}
			if err := c.Verify(); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			// The filter section is where Meta says, and parses alone.
			f, err := ParseFilter(b[dm.FilterOffset : dm.FilterOffset+dm.FilterLen])
			if err != nil || f.Blocks() != len(dm.Blocks) {
				t.Fatalf("ParseFilter: %v, %d blocks", err, f.Blocks())
			}
			// Block metadata agrees with the blocks' entries.
			var buf BlockBuffer
			for i, bm := range dm.Blocks {
				ents, _ := c.ReadBlock(i, &buf)
				n := 0
				for _, e := range ents {
					n += len(e.Line)
				}
				if bm.Entries != len(ents) || bm.RawBytes != n || bm.MinTime != ents[0].Timestamp || bm.MaxTime != ents[len(ents)-1].Timestamp {
					t.Fatalf("block %d meta %+v does not match its entries", i, bm)
				}
				if !bytes.Equal(buf.Lines(), bytes.Join(linesOf(ents), nil)) {
					t.Fatalf("block %d: Lines() is not the lines back to back", i)
				}
			}
		})
	}
}

func linesOf(ents []Entry) [][]byte {
	out := make([][]byte, len(ents))
	for i, e := range ents {
		out[i] = e.Line
	}
	return out
}

func TestIDDependsOnContentOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ents := randomEntries(rng, 3000)
	b1, m1, err := Encode(testLabels, cloneEntries(ents), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b2, m2, err := Encode(testLabels, cloneEntries(ents), Options{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(m1.Blocks) == len(m2.Blocks) || bytes.Equal(b1, b2) {
		t.Fatal("test needs two different block layouts")
	}
	if m1.ID != m2.ID {
		t.Fatal("same entries with different block sizes got different IDs")
	}
	// Any change of content changes the ID.
	mod := cloneEntries(ents)
	mod[17].Line = append(mod[17].Line, 'x')
	_, m3, _ := Encode(testLabels, mod, Options{})
	_, m4, _ := Encode(labels.New("job", "other"), cloneEntries(ents), Options{})
	mod = cloneEntries(ents)
	mod[5].Timestamp++
	_, m5, _ := Encode(testLabels, mod, Options{})
	mod = cloneEntries(ents)
	mod[9].Metadata = labels.New("k", "v")
	_, m6, _ := Encode(testLabels, mod, Options{})
	for i, m := range []*Meta{m3, m4, m5, m6} {
		if m.ID == m1.ID {
			t.Fatalf("change %d kept the ID", i)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	ok := []Entry{{Timestamp: 1, Line: []byte("x")}}
	cases := []struct {
		name string
		lbls labels.Labels
		ents []Entry
		opts Options
	}{
		{"no entries", testLabels, nil, Options{}},
		{"unsorted labels", labels.Labels{{Name: "b", Value: "1"}, {Name: "a", Value: "2"}}, ok, Options{}},
		{"bad label name", labels.Labels{{Name: "1a", Value: "x"}}, ok, Options{}},
		{"block too small", testLabels, ok, Options{BlockSize: 100}},
		{"block too big", testLabels, ok, Options{BlockSize: MaxBlockSize + 1}},
		{"line too long", testLabels, []Entry{{Line: make([]byte, MaxLineBytes+1)}}, Options{}},
		{"metadata too big", testLabels, []Entry{{Metadata: labels.New("a", strings.Repeat("x", MaxEntryMetadataBytes))}}, Options{}},
	}
	for _, tc := range cases {
		if _, _, err := Encode(tc.lbls, tc.ents, tc.opts); err == nil {
			t.Errorf("%s: Encode succeeded", tc.name)
		}
	}
	if _, _, err := Encode(testLabels, nil, Options{}); !errors.Is(err, ErrNoEntries) {
		t.Errorf("no entries: %v", err)
	}
}

func TestEdgeCases(t *testing.T) {
	cases := map[string][]Entry{
		"extreme timestamps": {
			{Timestamp: math.MaxInt64, Line: []byte("last")},
			{Timestamp: math.MinInt64, Line: []byte("first")},
			{Timestamp: 0, Line: []byte("zero")},
		},
		"all equal timestamps": {{Timestamp: 5, Line: []byte("b")}, {Timestamp: 5, Line: []byte("a")}, {Timestamp: 5}},
		"empty lines only":     {{Timestamp: 1}, {Timestamp: 2, Line: []byte{}}, {Timestamp: 3}},
		"metadata without lines": {
			{Timestamp: 1, Metadata: labels.New("a", "")},
			{Timestamp: 2, Metadata: labels.New("", "x")},
		},
		"line longer than a block": {
			{Timestamp: 1, Line: bytes.Repeat([]byte("0123456789abcdef"), MaxBlockSize/8)},
			{Timestamp: 2, Line: []byte("short")},
		},
		"empty labels": {{Timestamp: 7, Line: []byte("x")}},
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			lbls := testLabels
			if name == "empty labels" {
				lbls = nil
			}
			want := cloneEntries(ents)
			slices.SortStableFunc(want, compareEntries)
			b, _, err := Encode(lbls, ents, Options{BlockSize: MinBlockSize})
			if err != nil {
				t.Fatal(err)
			}
			c, got := readAll(t, b)
			equalEntries(t, got, want)
			if err := c.Verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBlockCutByEntryCount(t *testing.T) {
	ents := make([]Entry, MaxBlockEntries+10)
	for i := range ents {
		ents[i].Timestamp = int64(i)
	}
	b, meta, err := Encode(testLabels, ents, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Blocks) != 2 || meta.Blocks[0].Entries != MaxBlockEntries {
		t.Fatalf("blocks %+v", meta.Blocks)
	}
	if _, got := readAll(t, b); len(got) != len(ents) {
		t.Fatalf("read %d entries", len(got))
	}
}

func TestBlockTimestamps(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b, meta, err := Encode(testLabels, randomEntries(rng, 4000), Options{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var buf BlockBuffer
	prefix := []int64{-1, -2}
	for i := range meta.Blocks {
		ents, err := c.ReadBlock(i, &buf)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := c.BlockTimestamps(i, slices.Clone(prefix))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ts[:2], prefix) || len(ts) != len(ents)+2 {
			t.Fatalf("block %d: BlockTimestamps did not append", i)
		}
		for k, e := range ents {
			if ts[k+2] != e.Timestamp {
				t.Fatalf("block %d entry %d: %d != %d", i, k, ts[k+2], e.Timestamp)
			}
		}
	}
	if _, err := c.BlockTimestamps(len(meta.Blocks), nil); err == nil {
		t.Fatal("out-of-range block accepted")
	}
	if _, err := c.ReadBlock(-1, &buf); err == nil {
		t.Fatal("negative block accepted")
	}
}

func smallChunk(t testing.TB) []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	b, _, err := Encode(testLabels, randomEntries(rng, 60), Options{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejectsEveryByteFlip(t *testing.T) {
	b := smallChunk(t)
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
	mod := slices.Clone(b)
	for i := range b {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			mod[i] ^= x
			if _, err := Decode(mod); err == nil {
				t.Fatalf("flip %#x at byte %d of %d went unnoticed", x, i, len(b))
			} else if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip at %d: error %v does not wrap ErrCorrupt", i, err)
			}
			mod[i] = b[i]
		}
	}
	for n := range len(b) {
		if _, err := Decode(b[:n]); err == nil {
			t.Fatalf("truncation to %d bytes went unnoticed", n)
		}
	}
	if _, err := Decode(append(slices.Clone(b), 0)); err == nil {
		t.Fatal("trailing byte went unnoticed")
	}
}

// refreshCRCs recomputes the header and filter checksums after a test has
// tampered with the bytes they cover, producing a chunk that Decode accepts.
func refreshCRCs(b []byte, m *Meta) {
	hend := m.FilterOffset - 4
	binary.LittleEndian.PutUint32(b[hend:], crc(b[:hend]))
	fend := m.FilterOffset + m.FilterLen - 4
	binary.LittleEndian.PutUint32(b[fend:], crc(b[m.FilterOffset:fend]))
}

func TestVerifyCatchesConsistentForgery(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	b, meta, err := Encode(testLabels, randomEntries(rng, 3000), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A forged ID with valid checksums decodes but fails Verify.
	forged := slices.Clone(b)
	forged[prefixLen] ^= 1
	refreshCRCs(forged, meta)
	c, err := Decode(forged)
	if err != nil {
		t.Fatalf("forged ID should decode: %v", err)
	}
	if err := c.Verify(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of forged ID: %v", err)
	}
	// A filter with bits cleared (it would hide lines) fails Verify.
	forged = slices.Clone(b)
	f, _ := ParseFilter(forged[meta.FilterOffset : meta.FilterOffset+meta.FilterLen])
	if len(f.bits) == 0 {
		t.Fatal("expected a bitmap")
	}
	clear(f.bits)
	refreshCRCs(forged, meta)
	if c, err = Decode(forged); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); !errors.Is(err, errFilterMismatch) {
		t.Fatalf("Verify of cleared filter: %v", err)
	}
}

func TestReadBlockReusesBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector defeats sync.Pool reuse inside zstd")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	b, meta, _ := Encode(testLabels, randomEntries(rng, 5000), Options{BlockSize: MinBlockSize})
	c, _ := Decode(b)
	var buf BlockBuffer
	for i := range meta.Blocks {
		if _, err := c.ReadBlock(i, &buf); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		for i := range meta.Blocks {
			if _, err := c.ReadBlock(i, &buf); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs > 0 {
		t.Fatalf("ReadBlock with a warm buffer allocates %.1f times per pass", allocs)
	}
}

// TestConcurrentUse runs encoders and readers of one Chunk in parallel; it
// exists for the race detector (shared zstd codecs, pooled encoders).
func TestConcurrentUse(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	base := randomEntries(rng, 3000)
	b, meta, err := Encode(testLabels, cloneEntries(base), Options{BlockSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			var buf BlockBuffer
			for i := range meta.Blocks {
				if _, err := c.ReadBlock((i+g)%len(meta.Blocks), &buf); err != nil {
					errs <- err
					return
				}
				c.Filter().MayContain([]byte("connection"), g%2 == 0)
			}
			_, m, err := Encode(testLabels, cloneEntries(base), Options{BlockSize: 16 << 10})
			if err == nil && m.ID != meta.ID {
				err = errors.New("concurrent Encode produced another ID")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestBlocksAreBalanced: a chunk just over a multiple of the block size is
// split into equal blocks, not full blocks plus a sliver.
func TestBlocksAreBalanced(t *testing.T) {
	lines := genAccessLog(rand.New(rand.NewPCG(15, 16)), 9000) // about 2 MiB
	var raw int
	for _, l := range lines {
		raw += len(l)
	}
	_, meta, err := Encode(testLabels, entriesOf(lines, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := (raw + DefaultBlockSize - 1) / DefaultBlockSize
	if len(meta.Blocks) != want {
		t.Fatalf("%d bytes in %d blocks, want %d", raw, len(meta.Blocks), want)
	}
	for i, b := range meta.Blocks {
		if b.RawBytes < raw/want-2048 || b.RawBytes > raw/want+2048 {
			t.Fatalf("block %d has %d bytes, want about %d", i, b.RawBytes, raw/want)
		}
	}
}

func TestDecodeFirstWalksChunksBackToBack(t *testing.T) {
	a, _, err := Encode(labels.New("a", "1"), []Entry{{Timestamp: 1, Line: []byte("first")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Encode(labels.New("b", "2"), []Entry{{Timestamp: 2, Line: []byte("second")}, {Timestamp: 3, Line: []byte("third")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seg := append(append(append([]byte{}, a...), b...), 0xde, 0xad)
	c, n, err := DecodeFirst(seg)
	if err != nil || n != len(a) || c.Meta().Labels.Get("a") != "1" || c.Meta().Size != len(a) {
		t.Fatalf("first: n=%d err=%v", n, err)
	}
	c, n2, err := DecodeFirst(seg[n:])
	if err != nil || n2 != len(b) || c.Meta().Entries != 2 {
		t.Fatalf("second: n=%d err=%v", n2, err)
	}
	if _, _, err := DecodeFirst(seg[n+n2:]); err == nil {
		t.Fatal("trailing garbage decoded")
	}
	if _, err := Decode(seg[:n+1]); err == nil {
		t.Fatal("Decode accepted a trailing byte")
	}
}

// TestDecodeHeaderFromPrefix: the header decoded from the first
// FilterOffset bytes alone locates every timestamp section, and those
// sections read alone give the timestamps the whole chunk gives.
func TestDecodeHeaderFromPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ents := randomEntries(rng, 3000)
	b, _, err := Encode(testLabels, ents, Options{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Meta()
	if len(m.Blocks) < 3 {
		t.Fatalf("want several blocks, got %d", len(m.Blocks))
	}
	h, err := DecodeHeader(b[:m.FilterOffset], len(b))
	if err != nil {
		t.Fatal(err)
	}
	hm := h.Meta()
	if hm.ID != m.ID || !slices.Equal(hm.Blocks, m.Blocks) || hm.Size != m.Size || hm.RawBytes != m.RawBytes || hm.Entries != m.Entries {
		t.Fatalf("header meta %+v differs from chunk meta %+v", hm, m)
	}
	var all []int64
	for i := range hm.Blocks {
		off, n, err := h.TimestampSection(i)
		if err != nil {
			t.Fatal(err)
		}
		sec := slices.Clone(b[off : off+n])
		if all, err = h.BlockTimestamps(i, sec, all); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]int64, len(ents))
	for i, e := range ents {
		want[i] = e.Timestamp
	}
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatal("timestamps from sections differ from the entries")
	}

	// Short prefixes, a size that cannot hold the blocks, a section of the
	// wrong length and a damaged section are errors.
	if _, err := DecodeHeader(b[:m.FilterOffset-1], len(b)); err == nil {
		t.Error("a prefix without the header checksum decoded")
	}
	if _, err := DecodeHeader(b[:m.FilterOffset], m.FilterOffset+10); err == nil {
		t.Error("a size too small for the block table decoded")
	}
	off, n, _ := h.TimestampSection(1)
	if _, err := h.BlockTimestamps(1, b[off:off+n-1], nil); err == nil {
		t.Error("a short section decoded")
	}
	bad := slices.Clone(b[off : off+n])
	for k := range bad {
		bad[k] ^= 0x5a
	}
	if _, err := h.BlockTimestamps(1, bad, nil); err == nil {
		t.Error("a damaged section decoded")
	}
	if _, _, err := h.TimestampSection(len(hm.Blocks)); err == nil {
		t.Error("a block past the end was located")
	}
}

// Runs of entries with equal metadata (the common case: detected_level on
// every entry) decode to the same values, and a neighbour whose metadata
// only starts like the previous one's is not taken for it.
func TestMetadataRunsRoundTrip(t *testing.T) {
	sets := []labels.Labels{
		nil,
		labels.New("detected_level", "info"),
		labels.New("detected_level", "info"),
		labels.New("detected_level", "infos"),
		labels.New("detected_level", "info", "trace", "a"),
		labels.New("detected_level", "info"),
		nil,
		nil,
		labels.New("a", ""),
		labels.New("a", ""),
		labels.New("", "a"),
	}
	var ents []Entry
	for i := range 3000 {
		ents = append(ents, Entry{Timestamp: int64(i), Line: []byte(fmt.Sprint("line ", i)), Metadata: sets[(i/3)%len(sets)]})
	}
	enc, _, err := Encode(testLabels, ents, Options{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	var buf BlockBuffer
	k := 0
	for i := range c.Meta().Blocks {
		got, err := c.ReadBlock(i, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if want := ents[k].Metadata; !g.Metadata.Equal(want) || (len(want) == 0) != (g.Metadata == nil) {
				t.Fatalf("entry %d: metadata %v, want %v", k, g.Metadata, want)
			}
			k++
		}
	}
	if k != len(ents) {
		t.Fatalf("%d entries read, want %d", k, len(ents))
	}
}

// TestCodecs checks what the codec changes and what it must not: the ID
// and the entries are the same under either codec, each codec's sections
// really are compressed (not stored raw), and a chunk of an unknown codec
// is refused.
func TestCodecs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ents := entriesOf(genAccessLog(rng, 3000), 1e18)
	want := cloneEntries(ents)
	var ids []ID
	for _, codec := range []Codec{CodecZstd, CodecLZ4} {
		b, meta, err := Encode(testLabels, cloneEntries(ents), Options{Codec: codec})
		if err != nil {
			t.Fatal(err)
		}
		if meta.Size*3 > int(meta.RawBytes) {
			t.Fatalf("%v: %d bytes for %d raw: the access lines were not compressed", codec, meta.Size, meta.RawBytes)
		}
		_, got := readAll(t, b)
		equalEntries(t, got, want)
		ids = append(ids, meta.ID)

		bad := slices.Clone(b)
		bad[5] = 3
		binary.LittleEndian.PutUint32(bad[meta.FilterOffset-4:], crc(bad[:meta.FilterOffset-4]))
		if _, err := Decode(bad); err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "codec 3") {
			t.Fatalf("codec byte 3: %v", err)
		}
		if _, err := DecodeHeader(bad, len(bad)); err == nil {
			t.Fatal("DecodeHeader accepted codec 3")
		}
	}
	if ids[0] != ids[1] {
		t.Fatal("the ID depends on the codec")
	}
	if _, _, err := Encode(testLabels, cloneEntries(ents[:3]), Options{Codec: 9}); err == nil {
		t.Fatal("Encode accepted codec 9")
	}
}

// TestLZ4SectionCannotOverflow hands the lz4 decoder a section whose
// content inflates past the size the block table declares: it must fail
// as corrupt, not write beyond the declared size.
func TestLZ4SectionCannotOverflow(t *testing.T) {
	raw := bytes.Repeat([]byte("abcdefgh"), 4096)
	comp, err := compressSection(CodecLZ4, nil, raw)
	if err != nil || len(comp) >= len(raw) {
		t.Fatalf("compress: %v, %d bytes", err, len(comp))
	}
	for _, declared := range []int{len(raw) - 1, len(raw) / 2, 1} {
		dst := make([]byte, 0, declared+decodeSlack(declared))
		if _, err := decompressSection(CodecLZ4, dst, comp, declared); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("declared %d of %d: %v", declared, len(raw), err)
		}
	}
	if _, err := decompressSection(CodecLZ4, nil, comp, len(raw)+1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("declared one byte more than the content: %v", err)
	}
	out, err := decompressSection(CodecLZ4, nil, comp, len(raw))
	if err != nil || !bytes.Equal(out, raw) {
		t.Fatalf("exact size: %v", err)
	}
	// Incompressible bytes are stored raw under either codec.
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	for _, c := range []Codec{CodecZstd, CodecLZ4} {
		if got, err := compressSection(c, nil, noise); err != nil || !bytes.Equal(got, noise) {
			t.Fatalf("%v: random bytes not stored raw: %v", c, err)
		}
	}
}

func TestParseCodec(t *testing.T) {
	for in, want := range map[string]Codec{"": DefaultCodec, "lz4": CodecLZ4, "ZSTD": CodecZstd, " zstd ": CodecZstd} {
		if got, err := ParseCodec(in); err != nil || got != want {
			t.Errorf("ParseCodec(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseCodec("gzip"); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("ParseCodec(gzip): %v", err)
	}
}

// TestNeedMetadata checks that a block's metadata is left undecoded only
// when none of the needed names occurs in it, and that LoadMetadata then
// gives the entries exactly what a full read gives.
func TestNeedMetadata(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	ents := randomEntries(rng, 3000)
	for i := range ents {
		ents[i].Metadata = labels.New("detected_level", "info")
		if i > 1500 && i%97 == 0 { // only in the later blocks
			ents[i].Metadata = labels.New("detected_level", "info", "status", "500")
		}
		if i%7 == 0 {
			ents[i].Metadata = nil
		}
	}
	b, meta, err := Encode(testLabels, ents, Options{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	c, want := readAll(t, b)
	var buf BlockBuffer
	buf.NeedMetadata([]string{"status"}, false)
	skipped, decoded, off := 0, 0, 0
	for i, bm := range meta.Blocks {
		es, err := c.ReadBlock(i, &buf)
		if err != nil {
			t.Fatal(err)
		}
		w := want[off : off+len(es)]
		off += len(es)
		hasStatus := slices.ContainsFunc(w, func(e Entry) bool { return e.Metadata.Has("status") })
		switch {
		case bm.MetadataBytes == 0 || hasStatus:
			if buf.MetadataPending() {
				t.Fatalf("block %d: metadata left undecoded (status: %v)", i, hasStatus)
			}
			decoded++
		default:
			if !buf.MetadataPending() {
				t.Fatalf("block %d: metadata decoded though no status label is in it", i)
			}
			for _, e := range es {
				if e.Metadata != nil {
					t.Fatalf("block %d: an entry has metadata before LoadMetadata", i)
				}
			}
			if err := buf.LoadMetadata(); err != nil || buf.MetadataPending() {
				t.Fatalf("LoadMetadata: %v", err)
			}
			skipped++
		}
		equalEntries(t, es, w)
	}
	if skipped == 0 || decoded == 0 {
		t.Fatalf("%d blocks skipped, %d decoded: the data does not test both", skipped, decoded)
	}
	// all restores full decoding; no names means no metadata at all.
	buf.NeedMetadata(nil, true)
	if _, err := c.ReadBlock(0, &buf); err != nil || buf.MetadataPending() {
		t.Fatalf("all: %v, pending %v", err, buf.MetadataPending())
	}
	buf.NeedMetadata(nil, false)
	if _, err := c.ReadBlock(len(meta.Blocks)-1, &buf); err != nil || !buf.MetadataPending() {
		t.Fatalf("none: %v, pending %v", err, buf.MetadataPending())
	}
}

// TestReadBlockWithoutLines: the same timestamps and metadata as ReadBlock,
// no line bytes, under either codec.
func TestReadBlockWithoutLines(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	ents := randomEntries(rng, 4000)
	for i := range ents {
		if i%3 == 0 {
			ents[i].Metadata = labels.New("detected_level", []string{"info", "error"}[i%2])
		}
	}
	for _, codec := range []Codec{CodecZstd, CodecLZ4} {
		b, meta, err := Encode(testLabels, cloneEntries(ents), Options{BlockSize: MinBlockSize, Codec: codec})
		if err != nil {
			t.Fatal(err)
		}
		c, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		var full, bare BlockBuffer
		for i := range meta.Blocks {
			want, err := c.ReadBlock(i, &full)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ReadBlockWithoutLines(i, &bare)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(bare.Lines()) != 0 {
				t.Fatalf("%v block %d: %d entries, want %d; %d line bytes", codec, i, len(got), len(want), len(bare.Lines()))
			}
			for k := range got {
				if got[k].Line != nil || got[k].Timestamp != want[k].Timestamp || !got[k].Metadata.Equal(want[k].Metadata) {
					t.Fatalf("%v block %d entry %d: %+v, want %+v without its line", codec, i, k, got[k], want[k])
				}
			}
		}
	}
}
