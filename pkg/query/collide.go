package query

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/store"
	"github.com/maypok86/otter/v2"
)

// Duplicates across the sources of a stream (an entry stored twice after a
// client resent it) have equal timestamps. Where two sources overlap in
// time, the scan used to put every entry into a query-wide set to find
// them, which cost a hash and a map insert per entry: a quarter of a
// pattern query over data pushed by concurrent clients, whose chunks of
// one stream overlap by minutes. Instead, before the scan, the timestamps
// of each overlapping source inside the overlap are read (the small
// timestamp sections of the blocks there, not the lines) and merged; only
// entries whose timestamp two sources share go through the set, and that
// is usually none.

// maxCollideTimestamps bounds the timestamps read for one stream: past
// it, the stream keeps the set for every entry in its overlaps rather
// than holding them all. The lists live only while one stream's shared
// timestamps are found (at most 32 MiB per worker), which is why they are
// not charged to the query's memory budget; the set they spare is (48
// bytes an entry).
var maxCollideTimestamps = 4 << 20 // a variable for the tests

// sharedTimestamps returns the timestamps within spans that two or more of
// srcs hold, sorted, and ok=false when the stream has too many entries in
// its overlaps to look (see maxCollideTimestamps).
func (rs *rangeScan) sharedTimestamps(ctx context.Context, srcs []source, spans []tspan, b *collideBuffers) (shared []int64, ok bool, err error) {
	var lists [][]int64
	total := 0
	b.lists = b.lists[:0]
	for i := range srcs {
		src := &srcs[i]
		if !overlapsSpans(spans, src.minT, src.maxT) {
			continue
		}
		var ts []int64
		if src.head != nil {
			b.ts = b.ts[:0]
			for k := range src.head {
				b.ts = append(b.ts, src.head[k].Timestamp)
			}
			ts = appendInSpans(nil, b.ts, spans)
		} else {
			var within bool
			if ts, within, err = rs.chunkTimestamps(ctx, src.ref, spans, b, maxCollideTimestamps-total); err != nil || !within {
				return nil, false, err
			}
		}
		total += len(ts)
		if total > maxCollideTimestamps {
			return nil, false, nil
		}
		lists = append(lists, ts)
	}
	return sharedIn(lists), true, nil
}

// collideBuffers are one goroutine's reusable buffers for reading
// timestamp sections.
type collideBuffers struct {
	hdr, sec, filter []byte
	ts               []int64
	ids              []chunk.ID
	key              []byte
	// lists holds, back to back, the timestamps of one stream's chunks
	// while they are merged (a megabyte or more a stream: allocating it
	// per chunk was a quarter of a pattern query's garbage).
	lists []int64
}

var collideBufferPool = sync.Pool{New: func() any { return new(collideBuffers) }}

// chunkTimestamps returns the timestamps of ref's entries inside spans,
// rising, reading only the header and the timestamp sections of the
// blocks that touch a span; within is false when the blocks hold more
// than limit entries. With a line filter, blocks whose filter rules the
// query out are left out: the scan offers none of their entries, and a
// duplicate of an entry the scan does offer has the same line, so its
// block passes the filter too.
func (rs *rangeScan) chunkTimestamps(ctx context.Context, ref *store.ChunkRef, spans []tspan, b *collideBuffers, limit int) (ts []int64, within bool, err error) {
	st := rs.ev.e.Store
	h, hdr, err := st.ReadHeader(*ref, b.hdr)
	b.hdr = hdr
	if err != nil {
		return nil, false, fmt.Errorf("query: %w", err)
	}
	blocks := h.Meta().Blocks
	wanted := func(i int) bool { return overlapsSpans(spans, blocks[i].MinTime, blocks[i].MaxTime) }
	if plan := rs.plan; plan != nil {
		f, fb, err := st.ReadFilter(*ref, b.filter)
		b.filter = fb
		if err != nil {
			return nil, false, fmt.Errorf("query: %w", err)
		}
		if !plan.mayMatch(func(nd *chunk.Needle) bool { return f.MayContainNeedle(nd) }) {
			return nil, true, nil
		}
		inSpans := wanted
		wanted = func(i int) bool {
			return inSpans(i) && plan.mayMatch(func(nd *chunk.Needle) bool { return f.BlockMayContainNeedle(i, nd) })
		}
	}
	n := 0
	for i := range blocks {
		if wanted(i) {
			n += blocks[i].Entries
		}
	}
	if n > limit {
		return nil, false, nil
	}
	start := len(b.lists)
	b.lists = slices.Grow(b.lists, n)
	out := b.lists[start : start : start+n]
	for i := range blocks {
		if !wanted(i) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		off, size, err := h.TimestampSection(i)
		if err != nil {
			return nil, false, fmt.Errorf("query: chunk %x: %w", ref.ID[:8], err)
		}
		if b.sec, err = st.ReadSection(*ref, off, size, b.sec); err != nil {
			return nil, false, fmt.Errorf("query: %w", err)
		}
		if b.ts, err = h.BlockTimestamps(i, b.sec, b.ts[:0]); err != nil {
			return nil, false, fmt.Errorf("query: chunk %x: %w", ref.ID[:8], err)
		}
		out = appendInSpans(out, b.ts, spans)
	}
	// Lists taken before a Grow keep the array they were cut from.
	b.lists = b.lists[:start+len(out)]
	return out, true, nil
}

// appendInSpans appends to dst the rising timestamps ts that lie in the
// sorted, disjoint spans, walking both together: a block's timestamps
// usually lie in one span or none, and a binary search per timestamp
// cost more than reading them.
func appendInSpans(dst, ts []int64, spans []tspan) []int64 {
	if len(ts) == 0 {
		return dst
	}
	k, _ := slices.BinarySearchFunc(spans, ts[0], func(s tspan, t int64) int { return cmpInt64(s.hi, t) })
	for i := 0; i < len(ts) && k < len(spans); {
		sp := spans[k]
		switch {
		case ts[i] > sp.hi:
			k++
		case ts[i] < sp.lo:
			// Skip to the span's start.
			n, _ := slices.BinarySearch(ts[i:], sp.lo)
			i += n
		default:
			// Take the run inside the span.
			n, _ := slices.BinarySearch(ts[i:], sp.hi+1)
			dst = append(dst, ts[i:i+n]...)
			i += n
		}
	}
	return dst
}

// overlapsSpans reports whether [lo, hi] meets one of the sorted,
// disjoint spans.
func overlapsSpans(sp []tspan, lo, hi int64) bool {
	i, _ := slices.BinarySearchFunc(sp, lo, func(s tspan, t int64) int { return cmpInt64(s.hi, t) })
	return i < len(sp) && sp[i].lo <= hi
}

// sharedIn returns the values that two or more of the rising lists hold,
// rising. A value repeated within one list only is not shared: repeats
// within a source are the scan's own business (dupRun). The lists are
// merged through a heap of their heads, n log k for n values in k lists.
func sharedIn(lists [][]int64) []int64 {
	h := make([]cursor, 0, len(lists))
	for _, l := range lists {
		if len(l) > 0 {
			h = append(h, cursor{l})
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	var out []int64
	for len(h) > 0 {
		v := h[0].l[0]
		holders := 0
		for len(h) > 0 && h[0].l[0] == v {
			holders++
			c := &h[0]
			for len(c.l) > 0 && c.l[0] == v {
				c.l = c.l[1:]
			}
			if len(c.l) == 0 {
				h[0] = h[len(h)-1]
				h = h[:len(h)-1]
			}
			if len(h) > 0 {
				siftDown(h, 0)
			}
		}
		if holders > 1 {
			out = append(out, v)
		}
	}
	return out
}

// cursor is the unread rest of one rising list.
type cursor struct{ l []int64 }

// siftDown restores the min-heap order of h (by each cursor's head) below i.
func siftDown(h []cursor, i int) {
	for {
		m := i
		if l := 2*i + 1; l < len(h) && h[l].l[0] < h[m].l[0] {
			m = l
		}
		if r := 2*i + 2; r < len(h) && h[r].l[0] < h[m].l[0] {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// findShared fills rs.shared and rs.sharedKnown for the streams whose
// sources overlap, on every core. sources are grouped by stream, in the
// order run appended them.
func (rs *rangeScan) findShared(ctx context.Context, sources []source) error {
	rs.shared = make([][]int64, len(rs.streams))
	rs.sharedKnown = make([]bool, len(rs.streams))
	var todo [][]source
	for lo := 0; lo < len(sources); {
		hi := lo
		for hi < len(sources) && sources[hi].stream == sources[lo].stream {
			hi++
		}
		if len(rs.overlaps[sources[lo].stream]) > 0 {
			todo = append(todo, sources[lo:hi])
		}
		lo = hi
	}
	if len(todo) == 0 {
		return nil
	}
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range min(rs.ev.par, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := collideBufferPool.Get().(*collideBuffers)
			defer collideBufferPool.Put(b)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(todo) || ctx.Err() != nil {
					return
				}
				srcs := todo[i]
				stream := srcs[0].stream
				key := sharedKey(srcs, b)
				if e, hit := lookupShared(key); hit {
					rs.shared[stream], rs.sharedKnown[stream] = e.ts, e.ok
					continue
				}
				shared, ok, err := rs.sharedTimestamps(ctx, srcs, rs.overlaps[stream], b)
				if err != nil {
					errMu.Lock()
					first = cmp.Or(first, err)
					errMu.Unlock()
					return
				}
				// With a line filter the blocks it rules out were not read,
				// so the answer holds for this query only; without one it
				// holds for any query over these chunks.
				if rs.plan == nil {
					storeShared(key, sharedEntry{shared, ok})
				}
				rs.shared[stream], rs.sharedKnown[stream] = shared, ok
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// Which timestamps the chunks of a stream share depends on nothing but
// those chunks, and a chunk's ID is the hash of its content: so the answer
// of the pre-pass is remembered by the IDs, process-wide, and a dashboard
// that asks again over the same sealed chunks skips reading their
// timestamp sections (2-5% of a pattern query over data from
// concurrent pushers). A stream with a head chunk, whose entries change,
// is not remembered.
type sharedEntry struct {
	ts []int64 // read-only once stored: scans of many queries share it
	ok bool
}

const sharedMemoBytes = 16 << 20

var sharedMemo = sync.OnceValue(func() *otter.Cache[string, sharedEntry] {
	c, err := otter.New(&otter.Options[string, sharedEntry]{
		MaximumWeight: sharedMemoBytes,
		Weigher: func(k string, e sharedEntry) uint32 {
			return uint32(len(k) + 64 + 8*len(e.ts))
		},
	})
	if err != nil { // the options are valid by construction
		return nil
	}
	return c
})

// sharedKey is the bound on timestamps read (the answer depends on it)
// and the IDs of srcs' chunks, sorted; "" when one of them is a head.
func sharedKey(srcs []source, b *collideBuffers) string {
	b.ids = b.ids[:0]
	for i := range srcs {
		if srcs[i].ref == nil {
			return ""
		}
		b.ids = append(b.ids, srcs[i].ref.ID)
	}
	slices.SortFunc(b.ids, func(x, y chunk.ID) int { return bytes.Compare(x[:], y[:]) })
	b.key = binary.LittleEndian.AppendUint64(b.key[:0], uint64(maxCollideTimestamps))
	for _, id := range b.ids {
		b.key = append(b.key, id[:]...)
	}
	return string(b.key)
}

func lookupShared(key string) (sharedEntry, bool) {
	c := sharedMemo()
	if key == "" || c == nil {
		return sharedEntry{}, false
	}
	e, hit := c.GetIfPresent(key)
	if hit {
		sharedMemoHits.Inc()
	}
	return e, hit
}

var sharedMemoHits = metrics.NewCounter(`logsift_query_shared_timestamps_memo_hits_total`)

func storeShared(key string, e sharedEntry) {
	c := sharedMemo()
	// One stream's list may not take more than a sixteenth of the memo.
	if key == "" || c == nil || 8*len(e.ts) > sharedMemoBytes/16 {
		return
	}
	c.Set(key, e)
}
