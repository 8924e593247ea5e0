// Package build turns log entries into chunks (pkg/chunk), one stream per
// Builder, cutting a chunk when it reaches a target size or age. The tailer
// and the workspace importer both build their chunks with it.
package build

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// Options tune a Builder. Zero values mean the defaults.
type Options struct {
	// TargetBytes is the raw size (line plus metadata bytes) at which Full
	// reports a chunk ready; default DefaultTargetBytes.
	TargetBytes int
	// MaxAge is how long the first entry may wait before Due reports the
	// chunk ready; default DefaultMaxAge.
	MaxAge time.Duration
	// Chunk tunes the encoder.
	Chunk chunk.Options
	// Budget, when set, accounts the bytes every Builder sharing it holds,
	// so a caller can bound the memory of many open builders.
	Budget *Budget
}

// Defaults of Options.
const (
	// DefaultTargetBytes: 1 MiB of lines compress to a chunk of typically
	// 50-200 KiB, big enough for good compression and a useful filter,
	// small enough that a thousand files buffering at once stay cheap.
	DefaultTargetBytes = 1 << 20
	// DefaultMaxAge bounds how late a quiet file's lines reach the server.
	DefaultMaxAge = 5 * time.Second
)

// Budget counts the memory held by a set of builders: line and metadata
// bytes plus a fixed overhead per entry.
type Budget struct{ n atomic.Int64 }

// Bytes is the total buffered now.
func (b *Budget) Bytes() int64 { return b.n.Load() }

var (
	chunksBuilt  = metrics.GetOrCreateCounter(`logsift_agent_chunks_built_total`)
	chunkBytes   = metrics.GetOrCreateCounter(`logsift_agent_chunk_bytes_built_total`)
	chunkEntries = metrics.GetOrCreateCounter(`logsift_agent_chunk_entries_built_total`)
	buildErrors  = metrics.GetOrCreateCounter(`logsift_agent_chunk_build_errors_total`)
)

// batchPool recycles the buffers of builders: a builder holds a batch only
// while it has entries, so a thousand idle streams cost almost nothing.
var batchPool = sync.Pool{New: func() any { return new(batch) }}

type batch struct {
	buf  []byte // lines back to back
	ents []chunk.Entry
	ends []int // end of each entry's line in buf
}

// Builder accumulates the entries of one stream. It is not safe for
// concurrent use.
type Builder struct {
	labels  labels.Labels
	opts    Options
	b       *batch
	raw     int // line plus metadata bytes
	mem     int // what the budget was charged
	started time.Time
}

// New returns an empty builder for the stream lbls (sorted, valid).
func New(lbls labels.Labels, opts Options) *Builder {
	if opts.TargetBytes <= 0 {
		opts.TargetBytes = DefaultTargetBytes
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	return &Builder{labels: lbls, opts: opts}
}

// Labels returns the stream labels.
func (b *Builder) Labels() labels.Labels { return b.labels }

// Entries is the number of entries held.
func (b *Builder) Entries() int {
	if b.b == nil {
		return 0
	}
	return len(b.b.ents)
}

// RawBytes is the line plus metadata bytes held.
func (b *Builder) RawBytes() int { return b.raw }

// Full reports whether the held entries reached the target size.
func (b *Builder) Full() bool { return b.raw >= b.opts.TargetBytes }

// Due reports whether the builder holds entries older than MaxAge at now.
func (b *Builder) Due(now time.Time) bool {
	return b.Entries() > 0 && now.Sub(b.started) >= b.opts.MaxAge
}

// Grow prepares room for about n more bytes of lines: a reader that just
// read n bytes calls it so that a busy stream's buffer is sized once per
// chunk instead of doubling its way up.
func (b *Builder) Grow(n int) {
	if b.b == nil {
		b.b = getBatch()
		b.started = time.Now()
	}
	bt := b.b
	if cap(bt.buf)-len(bt.buf) >= n {
		return
	}
	want := max(len(bt.buf)+n, 2*cap(bt.buf))
	if n >= 64<<10 {
		// A busy stream: size for the whole chunk.
		want = max(want, b.opts.TargetBytes+b.opts.TargetBytes/4)
	}
	nb := make([]byte, len(bt.buf), want)
	copy(nb, bt.buf)
	bt.buf = nb
}

// Add appends an entry. The line is copied; md is kept as given and must
// not be modified afterwards.
func (b *Builder) Add(ts int64, line []byte, md labels.Labels) {
	if b.b == nil {
		b.b = getBatch()
		b.started = time.Now()
	}
	bt := b.b
	bt.buf = append(bt.buf, line...)
	bt.ents = append(bt.ents, chunk.Entry{Timestamp: ts, Metadata: md})
	bt.ends = append(bt.ends, len(bt.buf))
	n := len(line)
	for _, l := range md {
		n += len(l.Name) + len(l.Value) + 2
	}
	b.raw += n
	if b.opts.Budget != nil {
		// The budget counts memory, not just line bytes: each entry also
		// costs its slot in ents and ends.
		b.mem += n + entryOverhead
		b.opts.Budget.n.Add(int64(n + entryOverhead))
	}
}

// entryOverhead is the memory of one entry besides its bytes: a
// chunk.Entry and an end offset.
const entryOverhead = 64

// Cut encodes the held entries as one chunk and empties the builder. It
// returns nil data when the builder is empty. On an encoding error (which
// only invalid labels or over-long lines cause) the entries are dropped.
func (b *Builder) Cut() ([]byte, *chunk.Meta, error) {
	d := b.Detach()
	if d == nil {
		return nil, nil, nil
	}
	return d.Encode()
}

// Detached is a builder's entries taken out for encoding elsewhere, so
// that the reader can go on filling the builder while another core
// encodes. Its memory stays charged to the budget until Encode.
type Detached struct {
	labels labels.Labels
	opts   Options
	b      *batch
	mem    int
}

// Detach takes the held entries out of the builder (nil when empty).
func (b *Builder) Detach() *Detached {
	if b.Entries() == 0 {
		return nil
	}
	d := &Detached{labels: b.labels, opts: b.opts, b: b.b, mem: b.mem}
	b.b, b.raw, b.mem = nil, 0, 0
	return d
}

// Entries is the number of detached entries.
func (d *Detached) Entries() int { return len(d.b.ents) }

// Encode encodes the entries as one chunk and releases their memory.
func (d *Detached) Encode() ([]byte, *chunk.Meta, error) {
	bt := d.b
	start := 0
	for i, end := range bt.ends {
		bt.ents[i].Line = bt.buf[start:end:end]
		start = end
	}
	data, meta, err := chunk.Encode(d.labels, bt.ents, d.opts.Chunk)
	if d.opts.Budget != nil {
		d.opts.Budget.n.Add(-int64(d.mem))
	}
	release(bt)
	d.b = nil
	if err != nil {
		buildErrors.Inc()
		return nil, nil, err
	}
	chunksBuilt.Inc()
	chunkBytes.Add(len(data))
	chunkEntries.Add(meta.Entries)
	return data, meta, nil
}

// Reset drops the held entries and gives the buffers back.
func (b *Builder) Reset() {
	if b.opts.Budget != nil {
		b.opts.Budget.n.Add(-int64(b.mem))
	}
	b.raw, b.mem = 0, 0
	if b.b != nil {
		release(b.b)
		b.b = nil
	}
}

// bigBatches keeps a couple of large batches: a busy file cuts a full
// chunk every few milliseconds and would otherwise regrow its buffers
// from nothing each time. Few slots, so idle agents hold little.
var bigBatches = make(chan *batch, 4)

func getBatch() *batch {
	select {
	case bt := <-bigBatches:
		return bt
	default:
		return batchPool.Get().(*batch)
	}
}

func release(bt *batch) {
	clear(bt.ents) // drop line and metadata references
	bt.buf, bt.ents, bt.ends = bt.buf[:0], bt.ents[:0], bt.ends[:0]
	switch {
	case cap(bt.buf) <= 64<<10 && cap(bt.ents) <= 1024:
		batchPool.Put(bt)
	case cap(bt.buf) <= 8<<20 && cap(bt.ents) <= 1<<17:
		select {
		case bigBatches <- bt:
		default:
		}
	}
	// Anything larger (a burst of long lines) is left to the GC.
}
