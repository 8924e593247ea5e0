// Package frames builds the data frames Grafana reads from the server's
// answers: dataplane log-lines frames for log queries (timestamp, body,
// severity, a stable id, labels and label types) and time series or
// numeric frames for metric queries, with the executed query and the
// server's statistics in the frame metadata.
package frames

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
)

// Label types of the labelTypes field, as Grafana's logs view reads them.
const (
	TypeIndexed  = "I" // stream label
	TypeMetadata = "S" // structured metadata
	TypeParsed   = "P" // extracted by the query's pipeline
)

// Field names of a log-lines frame.
const (
	FieldTimestamp  = "timestamp"
	FieldBody       = "body"
	FieldSeverity   = "severity"
	FieldID         = "id"
	FieldLabels     = "labels"
	FieldLabelTypes = "labelTypes"
)

// LevelLabels are the labels a severity is read from, best first.
var LevelLabels = []string{"detected_level", "level"}

// LogsBuilder collects log rows for a log-lines frame. Rows keep the
// order in which they are added.
//
// An answer repeats a stream's labels on each of its lines, beside the
// line's own structured metadata and parsed labels. So the builder works
// out once per stream and shape (the names of a line's own labels) the
// labels JSON around the line's values and the label types, and a row
// only writes its values in between; a row without labels of its own
// shares its stream's JSON. Ids and labels go into shared buffers: a
// 1,000-row frame costs a handful of allocations, not thousands.
type LogsBuilder struct {
	*rows
	// The rows of the run of rows at one timestamp start at runStart.
	// While rows come in time order (either way) identical entries are
	// neighbours in it; rows out of order switch to dups, a count per
	// (timestamp, hash).
	runStart int
	order    int // +1 ascending, -1 descending, 0 not yet known
	dups     map[[2]uint64]int

	// lbuf is the chunk the labels JSON of rows is written into; a row
	// keeps its slice of it, so a new chunk never copies old rows.
	lbuf  []byte
	types map[string]json.RawMessage // label types, shared by equal layouts
	encs  map[uint64][]*streamEnc    // by stream hash
	last  *streamEnc
	tbuf  []byte // scratch for label types
	hint  int    // rows expected

	// StreamLabelNames, when set, tells stream labels from structured
	// metadata in answers that merge them (the tail): a label not in
	// the set is typed as metadata.
	StreamLabelNames func(name string) bool
}

// rows are the builder's slices of row values. data.NewField copies
// them into the frame, so once a frame is built they go back to a pool
// for the next one.
type rows struct {
	ts   []time.Time
	body []string
	sev  []string
	lbls []json.RawMessage
	tj   []json.RawMessage
	// ibuf holds the ids of all rows, iends where each ends.
	ibuf  []byte
	iends []int32
	// The timestamp and the id hash of each row, for counting identical
	// entries.
	tsn    []int64
	hashes []uint64
}

var rowsPool = sync.Pool{New: func() any { return new(rows) }}

// maxPooledRows bounds the slices kept for reuse.
const maxPooledRows = 1 << 16

// reserve empties the slices with room for n rows.
func (r *rows) reserve(n int) {
	r.ts = grow(r.ts, n)
	r.body = grow(r.body, n)
	r.sev = grow(r.sev, n)
	r.lbls = grow(r.lbls, n)
	r.tj = grow(r.tj, n)
	r.ibuf = grow(r.ibuf, n*idSize)
	r.iends = grow(r.iends, n)
	r.tsn = grow(r.tsn, n)
	r.hashes = grow(r.hashes, n)
}

// idSize is the usual length of a row id: 19 digits, '_', 16 hex digits.
const idSize = 36

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n)
	}
	return s[:0]
}

// release drops the values, which would keep answers alive, and pools
// the slices.
func (r *rows) release() {
	if cap(r.ts) > maxPooledRows {
		return
	}
	clear(r.body)
	clear(r.sev)
	clear(r.lbls)
	clear(r.tj)
	r.reserve(0)
	rowsPool.Put(r)
}

// NewLogsBuilder returns a builder with room for n rows.
func NewLogsBuilder(n int) *LogsBuilder {
	r := rowsPool.Get().(*rows)
	r.reserve(n)
	return &LogsBuilder{
		rows:  r,
		types: map[string]json.RawMessage{},
		encs:  map[uint64][]*streamEnc{},
		hint:  n,
	}
}

// Len is the number of rows.
func (b *LogsBuilder) Len() int { return len(b.ts) }

// streamEnc is what the rows of one stream share.
type streamEnc struct {
	labels client.Labels
	hash   uint64
	// digest has hashed the stream hash, the start of every row id hash.
	digest xxhash.Digest
	// layouts are the shapes seen recently, lastUsed the latest.
	layouts  []*layout
	lastUsed int
	next     int // the layout to replace when full
}

// maxLayouts bounds the shapes kept per stream: lines whose label names
// keep changing (a json parser over varied lines) build their own.
const maxLayouts = 8

// layout is the labels JSON and types of a stream's rows whose own
// labels have given names. segs are the JSON between the row's values,
// one more than there are slots.
type layout struct {
	md, parsed []string // names of the row's own labels
	segs       [][]byte
	slots      []slot
	whole      json.RawMessage // the labels JSON when there is no slot
	size       int             // bytes of segs
	types      json.RawMessage
	// sev says where each of LevelLabels comes from.
	sev []source
}

// slot is a value of the row's own labels: Parsed[idx] or Metadata[idx].
type slot struct {
	parsed bool
	idx    int
}

// source is where a label's value comes from: a slot, or the value of
// a stream label (slot -1); an absent label has slot -1 and value "".
type source struct {
	slot  int
	value string
}

func (sl slot) value(e *client.Entry) string {
	if sl.parsed {
		return e.Parsed[sl.idx].Value
	}
	return e.Metadata[sl.idx].Value
}

func (l *layout) matches(md, parsed client.Labels) bool {
	if len(md) != len(l.md) || len(parsed) != len(l.parsed) {
		return false
	}
	for i := range md {
		if md[i].Name != l.md[i] {
			return false
		}
	}
	for i := range parsed {
		if parsed[i].Name != l.parsed[i] {
			return false
		}
	}
	return true
}

// enc returns what rows of the stream share, made on first use.
func (b *LogsBuilder) enc(stream client.Labels, streamHash uint64) *streamEnc {
	if c := b.last; c != nil && c.hash == streamHash && sameLabels(c.labels, stream) {
		return c
	}
	for _, c := range b.encs[streamHash] {
		if sameLabels(c.labels, stream) {
			b.last = c
			return c
		}
	}
	c := &streamEnc{labels: stream, hash: streamHash}
	var sh [8]byte
	for i := range sh {
		sh[i] = byte(streamHash >> (8 * i))
	}
	c.digest.Reset()
	_, _ = c.digest.Write(sh[:])
	b.encs[streamHash] = append(b.encs[streamHash], c)
	b.last = c
	return c
}

func sameLabels(a, b client.Labels) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// layoutFor returns the layout of a row of the stream.
func (b *LogsBuilder) layoutFor(c *streamEnc, md, parsed client.Labels) *layout {
	if c.lastUsed < len(c.layouts) && c.layouts[c.lastUsed].matches(md, parsed) {
		return c.layouts[c.lastUsed]
	}
	for i, l := range c.layouts {
		if l.matches(md, parsed) {
			c.lastUsed = i
			return l
		}
	}
	l := b.newLayout(c.labels, md, parsed)
	if len(c.layouts) < maxLayouts {
		c.layouts = append(c.layouts, l)
		c.lastUsed = len(c.layouts) - 1
	} else {
		c.layouts[c.next] = l
		c.lastUsed = c.next
		c.next = (c.next + 1) % maxLayouts
	}
	return l
}

// newLayout joins the three label sets by name as rows show them; on a
// clash the later category wins, as a pipeline label shadows a stream
// label in Grafana's view. The sets must be sorted by name.
func (b *LogsBuilder) newLayout(stream, md, parsed client.Labels) *layout {
	l := &layout{md: make([]string, len(md)), parsed: make([]string, len(parsed)), sev: make([]source, len(LevelLabels))}
	for i := range md {
		l.md[i] = md[i].Name
	}
	for i := range parsed {
		l.parsed[i] = parsed[i].Name
	}
	for i := range l.sev {
		l.sev[i].slot = -1
	}
	found := make([]bool, len(LevelLabels))
	seg := []byte{'{'}
	tj := append(b.tbuf[:0], '{')
	i, j, k := 0, 0, 0
	for n := 0; i < len(stream) || j < len(md) || k < len(parsed); n++ {
		name := ""
		first := true
		for _, h := range [3]struct {
			ls client.Labels
			at int
		}{{stream, i}, {md, j}, {parsed, k}} {
			if h.at < len(h.ls) && (first || h.ls[h.at].Name < name) {
				name, first = h.ls[h.at].Name, false
			}
		}
		src := source{slot: -1}
		var at slot
		typ := ""
		if i < len(stream) && stream[i].Name == name {
			src.value, typ = stream[i].Value, TypeIndexed
			if b.StreamLabelNames != nil && !b.StreamLabelNames(name) {
				typ = TypeMetadata
			}
			i++
		}
		if j < len(md) && md[j].Name == name {
			at, src.slot, typ = slot{idx: j}, 0, TypeMetadata
			j++
		}
		if k < len(parsed) && parsed[k].Name == name {
			at, src.slot, typ = slot{parsed: true, idx: k}, 0, TypeParsed
			k++
		}
		if n > 0 {
			seg = append(seg, ',')
			tj = append(tj, ',')
		}
		seg = appendJSONString(seg, name)
		seg = append(seg, ':')
		if src.slot < 0 {
			seg = appendJSONString(seg, src.value)
		} else {
			l.segs = append(l.segs, seg)
			l.size += len(seg)
			src.slot = len(l.slots)
			l.slots = append(l.slots, at)
			seg = nil
		}
		tj = appendJSONString(tj, name)
		tj = append(tj, ':', '"')
		tj = append(tj, typ...)
		tj = append(tj, '"')
		for x, lv := range LevelLabels {
			if !found[x] && name == lv {
				l.sev[x], found[x] = src, true
			}
		}
	}
	seg = append(seg, '}')
	l.segs = append(l.segs, seg)
	l.size += len(seg)
	if len(l.slots) == 0 {
		l.whole = json.RawMessage(seg[:len(seg):len(seg)])
	}
	tj = append(tj, '}')
	b.tbuf = tj
	types, ok := b.types[string(tj)]
	if !ok {
		types = append(json.RawMessage(nil), tj...)
		if len(b.types) < 1024 {
			b.types[string(tj)] = types
		}
	}
	l.types = types
	return l
}

// Add appends one entry of a stream. The label sets must be sorted by
// name, as the client decodes them.
func (b *LogsBuilder) Add(stream client.Labels, streamHash uint64, e client.Entry) {
	b.add(b.enc(stream, streamHash), &e)
}

func (b *LogsBuilder) add(c *streamEnc, e *client.Entry) {
	l := b.layoutFor(c, e.Metadata, e.Parsed)
	lbls := l.whole
	if len(l.slots) > 0 {
		if cap(b.lbuf)-len(b.lbuf) < l.size+64 {
			// Room for the rows still expected, shaped as this one
			// with short values, in blocks of at most 64 KiB.
			n := max(b.hint-len(b.ts), 16) * (l.size + 8*len(l.slots))
			b.lbuf = make([]byte, 0, min(n, 64<<10))
		}
		start := len(b.lbuf)
		for x, sl := range l.slots {
			b.lbuf = append(b.lbuf, l.segs[x]...)
			b.lbuf = appendJSONString(b.lbuf, sl.value(e))
		}
		b.lbuf = append(b.lbuf, l.segs[len(l.slots)]...)
		lbls = b.lbuf[start:len(b.lbuf):len(b.lbuf)]
	}
	sev := ""
	for _, src := range l.sev {
		v := src.value
		if src.slot >= 0 {
			v = l.slots[src.slot].value(e)
		}
		if v != "" {
			sev = v
			break
		}
	}
	b.ts = append(b.ts, time.Unix(0, e.Timestamp).UTC())
	b.body = append(b.body, e.Line)
	b.sev = append(b.sev, sev)
	b.lbls = append(b.lbls, lbls)
	b.tj = append(b.tj, l.types)
	b.appendID(c, e)
}

// appendID writes the row's id, stable across queries: the timestamp, a
// hash of the stream and the line, and a counter for identical entries.
func (b *LogsBuilder) appendID(c *streamEnc, e *client.Entry) {
	d := c.digest
	_, _ = d.WriteString(e.Line)
	h := d.Sum64()
	b.ibuf = strconv.AppendInt(b.ibuf, e.Timestamp, 10)
	b.ibuf = append(b.ibuf, '_')
	for i := 15; i >= 0; i-- {
		b.ibuf = append(b.ibuf, hexDigits[(h>>(4*uint(i)))&0xf])
	}
	if n := b.countSame(e.Timestamp, h); n > 0 {
		b.ibuf = append(b.ibuf, '_')
		b.ibuf = strconv.AppendInt(b.ibuf, int64(n), 10)
	}
	b.iends = append(b.iends, int32(len(b.ibuf)))
}

// maxRun is the longest run of rows at one timestamp searched for
// identical entries; a longer one switches to counting in a map.
const maxRun = 64

// countSame records a row and returns how many rows before it have its
// timestamp and hash.
func (b *LogsBuilder) countSame(ts int64, h uint64) int {
	i := len(b.tsn)
	n := 0
	if b.dups == nil && i > 0 && ts != b.tsn[i-1] {
		order := 1
		if ts < b.tsn[i-1] {
			order = -1
		}
		if b.order == 0 {
			b.order = order
		}
		if order == b.order {
			b.runStart = i
		} else {
			b.countAll()
		}
	}
	if b.dups == nil && i-b.runStart > maxRun {
		b.countAll()
	}
	if b.dups == nil {
		for _, x := range b.hashes[b.runStart:i] {
			if x == h {
				n++
			}
		}
	} else {
		key := [2]uint64{uint64(ts), h}
		n = b.dups[key]
		b.dups[key] = n + 1
	}
	b.tsn = append(b.tsn, ts)
	b.hashes = append(b.hashes, h)
	return n
}

// countAll switches to counting every (timestamp, hash) in a map.
func (b *LogsBuilder) countAll() {
	b.dups = make(map[[2]uint64]int, max(b.hint, len(b.tsn)))
	for i, ts := range b.tsn {
		b.dups[[2]uint64{uint64(ts), b.hashes[i]}]++
	}
}

// StreamHash identifies a stream for row ids.
func StreamHash(ls client.Labels) uint64 {
	var d xxhash.Digest
	d.Reset()
	for _, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{0xff})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{0xfe})
	}
	return d.Sum64()
}

// Frame returns the rows as a log-lines frame; the builder must not be
// used afterwards.
func (b *LogsBuilder) Frame(refID string, meta *data.FrameMeta) *data.Frame {
	ids := make([]string, len(b.iends))
	idText := string(b.ibuf)
	start := int32(0)
	for i, end := range b.iends {
		ids[i] = idText[start:end]
		start = end
	}
	// NewField copies the values: the builder's slices are free again.
	f := data.NewFrame("",
		data.NewField(FieldTimestamp, nil, b.ts),
		data.NewField(FieldBody, nil, b.body),
		data.NewField(FieldSeverity, nil, b.sev),
		data.NewField(FieldID, nil, ids),
		data.NewField(FieldLabels, nil, b.lbls),
		data.NewField(FieldLabelTypes, nil, b.tj),
	)
	f.RefID = refID
	f.Meta = meta
	b.rows.release()
	b.rows = nil
	return f
}

// LogsMeta is the metadata of a log-lines frame.
func LogsMeta(executed string, st *client.Stats) *data.FrameMeta {
	m := &data.FrameMeta{
		Type:                   data.FrameTypeLogLines,
		TypeVersion:            data.FrameTypeVersion{0, 0},
		PreferredVisualization: data.VisTypeLogs,
		ExecutedQueryString:    executed,
	}
	if st != nil {
		m.Stats = StatsMeta(*st)
	}
	return m
}

// LogsOptions shape the log-lines frame of a streams result.
type LogsOptions struct {
	RefID string
	// Executed is shown as the executed query in the query inspector.
	Executed string
	// Forward orders rows oldest first; otherwise newest first, as the
	// server returned them.
	Forward bool
}

// Logs turns a streams result into one log-lines frame, every stream's
// entries merged in time order.
func Logs(res *client.Result, o LogsOptions) *data.Frame {
	n := 0
	for _, s := range res.Streams {
		n += len(s.Entries)
	}
	b := NewLogsBuilder(n)
	encs := make([]*streamEnc, len(res.Streams))
	for i, s := range res.Streams {
		encs[i] = b.enc(s.Labels, StreamHash(s.Labels))
	}
	inTimeOrder(res.Streams, o.Forward, func(s, e int) {
		b.add(encs[s], &res.Streams[s].Entries[e])
	})
	return b.Frame(o.RefID, LogsMeta(o.Executed, &res.Stats))
}

// maxMergeStreams is the most streams merged head by head; more are
// sorted.
const maxMergeStreams = 16

// inTimeOrder calls fn with every entry, newest first or, forward,
// oldest first; entries at one time in the order of the streams and
// of their entries (a stable sort).
func inTimeOrder(streams []client.Stream, forward bool, fn func(s, e int)) {
	before := func(a, b int64) bool { return a > b }
	if forward {
		before = func(a, b int64) bool { return a < b }
	}
	// The server sends each stream's entries in the query's direction:
	// then merging the streams' heads is all the sorting there is.
	sorted := len(streams) <= maxMergeStreams
	for _, s := range streams {
		for j := 1; sorted && j < len(s.Entries); j++ {
			sorted = !before(s.Entries[j].Timestamp, s.Entries[j-1].Timestamp)
		}
	}
	if sorted {
		pos := make([]int, len(streams))
		for {
			best := -1
			var bestTS int64
			for i := range streams {
				if p := pos[i]; p < len(streams[i].Entries) {
					if ts := streams[i].Entries[p].Timestamp; best < 0 || before(ts, bestTS) {
						best, bestTS = i, ts
					}
				}
			}
			if best < 0 {
				return
			}
			fn(best, pos[best])
			pos[best]++
		}
	}
	type ref struct {
		ts   int64
		s, e int
	}
	n := 0
	for _, s := range streams {
		n += len(s.Entries)
	}
	refs := make([]ref, 0, n)
	for i, s := range streams {
		for j, e := range s.Entries {
			refs = append(refs, ref{e.Timestamp, i, j})
		}
	}
	slices.SortFunc(refs, func(x, y ref) int {
		switch {
		case before(x.ts, y.ts):
			return -1
		case before(y.ts, x.ts):
			return 1
		case x.s != y.s:
			return x.s - y.s
		}
		return x.e - y.e
	})
	for _, r := range refs {
		fn(r.s, r.e)
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0xfffd && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
