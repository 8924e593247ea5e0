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
