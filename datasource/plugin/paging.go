package plugin

import (
	"context"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/frames"
)

// pageLimit is the most lines one request asks for: Loki's default
// max_entries_limit_per_query, which logsift keeps. A query for more
// lines is read in pages.
const pageLimit = 5000

type entryKey struct {
	stream uint64
	ts     int64
	line   uint64
}

// pageLogs reads up to limit lines of a log query in [q.Start, q.End) in
// pages of at most pageLimit, in the query's direction, calling fn with
// each page that has lines, and with the last page; last tells that no
// page follows. A page ends
// at a timestamp; the next starts at the same timestamp and skips the
// entries already read there.
func (in *Instance) pageLogs(ctx context.Context, q client.RangeQuery, limit int, fn func(res *client.Result, last bool) error) error {
	forward := q.Direction == "forward"
	seen := map[entryKey]bool{} // entries at the boundary timestamp
	var boundary int64
	remaining := limit
	for remaining > 0 {
		// The entries already read at the boundary come back first: ask
		// for that many more.
		ask := min(remaining+len(seen), pageLimit)
		q.Limit = ask
		res, err := in.client.QueryRange(ctx, q)
		if err != nil {
			return err
		}
		got, fresh := 0, 0
		edge := int64(0)
		first := true
		for i := range res.Streams {
			s := &res.Streams[i]
			h := frames.StreamHash(s.Labels)
			kept := s.Entries[:0]
			for _, e := range s.Entries {
				got++
				if first || forward && e.Timestamp > edge || !forward && e.Timestamp < edge {
					edge, first = e.Timestamp, false
				}
				if e.Timestamp == boundary && len(seen) > 0 && seen[entryKey{h, e.Timestamp, xxhash.Sum64String(e.Line)}] {
					continue
				}
				kept = append(kept, e)
				fresh++
			}
			s.Entries = kept
		}
		if fresh > remaining {
			res, fresh = trimResult(res, remaining, forward), remaining
		}
		remaining -= fresh
		last := got < ask || remaining <= 0 // the range holds no more, or enough
		// The last page goes out even without lines: it carries the
		// statistics of the request that found nothing more.
		if fresh > 0 || last {
			if err := fn(res, last); err != nil {
				return err
			}
		}
		if last {
			return nil
		}
		if edge != boundary {
			clear(seen)
			boundary = edge
		}
		for _, s := range res.Streams {
			h := frames.StreamHash(s.Labels)
			for _, e := range s.Entries {
				if e.Timestamp == edge {
					seen[entryKey{h, e.Timestamp, xxhash.Sum64String(e.Line)}] = true
				}
			}
		}
		switch {
		case fresh == 0 && forward:
			// A whole page at one timestamp, all read: step past it.
			q.Start = time.Unix(0, edge+1)
		case fresh == 0:
			q.End = time.Unix(0, edge)
		case forward:
			q.Start = time.Unix(0, edge)
		default:
			q.End = time.Unix(0, edge+1)
		}
		if !q.Start.Before(q.End) {
			return nil
		}
	}
	return nil
}

// mergeResults appends the streams of b to a, joining equal label sets,
// and adds the statistics.
func mergeResults(a, b *client.Result) {
	a.Stats.Add(b.Stats)
	idx := make(map[uint64]int, len(a.Streams))
	for i, s := range a.Streams {
		idx[frames.StreamHash(s.Labels)] = i
	}
	for _, s := range b.Streams {
		h := frames.StreamHash(s.Labels)
		if i, ok := idx[h]; ok {
			a.Streams[i].Entries = append(a.Streams[i].Entries, s.Entries...)
			continue
		}
		idx[h] = len(a.Streams)
		a.Streams = append(a.Streams, s)
	}
}

// trimResult keeps the n entries that come first in the direction.
func trimResult(res *client.Result, n int, forward bool) *client.Result {
	var all []int64
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			all = append(all, e.Timestamp)
		}
	}
	slices.Sort(all)
	if !forward {
		slices.Reverse(all)
	}
	cut := all[n-1]
	// Keep every entry strictly before the cut, then entries at the cut
	// until n are kept.
	left := n
	for _, ts := range all[:n] {
		if ts != cut {
			left--
		}
	}
	for i := range res.Streams {
		s := &res.Streams[i]
		kept := s.Entries[:0]
		for _, e := range s.Entries {
			before := forward && e.Timestamp < cut || !forward && e.Timestamp > cut
			if before {
				kept = append(kept, e)
			} else if e.Timestamp == cut && left > 0 {
				kept = append(kept, e)
				left--
			}
		}
		s.Entries = kept
	}
	return res
}
