package chunk

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
)

// decodeAll reads every entry of an encoded chunk, checksums and content
// hash verified.
func decodeAll(t *testing.T, data []byte) (*Chunk, []Entry) {
	t.Helper()
	c, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	var bb BlockBuffer
	var out []Entry
	for i := range c.Meta().Blocks {
		es, err := c.ReadBlock(i, &bb)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out = append(out, e.Clone())
		}
	}
	return c, out
}

// A compactor decodes a chunk and encodes its entries again at LevelBetter
// with 1 MiB blocks: the result must be the same chunk (ID, labels,
// entries, metadata) in fewer bytes.
func TestReencodeAtLevelBetterKeepsIDAndEntries(t *testing.T) {
	streams := loadCorpus(t, 4<<20)
	if len(streams) == 0 {
		t.Fatal("no corpus files")
	}
	for _, codec := range []Codec{CodecZstd, CodecLZ4} {
		var fastTotal, betterTotal, chunks int
		for si, s := range streams {
			lbls := labels.New("family", s.family, "file", s.path)
			for ci, lines := range splitBytes(s.lines, 2<<20) {
				ents := entriesOf(lines, int64(si)*1e15)
				// Structured metadata on some entries, as a push with
				// detected levels carries it.
				for k := range ents {
					if k%3 == 0 {
						ents[k].Metadata = labels.New("detected_level", []string{"info", "warn", "error"}[k%9/3], "n", fmt.Sprint(k%7))
					}
				}
				fast, fm, err := Encode(lbls, ents, Options{Codec: codec})
				if err != nil {
					t.Fatal(err)
				}
				_, decoded := decodeAll(t, fast)
				better, bm, err := Encode(fm.Labels, decoded, Options{Codec: codec, Level: LevelBetter, BlockSize: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				if bm.ID != fm.ID {
					t.Fatalf("%s chunk %d (%s): re-encoded ID %s, original %s", s.path, ci, codec, bm.ID, fm.ID)
				}
				c2, again := decodeAll(t, better)
				if c2.Meta().Codec != codec || !c2.Meta().Labels.Equal(lbls) {
					t.Fatalf("%s: codec %s labels %s after re-encoding", s.path, c2.Meta().Codec, c2.Meta().Labels)
				}
				if len(again) != len(ents) {
					t.Fatalf("%s chunk %d: %d entries after re-encoding, want %d", s.path, ci, len(again), len(ents))
				}
				for k := range again {
					if again[k].Timestamp != decoded[k].Timestamp || !bytes.Equal(again[k].Line, decoded[k].Line) || !again[k].Metadata.Equal(decoded[k].Metadata) {
						t.Fatalf("%s chunk %d entry %d differs after re-encoding", s.path, ci, k)
					}
				}
				fastTotal += len(fast)
				betterTotal += len(better)
				chunks++
			}
		}
		t.Logf("%s: %d chunks, %d bytes at LevelFast/256 KiB, %d at LevelBetter/1 MiB (%.1f %% smaller)",
			codec, chunks, fastTotal, betterTotal, 100*(1-float64(betterTotal)/float64(fastTotal)))
		if betterTotal >= fastTotal*97/100 {
			t.Fatalf("%s: LevelBetter with 1 MiB blocks saved less than 3 %% (%d -> %d bytes)", codec, fastTotal, betterTotal)
		}
	}
}

func TestEncodeRejectsUnknownLevel(t *testing.T) {
	if _, _, err := Encode(labels.New("a", "b"), []Entry{{Timestamp: 1, Line: []byte("x")}}, Options{Level: 7}); err == nil {
		t.Fatal("level 7 was accepted")
	}
}

// TestLevelBetterStoresPoorlyCompressingSectionsRaw checks the rule that a
// LevelBetter section must save rawLiteralsSlack percent to be stored
// compressed: bytes drawn from 128 values (Huffman saves about 12 %) are
// stored raw at LevelBetter, while repetitive log text is compressed and
// decodes back to itself.
func TestLevelBetterStoresPoorlyCompressingSectionsRaw(t *testing.T) {
	noise := make([]byte, 64<<10)
	x := uint64(88172645463325252)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		noise[i] = byte(x % 128)
	}
	got, err := compressSectionAt(CodecZstd, LevelBetter, nil, noise)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, noise) {
		t.Fatalf("noise stored in %d bytes of %d, want raw", len(got), len(noise))
	}
	var text []byte
	for i := 0; len(text) < 64<<10; i++ {
		text = fmt.Appendf(text, "10.0.%d.%d - - [17/May/2015:10:05:%02d +0000] \"GET /index.html HTTP/1.1\" 200 %d\n", i%7, i%251, i%60, 1000+i%97)
	}
	comp, err := compressSectionAt(CodecZstd, LevelBetter, nil, text)
	if err != nil {
		t.Fatal(err)
	}
	if len(comp)*100 > len(text)*(100-rawLiteralsSlack) {
		t.Fatalf("log text stored in %d bytes of %d, want compressed", len(comp), len(text))
	}
	back, err := decompressSection(CodecZstd, nil, comp, len(text))
	if err != nil || !bytes.Equal(back, text) {
		t.Fatalf("log text did not decode back (%v)", err)
	}
}
