package store

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/labels"
)

// corpusStreams turns real log files into streams of one UTC day, one entry
// per line 10 ms apart, with structured metadata on every other entry (as a
// server that detects levels adds it), at most maxBytes of lines per file.
func corpusStreams(t *testing.T, day time.Time, maxBytes int) []Stream {
	t.Helper()
	root := corpus.Require(t)
	files := []string{"elastic-examples/apache_access_combined.log", "elastic-examples/auth.log", "elastic-examples/kafka/kafka0/kafkaServer-gc.log"}
	var out []Stream
	for fi, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxBytes {
			b = b[:maxBytes]
		}
		var ents []chunk.Entry
		for i, l := range corpus.Lines(b) {
			e := chunk.Entry{Timestamp: day.UnixNano() + int64(fi)*int64(time.Millisecond) + int64(i)*int64(10*time.Millisecond), Line: l}
			if i%2 == 0 {
				e.Metadata = labels.New("detected_level", []string{"info", "warn", "error"}[i%3], "trace_id", fmt.Sprintf("%08x", i*7919))
			}
			ents = append(ents, e)
		}
		out = append(out, Stream{Labels: labels.New("job", "corpus", "file", filepath.Base(f)), Entries: ents})
	}
	return out
}

// appendAll writes streams in batches of 500 entries per stream.
func appendAll(t *testing.T, s *Store, tenant string, streams []Stream) {
	t.Helper()
	ctx := context.Background()
	for off := 0; ; off += 500 {
		var batch []Stream
		for _, st := range streams {
			if off < len(st.Entries) {
				batch = append(batch, Stream{Labels: st.Labels, Entries: st.Entries[off:min(off+500, len(st.Entries))]})
			}
		}
		if len(batch) == 0 {
			return
		}
		if err := s.Append(ctx, tenant, batch); err != nil {
			t.Fatal(err)
		}
	}
}

// chunkIDs lists the IDs of every stored chunk of the tenant, by stream.
func chunkIDs(s *Store, tenant string) map[string][]chunk.ID {
	out := map[string][]chunk.ID{}
	for _, sd := range s.Select(tenant, nil, 0, 1<<62) {
		for _, c := range sd.Chunks {
			out[sd.Labels.String()] = append(out[sd.Labels.String()], c.ID)
		}
	}
	return out
}

// segmentBytes is the size of every segment file under dir.
func segmentBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".seg") {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		n += st.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// partitionDirs lists the partition directories under dir.
func partitionDirs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "index" {
			out = append(out, filepath.Dir(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// indexState reads a partition's index from disk: the records and the
// segment files, and fails on a segment no record references.
func indexState(t *testing.T, pdir string) (recs []indexRecord) {
	t.Helper()
	p := openPartition(pdir, 0)
	referenced := map[uint32]bool{}
	if err := p.load(func(r indexRecord) {
		recs = append(recs, r)
		referenced[r.ref.segment] = true
	}); err != nil {
		t.Fatal(err)
	}
	ids, err := p.segmentIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !referenced[id] {
			t.Errorf("%s: segment %d is referenced by no index record", pdir, id)
		}
	}
	return recs
}

func setHook(t *testing.T, fn func(string)) {
	t.Helper()
	compactHook = fn
	t.Cleanup(func() { compactHook = nil })
}

func TestCompactionKeepsEveryEntryAndShrinksTheStore(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	streams, before, ids := flushCorpus(t, s, 1<<20)
	ctx := context.Background()
	sizeBefore := segmentBytes(t, dir)
	var total int
	for _, st := range streams {
		total += len(st.Entries)
		if got := len(before[st.Labels.String()]); got != len(st.Entries) {
			t.Fatalf("%s: %d entries stored, %d pushed", st.Labels, got, len(st.Entries))
		}
	}
	// A query that planned before the swap holds this reference.
	old := s.Select("t", nil, 0, 1<<62)[0].Chunks[0]

	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	sizeAfter := segmentBytes(t, dir)
	t.Logf("%d entries in %d streams; segments %d -> %d bytes (%.1f %% smaller)", total, len(streams), sizeBefore, sizeAfter, 100*(1-float64(sizeAfter)/float64(sizeBefore)))
	if sizeAfter >= sizeBefore {
		t.Fatalf("segments grew or stayed: %d -> %d bytes", sizeBefore, sizeAfter)
	}
	check := func(when string) { checkUnchanged(t, s, before, ids, when) }
	check("after compaction")
	// The old reference still reads, from the unlinked segment.
	c, _, err := s.ReadChunk(old, nil)
	if err != nil {
		t.Fatalf("a reference taken before compaction no longer reads: %v", err)
	}
	if c.Meta().ID != old.ID {
		t.Fatalf("old reference reads chunk %s, want %s", c.Meta().ID, old.ID)
	}
	pdirs := partitionDirs(t, dir)
	if len(pdirs) != 1 {
		t.Fatalf("%d partitions, want 1", len(pdirs))
	}
	recs := indexState(t, pdirs[0])
	for _, r := range recs {
		if !r.compacted {
			t.Fatalf("record of chunk %s not marked compacted", r.ref.ID)
		}
	}
	// A second run has nothing to do: compacted chunks are never redone.
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if got := segmentBytes(t, dir); got != sizeAfter {
		t.Fatalf("a second compaction rewrote compacted chunks: %d -> %d bytes", sizeAfter, got)
	}
	closeTest(t, s)
	s = openTest(t, dir, Options{})
	defer closeTest(t, s)
	check("after reopening")
}

// compaction.codec rewrites chunks in the codec it names, keeping their
// IDs and entries; an unknown codec is refused when the store opens.
func TestCompactionCodec(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{Compaction: CompactionOptions{Codec: "gzip"}}); err == nil || !strings.Contains(err.Error(), "compaction.codec") {
		t.Fatalf("compaction.codec gzip: %v, want an error naming the setting", err)
	}
	for _, bs := range []int{-1, 1024, 64 << 20} {
		if _, err := Open(t.TempDir(), Options{Compaction: CompactionOptions{BlockSize: bs}}); err == nil || !strings.Contains(err.Error(), "compaction.block_size") {
			t.Fatalf("compaction.block_size %d: %v, want an error naming the setting", bs, err)
		}
	}
	s := openTest(t, t.TempDir(), Options{Compaction: CompactionOptions{Codec: "lz4"}})
	defer closeTest(t, s)
	_, before, ids := flushCorpus(t, s, 256<<10)
	ctx := context.Background()
	codecs := func() map[chunk.Codec]int {
		n := map[chunk.Codec]int{}
		for _, sr := range s.Select("t", nil, 0, 1<<62) {
			for _, ref := range sr.Chunks {
				c, _, err := s.ReadChunk(ref, nil)
				if err != nil {
					t.Fatal(err)
				}
				n[c.Meta().Codec]++
			}
		}
		return n
	}
	if got := codecs(); got[chunk.CodecLZ4] != 0 || got[chunk.CodecZstd] == 0 {
		t.Fatalf("before compaction: chunks by codec %v, want zstd only", got)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if got := codecs(); got[chunk.CodecZstd] != 0 || got[chunk.CodecLZ4] == 0 {
		t.Fatalf("after compaction: chunks by codec %v, want lz4 only", got)
	}
	checkUnchanged(t, s, before, ids, "after compaction")
}

// compaction.codec auto writes a chunk in LZ4 HC when that stores its raw
// lines within compaction.auto_min_ratio, and in zstd otherwise: corpus
// logs of a few MiB fit the default budget of a sixth (the access log
// with some margin), lines of random hex (at best
// about half their size in either codec) do not. A chunk in zstd is
// checked against what LZ4 HC would have made of it.
func TestCompactionCodecAuto(t *testing.T) {
	for _, r := range []float64{-1, 0.5, math.NaN()} {
		_, err := Open(t.TempDir(), Options{Compaction: CompactionOptions{Codec: "auto", AutoMinRatio: r}})
		if err == nil || !strings.Contains(err.Error(), "compaction.auto_min_ratio") {
			t.Fatalf("auto_min_ratio %g: %v, want an error naming the setting", r, err)
		}
	}
	s := openTest(t, t.TempDir(), Options{Compaction: CompactionOptions{Codec: "auto"}})
	defer closeTest(t, s)
	day := time.Date(2023, 5, 17, 0, 0, 0, 0, time.UTC)
	streams := corpusStreams(t, day, 4<<20)
	noise := Stream{Labels: labels.New("job", "noise")}
	x := uint64(0x9e3779b97f4a7c15)
	for i := range 3000 {
		line := make([]byte, 0, 96)
		for len(line) < 96 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			line = fmt.Appendf(line, "%016x", x)
		}
		noise.Entries = append(noise.Entries, chunk.Entry{Timestamp: day.UnixNano() + int64(i)*int64(time.Millisecond), Line: line})
	}
	appendAll(t, s, "t", append(streams, noise))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, ids := readAll(t, s, "t", nil, 0, 1<<62), chunkIDs(s, "t")
	encoded := func() (zstd, lz4 uint64) {
		return s.m.compactEncoded[chunk.CodecZstd].Get(), s.m.compactEncoded[chunk.CodecLZ4].Get()
	}
	zstd0, lz40 := encoded()
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	zstd1, lz41 := encoded()
	checkUnchanged(t, s, before, ids, "after compaction")
	byCodec := map[string]map[chunk.Codec]int{}
	for _, sr := range s.Select("t", nil, 0, 1<<62) {
		job := sr.Labels.Get("job")
		if byCodec[job] == nil {
			byCodec[job] = map[chunk.Codec]int{}
		}
		for _, ref := range sr.Chunks {
			c, _, err := s.ReadChunk(ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := c.Meta()
			byCodec[job][m.Codec]++
			ratio := float64(m.RawBytes) / float64(ref.Size)
			switch m.Codec {
			case chunk.CodecLZ4:
				if ratio < defaultAutoMinRatio {
					t.Errorf("%s chunk %s in LZ4 HC at 1/%.2f of raw, over the budget of 1/%d", job, m.ID, ratio, defaultAutoMinRatio)
				}
			case chunk.CodecZstd:
				var ents []chunk.Entry
				for i := range m.Blocks {
					var bb chunk.BlockBuffer
					es, err := c.ReadBlock(i, &bb)
					if err != nil {
						t.Fatal(err)
					}
					ents = append(ents, es...)
				}
				lz, _, err := chunk.Encode(m.Labels, ents, chunk.Options{Codec: chunk.CodecLZ4, Level: chunk.LevelBetter, BlockSize: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				if lzRatio := float64(m.RawBytes) / float64(len(lz)); lzRatio >= defaultAutoMinRatio {
					t.Errorf("%s chunk %s in zstd, though LZ4 HC stores it at 1/%.2f of raw", job, m.ID, lzRatio)
				}
			default:
				t.Errorf("%s chunk %s in codec %s", job, m.ID, m.Codec)
			}
		}
	}
	t.Logf("chunks by job and codec: %v", byCodec)
	// The counters are process-wide; other tests may add to them.
	if n := byCodec["corpus"][chunk.CodecLZ4]; lz41-lz40 < uint64(n) {
		t.Errorf("logsift_store_compaction_encoded_chunks_total{codec=\"lz4\"} rose by %d, want at least %d", lz41-lz40, n)
	}
	if n := byCodec["corpus"][chunk.CodecZstd] + byCodec["noise"][chunk.CodecZstd]; zstd1-zstd0 < uint64(n) {
		t.Errorf("logsift_store_compaction_encoded_chunks_total{codec=\"zstd\"} rose by %d, want at least %d", zstd1-zstd0, n)
	}
	if got := byCodec["noise"]; got[chunk.CodecZstd] == 0 || got[chunk.CodecLZ4] != 0 {
		t.Errorf("random lines: chunks by codec %v, want zstd only", got)
	}
	if got := byCodec["corpus"]; got[chunk.CodecLZ4] == 0 {
		t.Errorf("corpus logs: chunks by codec %v, want LZ4 HC for those that fit a sixth", got)
	}
}

// flushCorpus writes about size bytes of corpus lines per stream into
// tenant "t" of s and flushes them; it returns the streams, what the store
// then holds, and its chunk IDs, for checkUnchanged after a compaction.
func flushCorpus(t *testing.T, s *Store, size int) ([]Stream, map[string][]chunk.Entry, map[string][]chunk.ID) {
	t.Helper()
	streams := corpusStreams(t, time.Date(2023, 5, 17, 0, 0, 0, 0, time.UTC), size)
	appendAll(t, s, "t", streams)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return streams, readAll(t, s, "t", nil, 0, 1<<62), chunkIDs(s, "t")
}

// checkUnchanged fails unless the store holds the entries of before, in
// order, in chunks with the IDs of ids.
func checkUnchanged(t *testing.T, s *Store, before map[string][]chunk.Entry, ids map[string][]chunk.ID, when string) {
	t.Helper()
	after := readAll(t, s, "t", nil, 0, 1<<62)
	if len(after) != len(before) {
		t.Fatalf("%s: %d streams, want %d", when, len(after), len(before))
	}
	for ls, want := range before {
		got := after[ls]
		if len(got) != len(want) {
			t.Fatalf("%s: %s has %d entries, want %d", when, ls, len(got), len(want))
		}
		for i := range want {
			if got[i].Timestamp != want[i].Timestamp || string(got[i].Line) != string(want[i].Line) || !got[i].Metadata.Equal(want[i].Metadata) {
				t.Fatalf("%s: %s entry %d differs: %+v, want %+v", when, ls, i, got[i], want[i])
			}
		}
	}
	if got := chunkIDs(s, "t"); !mapsEqualIDs(got, ids) {
		t.Fatalf("%s: chunk IDs changed", when)
	}
}

func mapsEqualIDs(a, b map[string][]chunk.ID) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// entriesOfStream reads every entry of one stream and fails on a
// duplicate (same timestamp and line).
func countUnique(t *testing.T, s *Store, tenant string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for ls, es := range readAll(t, s, tenant, nil, 0, 1<<62) {
		seen := map[string]bool{}
		for _, e := range es {
			k := fmt.Sprintf("%d/%s", e.Timestamp, e.Line)
			if seen[k] {
				t.Fatalf("%s: entry %s is there twice", ls, k)
			}
			seen[k] = true
		}
		out[ls] = len(es)
	}
	return out
}

func TestWritesDuringCompactionLandAndSurvive(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, Options{TargetChunkSize: 16 << 10})
	base := time.Date(2024, 2, 3, 4, 0, 0, 0, time.UTC).UnixNano()
	ls := labels.New("job", "busy")
	for i := 0; i < 10; i++ {
		if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(base+int64(i)*int64(time.Second), 400, fmt.Sprint("first", i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	steps := map[string]bool{}
	setHook(t, func(step string) {
		steps[step] = true
		if step != "sealed" && step != "encoding" {
			return
		}
		// Writes into the same partition while the compactor works on it:
		// flushed ones into a new segment, the rest stays in the WAL.
		if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(base+int64(time.Hour), 300, "during-"+step)}}); err != nil {
			t.Error(err)
		}
		if step == "sealed" {
			if err := s.Flush(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"sealed", "encoding", "encoded", "indexed", "retired"} {
		if !steps[st] {
			t.Fatalf("compaction did not pass step %s", st)
		}
	}
	want := 10*400 + 2*300
	if got := countUnique(t, s, "t")[ls.String()]; got != want {
		t.Fatalf("after compaction: %d entries, want %d", got, want)
	}
	compactHook = nil
	// The chunks written during the compaction are compacted by the next.
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	closeTest(t, s)
	for _, pd := range partitionDirs(t, dir) {
		for _, r := range indexState(t, pd) {
			if !r.compacted {
				t.Errorf("chunk %s not compacted by the second run", r.ref.ID)
			}
		}
	}
	s = openTest(t, dir, Options{TargetChunkSize: 16 << 10})
	defer closeTest(t, s)
	if got := countUnique(t, s, "t")[ls.String()]; got != want {
		t.Fatalf("after reopening: %d entries, want %d", got, want)
	}
}

func TestDeletionDuringCompactionRemovesItsStreams(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, Options{TargetChunkSize: 8 << 10})
	base := time.Date(2022, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	keep := labels.New("workspace", "keep")
	gone := labels.New("workspace", "case-9")
	for i := 0; i < 8; i++ {
		if err := s.Append(ctx, "t", []Stream{
			{Labels: keep, Entries: entries(base+int64(i)*int64(time.Minute), 200, fmt.Sprint("keep", i))},
			{Labels: gone, Entries: entries(base+int64(i)*int64(time.Minute), 200, fmt.Sprint("TOPSECRET", i))},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var delN int
	var delErr error
	setHook(t, func(step string) {
		if step != "encoding" {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			delN, delErr = s.DeleteStreams(ctx, "t", sel(t, "workspace", "case-9"))
		}()
		// The deletion hides the stream at once, then waits for this
		// compaction before it rewrites the partition.
		deadline := time.Now().Add(10 * time.Second)
		for len(readAll(t, s, "t", sel(t, "workspace", "case-9"), 0, 1<<62)) > 0 {
			if time.Now().After(deadline) {
				t.Error("the deletion did not hide the stream")
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if delErr != nil || delN != 1 {
		t.Fatalf("delete: %d streams, %v", delN, delErr)
	}
	got := countUnique(t, s, "t")
	if got[gone.String()] != 0 || got[keep.String()] != 1600 {
		t.Fatalf("after delete and compaction: %v", got)
	}
	closeTest(t, s)
	found := 0
	for _, pd := range partitionDirs(t, dir) {
		recs := indexState(t, pd)
		for _, r := range recs {
			if r.labels.String() == gone.String() {
				t.Errorf("index still lists chunk %s of the deleted stream", r.ref.ID)
			}
			if !r.compacted {
				t.Errorf("chunk %s lost its compacted mark in the rewrite", r.ref.ID)
			}
		}
		found += len(recs)
		segs, _ := filepath.Glob(filepath.Join(pd, "*.seg"))
		for _, seg := range segs {
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			for rest := b[len(segmentMagic):]; len(rest) > 0; {
				c, n, err := chunk.DecodeFirst(rest)
				if err != nil {
					t.Fatalf("%s: %v", seg, err)
				}
				rest = rest[n:]
				var bb chunk.BlockBuffer
				for k := range c.Meta().Blocks {
					es, err := c.ReadBlock(k, &bb)
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range es {
						if strings.Contains(string(e.Line), "TOPSECRET") {
							t.Fatalf("%s still holds a deleted entry", seg)
						}
					}
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no index record found: nothing was checked")
	}
	s = openTest(t, dir, Options{})
	defer closeTest(t, s)
	got = countUnique(t, s, "t")
	if got[gone.String()] != 0 || got[keep.String()] != 1600 {
		t.Fatalf("after reopening: %v", got)
	}
}

func TestRetentionDuringCompactionAbortsIt(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, Options{Retention: 48 * time.Hour, TargetChunkSize: 8 << 10})
	defer closeTest(t, s)
	now := time.Now()
	oldLs, newLs := labels.New("job", "old"), labels.New("job", "new")
	if err := s.Append(ctx, "t", []Stream{
		{Labels: oldLs, Entries: entries(now.Add(-10*24*time.Hour).UnixNano(), 2000, "old")},
		{Labels: newLs, Entries: entries(now.Add(-time.Hour).UnixNano(), 50, "new")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	oldDir := filepath.Join(s.tenant("t", false).dir, partitionDirName(dayOf(now.Add(-10*24*time.Hour).UnixNano())))
	dropped := false
	setHook(t, func(step string) {
		if step == "encoding" && !dropped {
			dropped = true
			s.applyRetention(now)
		}
	})
	if err := s.Compact(ctx); err != nil {
		t.Fatalf("compaction did not end cleanly: %v", err)
	}
	if !dropped {
		t.Fatal("the hook never ran")
	}
	if _, err := os.Stat(oldDir); !os.IsNotExist(err) {
		t.Fatalf("expired partition %s is still there (%v)", oldDir, err)
	}
	got := countUnique(t, s, "t")
	if got[oldLs.String()] != 0 || got[newLs.String()] != 50 {
		t.Fatalf("after retention and compaction: %v", got)
	}
}

func TestBackgroundCompactionWaitsForMinAge(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, Options{Compaction: CompactionOptions{Enabled: true, Interval: 20 * time.Millisecond, MinAge: 300 * time.Millisecond}})
	defer closeTest(t, s)
	ls := labels.New("job", "bg")
	if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), 3000, "bg")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p := s.tenant("t", false).partitions()[0]
	written := time.Unix(0, p.lastWrite.Load())
	pending := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.uncompacted
	}
	deadline := time.Now().Add(20 * time.Second)
	for pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the background compactor did not compact the partition")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if done := time.Now(); done.Sub(written) < 300*time.Millisecond {
		t.Fatalf("compacted %v after the last write, before min_age", done.Sub(written))
	}
	// The swap is done; the round that did it unlinks the old segment
	// after it, and holds compactMu until then.
	s.compactMu.Lock()
	s.compactMu.Unlock()
	recs := indexState(t, p.dir)
	if len(recs) == 0 || !recs[0].compacted {
		t.Fatalf("index not compacted: %d records", len(recs))
	}
	if got := countUnique(t, s, "t")[ls.String()]; got != 3000 {
		t.Fatalf("%d entries after background compaction, want 3000", got)
	}
}

// An index written before compaction existed (kind 1 only) still loads,
// and kind 2 records round-trip.
func TestIndexRecordKinds(t *testing.T) {
	rec := indexRecord{ref: ChunkRef{ID: chunk.ID{1, 2, 3}, MinTime: 5, MaxTime: 9, Entries: 3, RawBytes: 30, Size: 100, segment: 4, offset: 8, filterOff: 40, filterLen: 20},
		stream: 77, labels: labels.New("a", "b"), watermark: 12}
	for _, compacted := range []bool{false, true} {
		rec.compacted = compacted
		b := encodeIndexRecord(nil, &rec)
		if want := byte(1 + map[bool]int{false: 0, true: 1}[compacted]); b[8] != want {
			t.Fatalf("kind byte %d, want %d", b[8], want)
		}
		got, err := decodeIndexRecord(b[8:])
		if err != nil {
			t.Fatal(err)
		}
		if got.compacted != compacted || got.ref.ID != rec.ref.ID || got.ref.segment != 4 || got.watermark != 12 {
			t.Fatalf("round trip: %+v", got)
		}
	}
	b := encodeIndexRecord(nil, &rec)
	b[8] = 3
	if _, err := decodeIndexRecord(b[8:]); err == nil {
		t.Fatal("kind 3 was accepted")
	}
}
