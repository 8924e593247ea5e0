package store

import (
	"fmt"
	"slices"
	"sort"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// StreamData is what a query needs of one selected stream: its stored
// chunks that overlap the range, and a sorted snapshot of its unflushed
// entries in the range.
type StreamData struct {
	Labels labels.Labels
	Hash   uint64 // Labels.Hash()
	Chunks []ChunkRef
	Head   []chunk.Entry
}

// Select returns the streams of a tenant that match every matcher and have
// data in [from, through). tenantID may name several tenants joined by
// "|": their streams then carry TenantLabel.
func (s *Store) Select(tenantID string, ms []*labels.Matcher, from, through int64) []StreamData {
	var out []StreamData
	for _, sc := range s.scopes(tenantID, ms) {
		for _, st := range sc.db.match(sc.ms) {
			sd, ok := st.snapshot(from, through)
			if !ok {
				continue
			}
			if sc.label != nil {
				sd.Labels = sc.withTenant(sd.Labels)
				sd.Hash = sd.Labels.Hash()
			}
			out = append(out, sd)
		}
	}
	return out
}

// match returns the streams whose labels satisfy every matcher, starting
// from the smallest equality posting list.
func (t *tenantDB) match(ms []*labels.Matcher) []*stream {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var cands []*stream
	first := true
	for _, m := range ms {
		if m.Type != labels.MatchEqual || m.Value == "" {
			continue
		}
		list := t.postings[m.Name][m.Value]
		if first || len(list) < len(cands) {
			cands, first = list, false
		}
	}
	if first {
		cands = make([]*stream, 0, len(t.streams))
		for _, st := range t.streams {
			cands = append(cands, st)
		}
	}
	out := make([]*stream, 0, len(cands))
	for _, st := range cands {
		if labels.MatchLabels(st.labels, ms) {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].labels, out[j].labels) < 0 })
	return out
}

// snapshot copies what a query over [from, through) needs of the stream.
func (st *stream) snapshot(from, through int64) (StreamData, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.maxT < from || st.minT >= through {
		return StreamData{}, false
	}
	sd := StreamData{Labels: st.labels, Hash: st.hash}
	for _, c := range st.chunks {
		if c.MinTime >= through {
			break
		}
		if c.MaxTime >= from {
			sd.Chunks = append(sd.Chunks, c)
		}
	}
	collect := func(h *head) {
		if h.maxT < from || h.minT >= through {
			return
		}
		for _, e := range h.entries {
			if e.Timestamp >= from && e.Timestamp < through {
				sd.Head = append(sd.Head, e)
			}
		}
	}
	for _, h := range st.flushing {
		collect(h)
	}
	for _, h := range st.heads {
		collect(h)
	}
	if len(sd.Chunks) == 0 && len(sd.Head) == 0 {
		return StreamData{}, false
	}
	// Heads hold entries in arrival order, which is nearly always time
	// order; stable sorting, only when needed, keeps arrival order among
	// equal timestamps as the chunk encoder does.
	byTime := func(a, b chunk.Entry) int {
		switch {
		case a.Timestamp < b.Timestamp:
			return -1
		case a.Timestamp > b.Timestamp:
			return 1
		}
		return 0
	}
	if !slices.IsSortedFunc(sd.Head, byTime) {
		slices.SortStableFunc(sd.Head, byTime)
	}
	return sd, true
}

// Series returns the label sets of the matching streams with data in range.
func (s *Store) Series(tenantID string, ms []*labels.Matcher, from, through int64) []labels.Labels {
	var out []labels.Labels
	for _, sc := range s.scopes(tenantID, ms) {
		for _, st := range sc.db.match(sc.ms) {
			if st.hasData(from, through) {
				out = append(out, sc.withTenant(st.labels))
			}
		}
	}
	return out
}

// hasData reports whether the stream has a chunk or head entry in range.
func (st *stream) hasData(from, through int64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.maxT < from || st.minT >= through {
		return false
	}
	for _, c := range st.chunks {
		if c.MinTime >= through {
			break
		}
		if c.MaxTime >= from {
			return true
		}
	}
	for _, h := range st.heads {
		if h.maxT >= from && h.minT < through {
			return true
		}
	}
	for _, h := range st.flushing {
		if h.maxT >= from && h.minT < through {
			return true
		}
	}
	return false
}

// LabelNames returns the sorted label names of matching streams in range.
func (s *Store) LabelNames(tenantID string, ms []*labels.Matcher, from, through int64) []string {
	seen := map[string]struct{}{}
	for _, ls := range s.Series(tenantID, ms, from, through) {
		for _, l := range ls {
			seen[l.Name] = struct{}{}
		}
	}
	return sortedKeys(seen)
}

// LabelValues returns the sorted values of one label over matching streams
// in range.
func (s *Store) LabelValues(tenantID, name string, ms []*labels.Matcher, from, through int64) []string {
	seen := map[string]struct{}{}
	for _, ls := range s.Series(tenantID, ms, from, through) {
		if v := ls.Get(name); v != "" {
			seen[v] = struct{}{}
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ReadFilter reads a stored chunk's filter section into buf (grown as
// needed) and parses it.
func (s *Store) ReadFilter(ref ChunkRef, buf []byte) (*chunk.Filter, []byte, error) {
	buf = grow(buf, int(ref.filterLen))
	if err := ref.part.readAt(ref.segment, ref.offset+int64(ref.filterOff), buf); err != nil {
		return nil, buf, err
	}
	f, err := chunk.ParseFilter(buf)
	if err != nil {
		return nil, buf, fmt.Errorf("chunk %x: %w", ref.ID[:8], err)
	}
	return f, buf, nil
}

// ReadHeader reads and decodes only the header of a stored chunk (its
// first bytes, up to the filter section), for a query that then reads the
// few sections it needs with ReadSection instead of the whole chunk.
func (s *Store) ReadHeader(ref ChunkRef, buf []byte) (*chunk.Header, []byte, error) {
	buf = grow(buf, int(ref.filterOff))
	if err := ref.part.readAt(ref.segment, ref.offset, buf); err != nil {
		return nil, buf, err
	}
	h, err := chunk.DecodeHeader(buf, ref.Size)
	if err != nil {
		return nil, buf, fmt.Errorf("chunk %x in %s: %w", ref.ID[:8], ref.part.dir, err)
	}
	if h.Meta().Size != ref.Size {
		return nil, buf, fmt.Errorf("chunk %x in %s: header says %d bytes, index %d", ref.ID[:8], ref.part.dir, h.Meta().Size, ref.Size)
	}
	return h, buf, nil
}

// ReadSection reads n bytes at offset off of a stored chunk (a section
// that ReadHeader's header located) into buf, grown as needed.
func (s *Store) ReadSection(ref ChunkRef, off, n int, buf []byte) ([]byte, error) {
	if off < 0 || n < 0 || off+n > ref.Size {
		return buf, fmt.Errorf("chunk %x: section [%d, %d) outside its %d bytes", ref.ID[:8], off, off+n, ref.Size)
	}
	buf = grow(buf, n)
	if err := ref.part.readAt(ref.segment, ref.offset+int64(off), buf); err != nil {
		return buf, err
	}
	return buf, nil
}

// ReadChunk reads a stored chunk into buf (grown as needed) and decodes it.
// The chunk is validated: corruption on disk is an error, never a panic.
func (s *Store) ReadChunk(ref ChunkRef, buf []byte) (*chunk.Chunk, []byte, error) {
	buf = grow(buf, ref.Size)
	if err := ref.part.readAt(ref.segment, ref.offset, buf); err != nil {
		return nil, buf, err
	}
	c, err := chunk.Decode(buf)
	if err != nil {
		return nil, buf, fmt.Errorf("chunk %x in %s: %w", ref.ID[:8], ref.part.dir, err)
	}
	return c, buf, nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
