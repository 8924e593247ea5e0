package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

func openTest(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func closeTest(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close store: %v", err)
	}
}

func sel(t *testing.T, pairs ...string) []*labels.Matcher {
	t.Helper()
	var ms []*labels.Matcher
	for i := 0; i < len(pairs); i += 2 {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, pairs[i], pairs[i+1]))
	}
	return ms
}

// readAll returns every entry of the matching streams in [from, through),
// from chunks and heads, in time order per stream.
func readAll(t *testing.T, s *Store, tenant string, ms []*labels.Matcher, from, through int64) map[string][]chunk.Entry {
	t.Helper()
	out := map[string][]chunk.Entry{}
	var buf []byte
	var bb chunk.BlockBuffer
	for _, sd := range s.Select(tenant, ms, from, through) {
		var all []chunk.Entry
		for _, ref := range sd.Chunks {
			c, b, err := s.ReadChunk(ref, buf)
			buf = b
			if err != nil {
				t.Fatalf("read chunk: %v", err)
			}
			for i := range c.Meta().Blocks {
				es, err := c.ReadBlock(i, &bb)
				if err != nil {
					t.Fatalf("read block: %v", err)
				}
				for _, e := range es {
					if e.Timestamp >= from && e.Timestamp < through {
						all = append(all, e.Clone()) // metadata strings point into the block buffer
					}
				}
			}
		}
		all = append(all, sd.Head...)
		slices.SortStableFunc(all, func(a, b chunk.Entry) int { return int(a.Timestamp - b.Timestamp) })
		out[sd.Labels.String()] = all
	}
	return out
}

func entries(from int64, n int, prefix string) []chunk.Entry {
	out := make([]chunk.Entry, n)
	for i := range out {
		out[i] = chunk.Entry{Timestamp: from + int64(i)*int64(time.Millisecond), Line: []byte(fmt.Sprintf("%s line %d", prefix, i))}
	}
	return out
}

func TestAppendSelectAndRestart(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := context.Background()
	ls := labels.New("job", "app", "host", "a")
	base := time.Date(2019, 3, 4, 10, 0, 0, 0, time.UTC).UnixNano() // old timestamps are normal
	in := entries(base, 1000, "hello")
	md := labels.New("detected_level", "info", "line", "7")
	in[7].Metadata = md
	if err := s.Append(ctx, "t1", []Stream{{Labels: ls, Entries: in}}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s, "t1", sel(t, "job", "app"), base, base+int64(time.Hour))
	if n := len(got[ls.String()]); n != 1000 {
		t.Fatalf("before restart: %d entries, want 1000", n)
	}
	if !got[ls.String()][7].Metadata.Equal(md) {
		t.Fatalf("metadata lost: %v", got[ls.String()][7].Metadata)
	}
	// Crash-like restart: no Close, so nothing was flushed; the WAL must
	// bring everything back.
	s.closing.Store(true)
	close(s.stop)
	s.bg.Wait()
	s.wal.close()
	s.unlock()

	s = openTest(t, dir, Options{})
	defer closeTest(t, s)
	got = readAll(t, s, "t1", sel(t, "job", "app"), base, base+int64(time.Hour))
	if n := len(got[ls.String()]); n != 1000 {
		t.Fatalf("after WAL replay: %d entries, want 1000", n)
	}
	for i, e := range got[ls.String()] {
		if string(e.Line) != fmt.Sprintf("hello line %d", i) {
			t.Fatalf("entry %d = %q", i, e.Line)
		}
	}
}

func TestFlushThenRestartKeepsEverythingOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, Options{TargetChunkSize: 4 << 10})
	ls := labels.New("job", "flush")
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; i < 20; i++ {
		if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(base+int64(i)*int64(time.Second), 50, fmt.Sprintf("batch%02d", i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// More entries after the flush stay only in the WAL and heads.
	if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(base+int64(time.Minute), 10, "late")}}); err != nil {
		t.Fatal(err)
	}
	sd := s.Select("t", sel(t, "job", "flush"), base, base+int64(time.Hour))
	if len(sd) != 1 || len(sd[0].Chunks) < 2 {
		t.Fatalf("expected several flushed chunks, got %+v", sd)
	}
	// Simulate a crash: the WAL still holds records that chunks hold too.
	crashStop(s)

	s = openTest(t, dir, Options{TargetChunkSize: 4 << 10})
	defer closeTest(t, s)
	got := readAll(t, s, "t", sel(t, "job", "flush"), base, base+int64(time.Hour))[ls.String()]
	if len(got) != 20*50+10 {
		t.Fatalf("after restart: %d entries, want %d (duplicates or losses)", len(got), 20*50+10)
	}
	seen := map[string]bool{}
	for _, e := range got {
		k := fmt.Sprintf("%d/%s", e.Timestamp, e.Line)
		if seen[k] {
			t.Fatalf("duplicate entry %s", k)
		}
		seen[k] = true
	}
}

func TestOutOfOrderAndManyDays(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer closeTest(t, s)
	ctx := context.Background()
	ls := labels.New("job", "ooo")
	days := []time.Time{
		time.Date(2020, 5, 3, 23, 59, 59, 0, time.UTC),
		time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 5, 4, 0, 0, 1, 0, time.UTC),
		time.Date(1999, 12, 31, 12, 0, 0, 0, time.UTC),
	}
	var in []chunk.Entry
	for i, d := range days {
		in = append(in, chunk.Entry{Timestamp: d.UnixNano(), Line: []byte(fmt.Sprintf("e%d", i))})
	}
	if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: in}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	from := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	through := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	got := readAll(t, s, "t", sel(t, "job", "ooo"), from, through)[ls.String()]
	want := []string{"e3", "e1", "e0", "e2"}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if string(got[i].Line) != w {
			t.Fatalf("entry %d = %s, want %s", i, got[i].Line, w)
		}
	}
	// One partition per day.
	if n := len(s.tenant("t", false).partitions()); n != 4 {
		t.Fatalf("%d partitions, want 4", n)
	}
	// A narrow range sees only its day.
	d0 := days[0].UnixNano()
	narrow := readAll(t, s, "t", sel(t, "job", "ooo"), d0, d0+int64(2*time.Second))[ls.String()]
	if len(narrow) != 1 || string(narrow[0].Line) != "e0" {
		t.Fatalf("narrow range: %v", narrow)
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer closeTest(t, s)
	ctx := context.Background()
	ls := labels.New("job", "shared-name")
	now := time.Now().UnixNano()
	if err := s.Append(ctx, "alice", []Stream{{Labels: ls, Entries: entries(now, 5, "alice")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "bob", []Stream{{Labels: ls, Entries: entries(now, 3, "bob")}}); err != nil {
		t.Fatal(err)
	}
	a := readAll(t, s, "alice", sel(t, "job", "shared-name"), now-1, now+int64(time.Hour))
	b := readAll(t, s, "bob", sel(t, "job", "shared-name"), now-1, now+int64(time.Hour))
	if len(a[ls.String()]) != 5 || len(b[ls.String()]) != 3 {
		t.Fatalf("alice sees %d, bob sees %d", len(a[ls.String()]), len(b[ls.String()]))
	}
	if len(s.Select("mallory", nil, 0, 1<<62)) != 0 {
		t.Fatal("a tenant without data sees streams")
	}
	if got := s.LabelValues("bob", "job", nil, now-1, now+int64(time.Hour)); !slices.Equal(got, []string{"shared-name"}) {
		t.Fatalf("label values: %v", got)
	}
}

func TestStreamLimit(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{MaxStreamsPerTenant: 3})
	defer closeTest(t, s)
	ctx := context.Background()
	now := time.Now().UnixNano()
	var streams []Stream
	for i := 0; i < 5; i++ {
		streams = append(streams, Stream{Labels: labels.New("n", fmt.Sprint(i)), Entries: entries(now, 1, "x")})
	}
	err := s.Append(ctx, "t", streams)
	var lim *StreamLimitError
	if !errors.As(err, &lim) || len(lim.Rejected) != 2 {
		t.Fatalf("want a StreamLimitError refusing 2 streams, got %v", err)
	}
	if n := len(s.Series("t", nil, 0, 1<<62)); n != 3 {
		t.Fatalf("%d streams stored, want the 3 admitted", n)
	}
	// Existing live streams keep accepting entries.
	if err := s.Append(ctx, "t", streams[:1]); err != nil {
		t.Fatalf("live stream refused: %v", err)
	}
	// Another tenant is not affected.
	if err := s.Append(ctx, "other", streams[:3]); err != nil {
		t.Fatalf("other tenant: %v", err)
	}
}

func TestPutChunkDeduplicatesAndRejectsCorruption(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer closeTest(t, s)
	ctx := context.Background()
	ls := labels.New("job", "agent", "file", "a.log")
	base := time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	data, meta, err := chunk.Encode(ls, entries(base, 100, "agent"), chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dup, err := s.PutChunk(ctx, "t", data)
	if err != nil || dup {
		t.Fatalf("first put: dup=%v err=%v", dup, err)
	}
	dup, err = s.PutChunk(ctx, "t", data)
	if err != nil || !dup {
		t.Fatalf("second put: dup=%v err=%v", dup, err)
	}
	bad := slices.Clone(data)
	bad[len(bad)/2] ^= 0xff
	if _, err := s.PutChunk(ctx, "t", bad); err == nil {
		t.Fatal("corrupt chunk accepted")
	}
	got := readAll(t, s, "t", sel(t, "job", "agent"), base, base+int64(time.Hour))[ls.String()]
	if len(got) != 100 {
		t.Fatalf("%d entries, want 100 (stored once)", len(got))
	}
	if sd := s.Select("t", sel(t, "job", "agent"), base, base+int64(time.Hour)); len(sd[0].Chunks) != 1 || sd[0].Chunks[0].ID != meta.ID {
		t.Fatalf("chunks: %+v", sd)
	}
}

func TestWALIsTrimmedAfterFlush(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{WALSegmentSize: 8 << 10})
	defer closeTest(t, s)
	ctx := context.Background()
	now := time.Now().UnixNano()
	for i := 0; i < 50; i++ {
		if err := s.Append(ctx, "t", []Stream{{Labels: labels.New("job", "wal"), Entries: entries(now+int64(i), 20, "w")}}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := walSegments(filepath.Join(dir, "wal"))
	if len(before) < 3 {
		t.Fatalf("expected several WAL segments, got %d", len(before))
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := walSegments(filepath.Join(dir, "wal"))
	if len(after) != 1 {
		t.Fatalf("after flush %d WAL segments remain, want only the active one", len(after))
	}
}

func TestRetentionDropsOldPartitionsOnly(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Retention: 48 * time.Hour})
	defer closeTest(t, s)
	ctx := context.Background()
	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour).UnixNano()
	recent := now.Add(-time.Hour).UnixNano()
	ls := labels.New("job", "ret")
	if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: append(entries(old, 3, "old"), entries(recent, 2, "new")...)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.applyRetention(now)
	got := readAll(t, s, "t", sel(t, "job", "ret"), 0, now.UnixNano()+1)[ls.String()]
	if len(got) != 2 || string(got[0].Line) != "new line 0" {
		t.Fatalf("after retention: %v", got)
	}
}

func TestDataDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	defer closeTest(t, s)
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
}

func TestTornWALTailIsCutAndRestIsKept(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := context.Background()
	now := time.Now().UnixNano()
	ls := labels.New("job", "torn")
	for i := 0; i < 3; i++ {
		if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(now+int64(i)*1000, 1, fmt.Sprint("r", i))}}); err != nil {
			t.Fatal(err)
		}
	}
	seg := walSegmentPath(filepath.Join(dir, "wal"), s.wal.n)
	s.closing.Store(true)
	close(s.stop)
	s.bg.Wait()
	s.wal.close()
	s.unlock()
	// A crash in the middle of a write leaves half a record behind.
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5, 6})
	f.Close()

	s = openTest(t, dir, Options{})
	defer closeTest(t, s)
	got := readAll(t, s, "t", sel(t, "job", "torn"), now-1, now+int64(time.Second))[ls.String()]
	if len(got) != 3 {
		t.Fatalf("%d entries after torn tail, want 3", len(got))
	}
	// And the store keeps accepting writes after recovery.
	if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(now+5000, 1, "after")}}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentAppendsAreAllVisible(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{TargetChunkSize: 16 << 10})
	defer closeTest(t, s)
	ctx := context.Background()
	now := time.Now().UnixNano()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				ls := labels.New("job", "conc", "w", fmt.Sprint(w%3))
				if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(now+int64(w*1000+i), 10, fmt.Sprintf("w%d-%d", w, i))}}); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	total := 0
	for _, es := range readAll(t, s, "t", sel(t, "job", "conc"), now-1, now+int64(time.Hour)) {
		total += len(es)
	}
	if total != 8*50*10 {
		t.Fatalf("%d entries visible, want %d", total, 8*50*10)
	}
}

func TestSubscribeDeliversNewEntries(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer closeTest(t, s)
	ctx := context.Background()
	now := time.Now().UnixNano()
	if err := s.Append(ctx, "t", []Stream{{Labels: labels.New("job", "a"), Entries: entries(now, 1, "before")}}); err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe("t", sel(t, "job", "a"), 4)
	other := s.Subscribe("other", nil, 4)
	defer sub.Close()
	defer other.Close()
	if err := s.Append(ctx, "t", []Stream{
		{Labels: labels.New("job", "a"), Entries: entries(now+1, 2, "live")},
		{Labels: labels.New("job", "b"), Entries: entries(now+1, 1, "not matched")},
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case batch := <-sub.C:
		if len(batch) != 1 || len(batch[0].Entries) != 2 || string(batch[0].Entries[1].Line) != "live line 1" {
			t.Fatalf("batch: %+v", batch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no batch within 5s")
	}
	select {
	case b := <-other.C:
		t.Fatalf("another tenant's subscriber got %+v", b)
	default:
	}
	// A reader that does not keep up loses batches, counted.
	for i := 0; i < 10; i++ {
		if err := s.Append(ctx, "t", []Stream{{Labels: labels.New("job", "a"), Entries: entries(now+int64(10+i), 1, "flood")}}); err != nil {
			t.Fatal(err)
		}
	}
	if sub.Dropped() != 6 {
		t.Fatalf("dropped %d, want 6 (10 batches into a buffer of 4)", sub.Dropped())
	}
}

func TestDeleteStreamsRemovesDataFromMemoryAndDisk(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{TargetChunkSize: 8 << 10})
	ctx := context.Background()
	base := time.Date(2022, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	keep := labels.New("workspace", "keep", "file", "a.log")
	gone := labels.New("workspace", "case-1", "file", "secret.log")
	for i := 0; i < 10; i++ {
		if err := s.Append(ctx, "t", []Stream{
			{Labels: keep, Entries: entries(base+int64(i)*int64(time.Minute), 50, fmt.Sprint("keep", i))},
			{Labels: gone, Entries: entries(base+int64(i)*int64(time.Minute), 50, fmt.Sprint("TOPSECRET", i))},
		}); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An agent chunk of the deleted stream, too.
	data, _, err := chunk.Encode(gone, entries(base+int64(time.Hour), 5, "TOPSECRET agent"), chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutChunk(ctx, "t", data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteStreams(ctx, "t", nil); err == nil {
		t.Fatal("a delete without a selective matcher was accepted")
	}
	n, err := s.DeleteStreams(ctx, "t", sel(t, "workspace", "case-1"))
	if err != nil || n != 1 {
		t.Fatalf("delete: %d %v", n, err)
	}
	all := readAll(t, s, "t", nil, 0, 1<<62)
	if len(all[gone.String()]) != 0 || len(all[keep.String()]) != 500 {
		t.Fatalf("after delete: %d deleted entries visible, %d kept (want 0 and 500)", len(all[gone.String()]), len(all[keep.String()]))
	}
	// New data under the same labels is new data.
	if err := s.Append(ctx, "t", []Stream{{Labels: gone, Entries: entries(base+int64(2*time.Hour), 3, "after")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	closeTest(t, s)
	// Nothing of it is left on disk: every chunk of every segment is
	// decoded and searched (chunks are compressed, so a plain grep would
	// prove nothing), and the WAL was trimmed by the flush.
	found := 0
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "TOPSECRET") {
			t.Errorf("%s holds deleted text in the clear", p)
		}
		if !strings.HasSuffix(p, ".seg") {
			return nil
		}
		for rest := b[len(segmentMagic):]; len(rest) > 0; {
			c, n, err := chunk.DecodeFirst(rest)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			rest = rest[n:]
			found++
			var bb chunk.BlockBuffer
			for k := range c.Meta().Blocks {
				es, err := c.ReadBlock(k, &bb)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					if strings.Contains(string(e.Line), "TOPSECRET") {
						t.Errorf("%s still holds a deleted entry: %s", p, e.Line)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("no chunk found on disk: the check above checked nothing")
	}
	t.Logf("searched %d chunks on disk", found)
	s = openTest(t, dir, Options{})
	defer closeTest(t, s)
	all = readAll(t, s, "t", nil, 0, 1<<62)
	if len(all[keep.String()]) != 500 || len(all[gone.String()]) != 3 {
		t.Fatalf("after restart: %d kept, %d under the deleted labels (want 500 and the 3 new ones)", len(all[keep.String()]), len(all[gone.String()]))
	}
}

func TestDeleteSurvivesACrashBeforeTheWALIsTrimmed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := context.Background()
	now := time.Now().UnixNano()
	gone := labels.New("workspace", "w")
	if err := s.Append(ctx, "t", []Stream{{Labels: gone, Entries: entries(now, 10, "in-wal")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteStreams(ctx, "t", sel(t, "workspace", "w")); err != nil {
		t.Fatal(err)
	}
	// Crash: the WAL still holds the deleted entries.
	s.closing.Store(true)
	close(s.stop)
	s.bg.Wait()
	s.wal.close()
	s.unlock()
	s = openTest(t, dir, Options{})
	defer closeTest(t, s)
	if got := readAll(t, s, "t", nil, 0, 1<<62)[gone.String()]; len(got) != 0 {
		t.Fatalf("%d deleted entries came back from the WAL", len(got))
	}
}

func TestConcurrentPutChunkOfTheSameChunkStoresItOnce(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer closeTest(t, s)
	ctx := context.Background()
	ls := labels.New("job", "agent")
	data, _, err := chunk.Encode(ls, entries(time.Now().UnixNano(), 200, "resent"), chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, dups := 0, 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dup, err := s.PutChunk(ctx, "t", data)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if dup {
				dups++
			} else {
				stored++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if stored != 1 || dups != 7 {
		t.Fatalf("stored %d times, %d duplicates; want 1 and 7", stored, dups)
	}
	if sd := s.Select("t", sel(t, "job", "agent"), 0, 1<<62); len(sd) != 1 || len(sd[0].Chunks) != 1 {
		t.Fatalf("chunks: %+v", sd)
	}
	if _, err := s.PutChunk(ctx, "t", []byte("garbage")); !errors.Is(err, ErrInvalidChunk) {
		t.Fatalf("garbage: %v, want ErrInvalidChunk", err)
	}
}

// TestChunkCodecs writes chunks under one codec, reopens the store under
// the other, writes more, and reads everything back: the codec is per
// chunk, so a change of configuration needs no migration.
func TestChunkCodecs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ls := labels.New("job", "app")
	base := time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC).UnixNano()
	codecs := func(s *Store) map[chunk.Codec]int {
		out := map[chunk.Codec]int{}
		for _, sd := range s.Select("t", sel(t, "job", "app"), base, base+int64(time.Hour)) {
			for _, ref := range sd.Chunks {
				c, _, err := s.ReadChunk(ref, nil)
				if err != nil {
					t.Fatal(err)
				}
				out[c.Meta().Codec]++
			}
		}
		return out
	}
	for i, codec := range []string{"lz4", ""} {
		s := openTest(t, dir, Options{ChunkCodec: codec})
		if err := s.Append(ctx, "t", []Stream{{Labels: ls, Entries: entries(base+int64(i)*int64(time.Minute), 500, codec)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got := codecs(s)
		want := map[chunk.Codec]int{chunk.CodecLZ4: 1}
		if i == 1 {
			want[chunk.CodecZstd]++ // the default
		}
		if !maps.Equal(got, want) {
			t.Fatalf("after writing with %q: chunks by codec %v, want %v", codec, got, want)
		}
		if n := len(readAll(t, s, "t", sel(t, "job", "app"), base, base+int64(time.Hour))[ls.String()]); n != 500*(i+1) {
			t.Fatalf("read %d entries, want %d", n, 500*(i+1))
		}
		closeTest(t, s)
	}
	if _, err := Open(t.TempDir(), Options{ChunkCodec: "gzip"}); err == nil || !strings.Contains(err.Error(), "chunk_codec") {
		t.Fatalf("Open with codec gzip: %v", err)
	}
}
