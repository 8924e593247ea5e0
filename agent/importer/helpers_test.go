package importer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// fakeShipper decodes and verifies every chunk it is given, records its
// entries, and acknowledges it from another goroutine, as a real spool
// does once the server stored the chunk.
type fakeShipper struct {
	t       testing.TB
	verify  bool
	noStore bool // count only (benchmarks)

	mu      sync.Mutex
	ids     []string
	streams map[string]*stream // by labels string
	chunks  int
	codecs  map[chunk.Codec]int // chunks by codec
	pending sync.WaitGroup

	// onShip, when set, runs before each chunk is taken; an error refuses
	// the chunk.
	onShip func(n int) error
}

type stream struct {
	labels  labels.Labels
	entries []chunk.Entry
}

func newFakeShipper(t testing.TB) *fakeShipper {
	return &fakeShipper{t: t, verify: true, streams: map[string]*stream{}}
}

func (f *fakeShipper) Ship(ctx context.Context, data []byte, ack func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	n := f.chunks
	f.chunks++
	f.mu.Unlock()
	if f.onShip != nil {
		if err := f.onShip(n); err != nil {
			return err
		}
	}
	if !f.noStore {
		c, err := chunk.Decode(data)
		if err != nil {
			return fmt.Errorf("fake shipper: decode: %w", err)
		}
		if f.verify {
			if err := c.Verify(); err != nil {
				return fmt.Errorf("fake shipper: verify: %w", err)
			}
		}
		meta := c.Meta()
		var buf chunk.BlockBuffer
		var ents []chunk.Entry
		for i := range meta.Blocks {
			bl, err := c.ReadBlock(i, &buf)
			if err != nil {
				return fmt.Errorf("fake shipper: read block: %w", err)
			}
			for _, e := range bl {
				ents = append(ents, e.Clone())
			}
		}
		key := meta.Labels.String()
		f.mu.Lock()
		f.ids = append(f.ids, meta.ID.String())
		if f.codecs == nil {
			f.codecs = map[chunk.Codec]int{}
		}
		f.codecs[meta.Codec]++
		s := f.streams[key]
		if s == nil {
			s = &stream{labels: meta.Labels.Copy()}
			f.streams[key] = s
		}
		s.entries = append(s.entries, ents...)
		f.mu.Unlock()
	}
	f.pending.Add(1)
	go func() {
		defer f.pending.Done()
		ack()
	}()
	return nil
}

func (f *fakeShipper) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() { f.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// byFile returns the stored entries of each file label, in line order.
func (f *fakeShipper) byFile() map[string][]chunk.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]chunk.Entry{}
	for _, s := range f.streams {
		file := s.labels.Get(LabelFile)
		out[file] = append(out[file], s.entries...)
	}
	for _, ents := range out {
		sort.SliceStable(ents, func(i, j int) bool { return lineNo(ents[i]) < lineNo(ents[j]) })
	}
	return out
}

func (f *fakeShipper) sortedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := append([]string(nil), f.ids...)
	sort.Strings(ids)
	return ids
}

func lineNo(e chunk.Entry) int {
	n, _ := strconv.Atoi(e.Metadata.Get("line"))
	return n
}

// entryKey identifies an entry with its stream, for set comparisons.
func entryKey(lbls labels.Labels, e chunk.Entry) string {
	return fmt.Sprintf("%s|%d|%s|%s", lbls, e.Timestamp, e.Metadata, e.Line)
}

func (f *fakeShipper) entrySet() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	set := map[string]bool{}
	for _, s := range f.streams {
		for _, e := range s.entries {
			set[entryKey(s.labels, e)] = true
		}
	}
	return set
}

// countLines counts lines as the importer does: a final line without a
// terminator counts.
func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// TestMain keeps the importer's structured logs out of test output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
