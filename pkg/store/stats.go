package store

import (
	"github.com/logsift/logsift/pkg/labels"
)

// StreamStats is what the index and the heads know of one stream's data in
// a range, without reading or copying any chunk or entry. It is valid only
// during the VisitStats callback that receives it.
type StreamStats struct {
	Labels labels.Labels
	// Chunks are the stored chunks that overlap the range, whole: their
	// counts cover their full span, which may reach outside the range.
	Chunks []ChunkRef
	// HeadChunks counts the unflushed chunks with entries in the range;
	// HeadEntries and HeadBytes count those entries and their line bytes.
	HeadChunks  int
	HeadEntries int64
	HeadBytes   int64

	st            *stream
	from, through int64
}

// EachHeadEntry calls fn with the timestamp and line length of every
// unflushed entry in the range, so that a caller can bucket head data by
// time without copying it.
func (ss *StreamStats) EachHeadEntry(fn func(ts int64, size int)) {
	each := func(h *head) {
		if h.maxT < ss.from || h.minT >= ss.through {
			return
		}
		for i := range h.entries {
			if e := &h.entries[i]; e.Timestamp >= ss.from && e.Timestamp < ss.through {
				fn(e.Timestamp, len(e.Line))
			}
		}
	}
	for _, h := range ss.st.flushing {
		each(h)
	}
	for _, h := range ss.st.heads {
		each(h)
	}
}

// VisitStats calls fn, in label order, for each stream of the tenant that
// matches every matcher and has data in [from, through). fn runs with the
// stream locked: it must be quick and must not call into the store.
func (s *Store) VisitStats(tenantID string, ms []*labels.Matcher, from, through int64, fn func(*StreamStats)) {
	ss := &StreamStats{from: from, through: through}
	for _, sc := range s.scopes(tenantID, ms) {
		for _, st := range sc.db.match(sc.ms) {
			st.mu.Lock()
			if st.maxT >= from && st.minT < through {
				ss.fill(st)
				ss.Labels = sc.withTenant(ss.Labels)
				if len(ss.Chunks) > 0 || ss.HeadChunks > 0 {
					fn(ss)
				}
			}
			st.mu.Unlock()
		}
	}
}

// fill gathers the stream's counts; st.mu is held.
func (ss *StreamStats) fill(st *stream) {
	ss.Labels, ss.st = st.labels, st
	ss.Chunks = ss.Chunks[:0]
	ss.HeadChunks, ss.HeadEntries, ss.HeadBytes = 0, 0, 0
	for _, c := range st.chunks {
		if c.MinTime >= ss.through {
			break
		}
		if c.MaxTime >= ss.from {
			ss.Chunks = append(ss.Chunks, c)
		}
	}
	count := func(h *head) {
		if h.maxT < ss.from || h.minT >= ss.through {
			return
		}
		n := int64(0)
		for i := range h.entries {
			if e := &h.entries[i]; e.Timestamp >= ss.from && e.Timestamp < ss.through {
				n++
				ss.HeadBytes += int64(len(e.Line))
			}
		}
		if n > 0 {
			ss.HeadChunks++
			ss.HeadEntries += n
		}
	}
	for _, h := range st.flushing {
		count(h)
	}
	for _, h := range st.heads {
		count(h)
	}
}
