//go:build unix

package tail

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/agent/build"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// memSink keeps shipped chunks in memory and acknowledges them at once,
// or holds the acks when hold is set.
type memSink struct {
	mu     sync.Mutex
	lines  []string // "filename|line"
	tags   [][]byte
	hold   bool
	held   []func()
	chunks int
}

func (m *memSink) ShipTagged(_ context.Context, data, tag []byte, ack func()) error {
	c, err := chunk.Decode(data)
	if err != nil {
		return err
	}
	var bb chunk.BlockBuffer
	var lines []string
	fn := c.Meta().Labels.Get("filename")
	for i := range c.Meta().Blocks {
		ents, err := c.ReadBlock(i, &bb)
		if err != nil {
			return err
		}
		for _, e := range ents {
			lines = append(lines, filepath.Base(fn)+"|"+string(e.Line))
		}
	}
	m.mu.Lock()
	m.lines = append(m.lines, lines...)
	m.tags = append(m.tags, slices.Clone(tag))
	m.chunks++
	hold := m.hold
	if hold {
		m.held = append(m.held, ack)
	}
	m.mu.Unlock()
	if !hold {
		ack()
	}
	return nil
}

func (m *memSink) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.lines)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testOptions(dir string, globs ...string) Options {
	return Options{
		Groups:         []Group{{Include: globs, Labels: labels.New("job", "test")}},
		PositionsFile:  filepath.Join(dir, "positions.json"),
		PollInterval:   20 * time.Millisecond,
		RescanInterval: 100 * time.Millisecond,
		DrainTimeout:   100 * time.Millisecond,
		Build:          build.Options{MaxAge: 50 * time.Millisecond},
		Logger:         quiet(),
		Metrics:        metrics.NewSet(),
	}
}

// running is a tailer running in the background.
type running struct {
	t      *Tailer
	cancel context.CancelFunc
	done   chan struct{}
	claims []func() // acks of claimed chunks
}

func start(t *testing.T, opts Options, sink Sink, claims ...[]byte) *running {
	t.Helper()
	tl, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	var acks []func()
	for _, c := range claims {
		acks = append(acks, tl.Claim(c))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: tl, cancel: cancel, done: make(chan struct{}), claims: acks}
	go func() {
		defer close(r.done)
		_ = tl.Run(ctx)
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
	_ = r.t.SavePositions()
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s %04d", prefix, i))
	}
	return out
}

func withFile(file string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = file + "|" + l
	}
	return out
}

// waitLines waits until the sink holds exactly want (as a multiset) and
// fails with the difference otherwise.
func waitLines(t *testing.T, sink *memSink, want []string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	deadline := time.Now().Add(15 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		got = sink.got()
		slices.Sort(got)
		if slices.Equal(got, want) {
			// Hold on a moment to catch duplicates arriving late.
			time.Sleep(150 * time.Millisecond)
			got = sink.got()
			slices.Sort(got)
			if slices.Equal(got, want) {
				return
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("got %d lines, want %d\n%s", len(got), len(want), diff(got, want))
}

func diff(got, want []string) string {
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want {
		count[w]--
	}
	var b strings.Builder
	n := 0
	for k, v := range count {
		if v != 0 && n < 20 {
			fmt.Fprintf(&b, "  %+d %q\n", v, k)
			n++
		}
	}
	return b.String()
}

func TestFollowsGlobsWithDoubleStar(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(filepath.Join(logs, "a", "b"), 0o755)
	appendLines(t, filepath.Join(logs, "top.log"), numbered("top", 0, 10)...)
	appendLines(t, filepath.Join(logs, "a", "b", "deep.log"), numbered("deep", 0, 10)...)
	appendLines(t, filepath.Join(logs, "a", "skip.txt"), "not matched")
	sink := &memSink{}
	start(t, testOptions(dir, filepath.Join(logs, "**", "*.log")), sink)
	want := append(withFile("top.log", numbered("top", 0, 10)), withFile("deep.log", numbered("deep", 0, 10))...)
	waitLines(t, sink, want)

	// A new directory and file after start, found by fsnotify or rescan.
	os.MkdirAll(filepath.Join(logs, "new", "dir"), 0o755)
	appendLines(t, filepath.Join(logs, "new", "dir", "late.log"), numbered("late", 0, 5)...)
	appendLines(t, filepath.Join(logs, "top.log"), numbered("top", 10, 20)...)
	want = append(want, withFile("late.log", numbered("late", 0, 5))...)
	want = append(want, withFile("top.log", numbered("top", 10, 20))...)
	waitLines(t, sink, want)
}

func TestRenameRotationDrainsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, numbered("a", 0, 50)...)
	sink := &memSink{}
	r := start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("app.log", numbered("a", 0, 50)))

	// The writer keeps its descriptor across the rename and writes a bit
	// more before reopening, as daemons do until they get their signal.
	old, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	for _, l := range numbered("a", 50, 60) {
		old.WriteString(l + "\n")
	}
	old.Close()
	appendLines(t, path, numbered("b", 0, 30)...)
	// Both carry the original file name: the rotated file's lines belong
	// to the same stream.
	want := withFile("app.log", append(numbered("a", 0, 60), numbered("b", 0, 30)...))
	waitLines(t, sink, want)
	if r.t.m.rotations.Get() == 0 {
		t.Error("rotation not counted")
	}
	// The rotated file is let go once drained.
	waitFor(t, func() bool { return r.t.Stats().Files == 1 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTruncationStartsOver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, numbered("a", 0, 40)...)
	sink := &memSink{}
	r := start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("app.log", numbered("a", 0, 40)))
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	// Rewritten past the old offset before the agent looks: only the
	// content check can tell.
	appendLines(t, path, numbered("bbbbbbbbbb", 0, 40)...)
	want := withFile("app.log", append(numbered("a", 0, 40), numbered("bbbbbbbbbb", 0, 40)...))
	waitLines(t, sink, want)
	if r.t.m.truncations.Get() == 0 {
		t.Error("truncation not counted")
	}
}

func TestDeleteAndRecreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, numbered("a", 0, 20)...)
	sink := &memSink{}
	start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("app.log", numbered("a", 0, 20)))
	os.Remove(path)
	appendLines(t, path, numbered("a", 0, 20)...) // same content, new file
	appendLines(t, path, numbered("c", 0, 5)...)
	want := withFile("app.log", append(append(numbered("a", 0, 20), numbered("a", 0, 20)...), numbered("c", 0, 5)...))
	waitLines(t, sink, want)
}

func TestRestartResumesAtAcknowledgedPosition(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, numbered("a", 0, 30)...)
	sink := &memSink{}
	r := start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("app.log", numbered("a", 0, 30)))
	r.stop()
	appendLines(t, path, numbered("a", 30, 45)...)

	sink2 := &memSink{}
	start(t, testOptions(dir, path), sink2)
	waitLines(t, sink2, withFile("app.log", numbered("a", 30, 45)))
}

func TestRestartSkipsLinesStillInTheSpool(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, numbered("a", 0, 30)...)
	sink := &memSink{hold: true} // nothing is acknowledged
	r := start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("app.log", numbered("a", 0, 30)))
	r.stop()
	sink.mu.Lock()
	tags := slices.Clone(sink.tags)
	sink.mu.Unlock()
	appendLines(t, path, numbered("a", 30, 40)...)

	// The spool still holds the first chunks: the new run claims them and
	// reads on after them; their acks then move the position.
	sink2 := &memSink{}
	r2 := start(t, testOptions(dir, path), sink2, tags...)
	waitLines(t, sink2, withFile("app.log", numbered("a", 30, 40)))
	for _, ack := range r2.claims {
		ack() // what the spool does once the server stores them
	}
	r2.stop()
	b, _ := os.ReadFile(filepath.Join(dir, "positions.json"))
	st, _ := os.Stat(path)
	if want := fmt.Sprintf(`"offset": %d`, st.Size()); !strings.Contains(string(b), want) {
		t.Fatalf("positions %s, want %s", b, want)
	}
}

func TestCopyTruncateWhileStoppedReadsTheCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, numbered("a", 0, 30)...)
	sink := &memSink{}
	r := start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("app.log", numbered("a", 0, 30)))
	r.stop()
	// Lines written while the agent is down, then copytruncate, then new
	// lines: the unread lines exist only in the copy.
	appendLines(t, path, numbered("a", 30, 50)...)
	copyFile(t, path, path+".1")
	os.Truncate(path, 0)
	appendLines(t, path, numbered("b", 0, 10)...)

	sink2 := &memSink{}
	start(t, testOptions(dir, path), sink2)
	waitLines(t, sink2, withFile("app.log", append(numbered("a", 30, 50), numbered("b", 0, 10)...)))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRenameWhileStoppedDrainsRotatedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, numbered("a", 0, 10)...)
	sink := &memSink{}
	r := start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("app.log", numbered("a", 0, 10)))
	r.stop()
	appendLines(t, path, numbered("a", 10, 20)...)
	os.Rename(path, path+".1")
	appendLines(t, path, numbered("b", 0, 5)...)
	sink2 := &memSink{}
	start(t, testOptions(dir, path), sink2)
	waitLines(t, sink2, withFile("app.log", append(numbered("a", 10, 20), numbered("b", 0, 5)...)))
}

func TestInodeReuseIsANewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, numbered("new", 0, 10)...)
	fi, _ := os.Stat(path)
	id := idOf(fi)
	// A position for this inode from an earlier file with other content.
	ps := []position{{ID: 42, Path: path, Dev: id.dev, Ino: id.ino, FPLen: 20, FP: hashBytes([]byte("something else here!")), Offset: 50}}
	if err := savePositions(filepath.Join(dir, "positions.json"), ps); err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("app.log", numbered("new", 0, 10)))
}

func TestLinesAreCleanedAndBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	opts := testOptions(dir, path)
	opts.MaxLineBytes = 16
	f, _ := os.Create(path)
	f.WriteString("crlf line\r\n")
	f.WriteString(strings.Repeat("x", 40) + "\n")
	f.WriteString("partial")
	f.Close()
	sink := &memSink{}
	r := start(t, opts, sink)
	waitLines(t, sink, withFile("app.log", []string{"crlf line", strings.Repeat("x", 16)}))
	appendLines(t, path, " now done")
	waitLines(t, sink, withFile("app.log", []string{"crlf line", strings.Repeat("x", 16), "partial now done"}))
	if r.t.m.linesTruncated.Get() != 1 {
		t.Fatalf("truncated lines %d", r.t.m.linesTruncated.Get())
	}
}

func TestOpenFileLimit(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir, filepath.Join(dir, "*.log"))
	opts.MaxOpenFiles = 4
	var want []string
	for i := range 20 {
		name := fmt.Sprintf("f%02d.log", i)
		appendLines(t, filepath.Join(dir, name), numbered(name, 0, 5)...)
		want = append(want, withFile(name, numbered(name, 0, 5))...)
	}
	sink := &memSink{}
	r := start(t, opts, sink)
	waitLines(t, sink, want)
	for i := range 20 {
		name := fmt.Sprintf("f%02d.log", i)
		appendLines(t, filepath.Join(dir, name), numbered(name, 5, 8)...)
		want = append(want, withFile(name, numbered(name, 5, 8))...)
	}
	waitLines(t, sink, want)
	if st := r.t.Stats(); st.Files != 20 || st.Open > 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAcksMovePositionInOrder(t *testing.T) {
	tl, err := New(Options{PositionsFile: filepath.Join(t.TempDir(), "p.json"), Logger: quiet(), Metrics: metrics.NewSet()}, &memSink{})
	if err != nil {
		t.Fatal(err)
	}
	e := &entry{position: position{ID: 1}}
	for i, end := range []int64{100, 200, 300} {
		e.pending = append(e.pending, pendingChunk{n: uint64(i), end: end})
	}
	e.nextChunk = 3
	tl.acked(e, 1)
	if e.Offset != 0 {
		t.Fatalf("a later ack moved the position to %d", e.Offset)
	}
	tl.acked(e, 0)
	if e.Offset != 200 || len(e.pending) != 1 {
		t.Fatalf("offset %d pending %d, want 200 and 1", e.Offset, len(e.pending))
	}
	tl.acked(e, 2)
	if e.Offset != 300 || len(e.pending) != 0 {
		t.Fatalf("offset %d pending %d", e.Offset, len(e.pending))
	}
	tl.acked(e, 2) // a repeated ack is harmless
	if e.Offset != 300 {
		t.Fatal("repeated ack moved the position")
	}
}

func TestTinyFileFingerprintGrows(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.log")
	appendLines(t, path, "x")
	sink := &memSink{}
	r := start(t, testOptions(dir, path), sink)
	waitLines(t, sink, withFile("tiny.log", []string{"x"}))
	appendLines(t, path, "yy")
	waitLines(t, sink, withFile("tiny.log", []string{"x", "yy"}))
	r.stop()
	ps, err := loadPositions(filepath.Join(dir, "positions.json"))
	if err != nil || len(ps) != 1 {
		t.Fatalf("positions %v %v", ps, err)
	}
	if ps[0].FPLen != 5 || ps[0].FP != hashBytes([]byte("x\nyy\n")) || ps[0].Offset != 5 {
		t.Fatalf("position %+v", ps[0])
	}
}

func TestTagRoundTrip(t *testing.T) {
	e := &entry{position: position{ID: 7, Path: "/var/log/a.log", Dev: 3, Ino: 99, FPLen: 1024, FP: 12345}}
	b := encodeTag(e, 10, 500, 64, 777)
	tg, err := decodeTag(b)
	if err != nil {
		t.Fatal(err)
	}
	if tg.ID != 7 || tg.Path != e.Path || tg.Dev != 3 || tg.Ino != 99 || tg.FP != 12345 || tg.start != 10 || tg.end != 500 || tg.TailLen != 64 || tg.Tail != 777 {
		t.Fatalf("%+v", tg)
	}
	for i := range b {
		if _, err := decodeTag(b[:i]); err == nil {
			t.Fatalf("truncated tag of %d bytes decoded", i)
		}
	}
}

func FuzzDecodeTag(f *testing.F) {
	e := &entry{position: position{ID: 7, Path: "/var/log/a.log", Dev: 3, Ino: 99, FPLen: 1024, FP: 12345}}
	f.Add(encodeTag(e, 10, 500, 64, 777))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tg, err := decodeTag(b)
		if err != nil {
			return
		}
		if tg.end < tg.start || tg.FPLen > fpMax || tg.TailLen > tailMax {
			t.Fatalf("accepted an inconsistent tag %+v", tg)
		}
		e := &entry{position: tg.position}
		again, err := decodeTag(encodeTag(e, tg.start, tg.end, tg.TailLen, tg.Tail))
		if err != nil || again != tg {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}
