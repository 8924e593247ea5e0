package frames

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
)

// The frame builder as it was before rows were written from per-stream
// layouts: one label merge and JSON encoding per row, ids counted in a
// map. The tests hold the builder to its output.

// refBuilder collects log rows for a log-lines frame. Rows keep the
// order in which they are added. The per-row JSON and ids are written
// into shared buffers and cut apart when the frame is built: a 1,000-row
// frame costs a handful of allocations, not thousands.
type refBuilder struct {
	ts    []time.Time
	body  []string
	sev   []string
	ids   map[[2]uint64]int          // rows per (timestamp, hash), for duplicates
	types map[string]json.RawMessage // label types, shared by equal rows

	lbuf  []byte  // labels JSON of all rows
	lends []int32 // where each row's labels end in lbuf
	tj    []json.RawMessage
	ibuf  []byte // ids of all rows
	iends []int32
	tbuf  []byte // scratch for a row's types

	merged []refLabel
	// StreamLabelNames, when set, tells stream labels from structured
	// metadata in answers that merge them (the tail): a label not in
	// the set is typed as metadata.
	StreamLabelNames func(name string) bool
}

// newRefBuilder returns a builder with room for n rows.
func newRefBuilder(n int) *refBuilder {
	return &refBuilder{
		ts:    make([]time.Time, 0, n),
		body:  make([]string, 0, n),
		sev:   make([]string, 0, n),
		ids:   make(map[[2]uint64]int, n),
		types: map[string]json.RawMessage{},
		lbuf:  make([]byte, 0, n*160),
		lends: make([]int32, 0, n),
		tj:    make([]json.RawMessage, 0, n),
		ibuf:  make([]byte, 0, n*38),
		iends: make([]int32, 0, n),
	}
}

// Len is the number of rows.
func (b *refBuilder) Len() int { return len(b.ts) }

type refLabel struct {
	name, value, typ string
}

// merge joins the three sorted label sets by name; on a clash the later
// category wins, as a pipeline label shadows a stream label in Grafana's
// view.
func (b *refBuilder) merge(stream, md, parsed client.Labels) {
	b.merged = b.merged[:0]
	i, j, k := 0, 0, 0
	for i < len(stream) || j < len(md) || k < len(parsed) {
		name := ""
		first := true
		for _, n := range [3]struct {
			ls client.Labels
			at int
		}{{stream, i}, {md, j}, {parsed, k}} {
			if n.at < len(n.ls) && (first || n.ls[n.at].Name < name) {
				name, first = n.ls[n.at].Name, false
			}
		}
		l := refLabel{name: name}
		if i < len(stream) && stream[i].Name == name {
			l.value, l.typ = stream[i].Value, TypeIndexed
			if b.StreamLabelNames != nil && !b.StreamLabelNames(name) {
				l.typ = TypeMetadata
			}
			i++
		}
		if j < len(md) && md[j].Name == name {
			l.value, l.typ = md[j].Value, TypeMetadata
			j++
		}
		if k < len(parsed) && parsed[k].Name == name {
			l.value, l.typ = parsed[k].Value, TypeParsed
			k++
		}
		b.merged = append(b.merged, l)
	}
}

// Add appends one entry of a stream. The label sets must be sorted by
// name, as the client decodes them.
func (b *refBuilder) Add(stream client.Labels, streamHash uint64, e client.Entry) {
	b.merge(stream, e.Metadata, e.Parsed)

	sev := ""
	for _, name := range LevelLabels {
		for _, l := range b.merged {
			if l.name == name {
				sev = l.value
				break
			}
		}
		if sev != "" {
			break
		}
	}

	b.lbuf = append(b.lbuf, '{')
	tj := append(b.tbuf[:0], '{')
	for i, l := range b.merged {
		if i > 0 {
			b.lbuf = append(b.lbuf, ',')
			tj = append(tj, ',')
		}
		b.lbuf = appendJSONString(b.lbuf, l.name)
		b.lbuf = append(b.lbuf, ':')
		b.lbuf = appendJSONString(b.lbuf, l.value)
		tj = appendJSONString(tj, l.name)
		tj = append(tj, ':', '"')
		tj = append(tj, l.typ...)
		tj = append(tj, '"')
	}
	b.lbuf = append(b.lbuf, '}')
	tj = append(tj, '}')
	b.tbuf = tj
	types, ok := b.types[string(tj)]
	if !ok {
		types = append(json.RawMessage(nil), tj...)
		if len(b.types) < 1024 {
			b.types[string(tj)] = types
		}
	}

	b.ts = append(b.ts, time.Unix(0, e.Timestamp).UTC())
	b.body = append(b.body, e.Line)
	b.sev = append(b.sev, sev)
	b.appendID(streamHash, e)
	b.lends = append(b.lends, int32(len(b.lbuf)))
	b.tj = append(b.tj, types)
}

// appendID writes the row's id, stable across queries: the timestamp, a
// hash of the stream and the line, and a counter for identical entries.
func (b *refBuilder) appendID(streamHash uint64, e client.Entry) {
	var d xxhash.Digest
	d.Reset()
	var sh [8]byte
	for i := range sh {
		sh[i] = byte(streamHash >> (8 * i))
	}
	_, _ = d.Write(sh[:])
	_, _ = d.WriteString(e.Line)
	b.ibuf = strconv.AppendInt(b.ibuf, e.Timestamp, 10)
	b.ibuf = append(b.ibuf, '_')
	h := d.Sum64()
	for i := 15; i >= 0; i-- {
		b.ibuf = append(b.ibuf, hexDigits[(h>>(4*uint(i)))&0xf])
	}
	key := [2]uint64{uint64(e.Timestamp), h}
	n := b.ids[key]
	b.ids[key] = n + 1
	if n > 0 {
		b.ibuf = append(b.ibuf, '_')
		b.ibuf = strconv.AppendInt(b.ibuf, int64(n), 10)
	}
	b.iends = append(b.iends, int32(len(b.ibuf)))
}

// Frame returns the rows as a log-lines frame; the builder must not be
// used afterwards.
func (b *refBuilder) Frame(refID string, meta *data.FrameMeta) *data.Frame {
	n := len(b.ts)
	lbls := make([]json.RawMessage, n)
	ids := make([]string, n)
	idText := string(b.ibuf)
	lstart, istart := int32(0), int32(0)
	for i := 0; i < n; i++ {
		lbls[i] = b.lbuf[lstart:b.lends[i]:b.lends[i]]
		ids[i] = idText[istart:b.iends[i]]
		lstart, istart = b.lends[i], b.iends[i]
	}
	f := data.NewFrame("",
		data.NewField(FieldTimestamp, nil, b.ts),
		data.NewField(FieldBody, nil, b.body),
		data.NewField(FieldSeverity, nil, b.sev),
		data.NewField(FieldID, nil, ids),
		data.NewField(FieldLabels, nil, lbls),
		data.NewField(FieldLabelTypes, nil, b.tj),
	)
	f.RefID = refID
	f.Meta = meta
	return f
}

// Logs turns a streams result into one log-lines frame, every stream's
// entries merged in time order.
func refLogs(res *client.Result, o LogsOptions) *data.Frame {
	type ref struct {
		s, e int
		ts   int64
	}
	n := 0
	for _, s := range res.Streams {
		n += len(s.Entries)
	}
	refs := make([]ref, 0, n)
	for i, s := range res.Streams {
		for j, e := range s.Entries {
			refs = append(refs, ref{i, j, e.Timestamp})
		}
	}
	slices.SortStableFunc(refs, func(x, y ref) int {
		if o.Forward {
			return refCmp(x.ts, y.ts)
		}
		return refCmp(y.ts, x.ts)
	})
	hashes := make([]uint64, len(res.Streams))
	for i, s := range res.Streams {
		hashes[i] = StreamHash(s.Labels)
	}
	b := newRefBuilder(n)
	for _, r := range refs {
		s := &res.Streams[r.s]
		b.Add(s.Labels, hashes[r.s], s.Entries[r.e])
	}
	return b.Frame(o.RefID, LogsMeta(o.Executed, &res.Stats))
}

func refCmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
