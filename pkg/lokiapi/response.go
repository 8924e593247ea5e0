package lokiapi

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/query"
)

// categorizeLabels is the flag with which Grafana asks for structured
// metadata as a third element of each value instead of merged into the
// stream labels.
const categorizeLabels = "categorize-labels"

func wantsCategorized(r *http.Request) bool {
	for _, v := range r.Header.Values(EncodingFlagsHeader) {
		for _, f := range strings.Split(v, ",") {
			if strings.TrimSpace(f) == categorizeLabels {
				return true
			}
		}
	}
	return false
}

func writeData(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = jsonEncode(w, map[string]any{"status": "success", "data": data})
}

func jsonEncode(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// writeQueryResult writes the query response body. It is written by hand
// because a 5,000-line answer through reflection costs more than the query.
// appendMatrixShared appends the matrix, from the encoding kept with a
// shared result when there is one (formatting numbers is most of the cost
// of answering a cached dashboard query).
func appendMatrixShared(b []byte, res *query.Result) []byte {
	if res.Encoded == nil {
		return appendMatrix(b, res.Matrix)
	}
	if enc := res.Encoded.Load(); enc != nil {
		return append(b, *enc...)
	}
	start := len(b)
	b = appendMatrix(b, res.Matrix)
	enc := slices.Clone(b[start:])
	res.Encoded.CompareAndSwap(nil, &enc)
	return b
}

func writeQueryResult(w http.ResponseWriter, r *http.Request, res *query.Result) {
	categorized := wantsCategorized(r)
	size := 4096
	if res.Type == query.ResultMatrix {
		// About 30 bytes a point: one allocation instead of a doubling
		// series of them.
		for _, s := range res.Matrix {
			size += 64 + 30*len(s.Points)
			for _, l := range s.Labels {
				size += 6 + len(l.Name) + len(l.Value)
			}
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"status":"success","data":{"resultType":"`...)
	b = append(b, res.Type...)
	b = append(b, `","result":`...)
	switch res.Type {
	case query.ResultStreams:
		b = appendStreams(b, res.Streams, categorized)
	case query.ResultMatrix:
		b = appendMatrixShared(b, res)
	case query.ResultVector:
		b = appendVector(b, res.Vector)
	case query.ResultScalar:
		b = appendPoint(b, res.Scalar.T, res.Scalar.V)
	default:
		b = append(b, "[]"...)
	}
	b = append(b, `,"stats":`...)
	b = appendStats(b, &res.Stats)
	if categorized && res.Type == query.ResultStreams {
		// Loki echoes the flag in streams answers, and clients read it to
		// know that values carry a third element.
		b = append(b, `,"encodingFlags":["`+categorizeLabels+`"]`...)
	}
	b = append(b, "}}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if categorized {
		w.Header().Set(EncodingFlagsHeader, categorizeLabels)
	}
	// With the length known the server sends headers and body in one
	// write instead of chunked pieces.
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func appendStreams(b []byte, streams []query.StreamResult, categorized bool) []byte {
	if !categorized {
		streams = splitByMetadata(streams)
	}
	b = append(b, '[')
	for i, s := range streams {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stream":`...)
		b = appendLabelsObject(b, s.Labels)
		b = append(b, `,"values":[`...)
		for j, e := range s.Entries {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `["`...)
			b = strconv.AppendInt(b, e.Timestamp, 10)
			b = append(b, `",`...)
			b = appendJSONString(b, e.Line)
			if categorized && (len(e.Metadata) > 0 || len(e.Parsed) > 0) {
				b = append(b, `,{`...)
				if len(e.Metadata) > 0 {
					b = append(b, `"structuredMetadata":`...)
					b = appendLabelsObject(b, e.Metadata)
				}
				if len(e.Parsed) > 0 {
					if len(e.Metadata) > 0 {
						b = append(b, ',')
					}
					b = append(b, `"parsed":`...)
					b = appendLabelsObject(b, e.Parsed)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}

// splitByMetadata does what Loki does for clients that do not ask for
// categorized labels: structured metadata and parsed labels join the
// stream labels, so entries with different ones land in different streams.
// The pipeline already renamed colliding names (_extracted), so a plain
// union is right.
func splitByMetadata(streams []query.StreamResult) []query.StreamResult {
	needed := false
	for _, s := range streams {
		for _, e := range s.Entries {
			if len(e.Metadata) > 0 || len(e.Parsed) > 0 {
				needed = true
				break
			}
		}
	}
	if !needed {
		return streams
	}
	var out []query.StreamResult
	for _, s := range streams {
		idx := map[string]int{}
		for _, e := range s.Entries {
			ls := s.Labels
			if len(e.Metadata) > 0 || len(e.Parsed) > 0 {
				ls = append(append(s.Labels.Copy(), e.Metadata...), e.Parsed...).Sort()
			}
			key := ls.String()
			i, ok := idx[key]
			if !ok {
				i = len(out)
				idx[key] = i
				out = append(out, query.StreamResult{Labels: ls})
			}
			e.Metadata, e.Parsed = nil, nil
			out[i].Entries = append(out[i].Entries, e)
		}
	}
	return out
}

// appendMatrix writes a range query's series as Prometheus does.
func appendMatrix(b []byte, m []query.Series) []byte {
	b = append(b, '[')
	for i, s := range m {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = appendLabelsObject(b, s.Labels)
		b = append(b, `,"values":[`...)
		for j, p := range s.Points {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendPoint(b, p.T, p.V)
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}

// appendVector writes an instant query's samples as Prometheus does.
func appendVector(b []byte, v []query.Sample) []byte {
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = appendLabelsObject(b, s.Labels)
		b = append(b, `,"value":`...)
		b = appendPoint(b, s.T, s.V)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendPoint writes [<seconds>,"<value>"]: the time in Unix milliseconds
// as seconds with the milliseconds as a fraction, the value as Prometheus
// formats it (shortest exact decimal; NaN, +Inf, -Inf).
func appendPoint(b []byte, ms int64, v float64) []byte {
	b = append(b, '[')
	b = appendSeconds(b, ms)
	b = append(b, `,"`...)
	// Counts and sums of counts are whole numbers: printed as integers
	// they come out the same, several times faster. -0 keeps its sign.
	if v == math.Trunc(v) && v > -1e15 && v < 1e15 && (v != 0 || !math.Signbit(v)) {
		b = strconv.AppendInt(b, int64(v), 10)
	} else {
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return append(b, `"]`...)
}

// appendSeconds writes Unix milliseconds as seconds: 1700000000.123,
// 1700000000 when whole, -0.5 before the epoch.
func appendSeconds(b []byte, ms int64) []byte {
	u := uint64(ms)
	if ms < 0 {
		b = append(b, '-')
		u = uint64(-(ms + 1)) + 1
	}
	b = strconv.AppendUint(b, u/1000, 10)
	if f := u % 1000; f != 0 {
		b = append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
	}
	return b
}

func appendLabelsObject(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, []byte(l.Name))
		b = append(b, ':')
		b = appendJSONString(b, []byte(l.Value))
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD
// as encoding/json does.
func appendJSONString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"':
				b = append(b, `\"`...)
			case '\\':
				b = append(b, `\\`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendStats writes Loki's statistics block with logsift's numbers in the
// fields Grafana's query inspector shows.
func appendStats(b []byte, st *query.Stats) []byte {
	secs := st.ExecTime.Seconds()
	totalBytes := st.DecompressedBytes + st.HeadChunkBytes
	totalLines := st.DecompressedLines + st.HeadChunkLines
	perSec := func(n int64) int64 {
		if secs <= 0 {
			return 0
		}
		return int64(float64(n) / secs)
	}
	o := jsonObject{b: b}
	o.open()
	o.key("summary")
	o.open()
	o.int("bytesProcessedPerSecond", perSec(totalBytes))
	o.int("linesProcessedPerSecond", perSec(totalLines))
	o.int("totalBytesProcessed", totalBytes)
	o.int("totalLinesProcessed", totalLines)
	o.float("execTime", secs)
	o.float("queueTime", 0)
	o.int("subqueries", 0)
	o.int("totalEntriesReturned", st.EntriesReturned)
	o.int("splits", 0)
	o.int("shards", 0)
	o.int("totalPostFilterLines", st.PostFilterLines)
	o.int("totalStructuredMetadataBytesProcessed", 0)
	o.close()
	o.key("querier")
	o.open()
	o.key("store")
	o.open()
	o.int("totalChunksRef", st.ChunksRef)
	o.int("totalChunksDownloaded", st.ChunksDecoded)
	o.int("chunksDownloadTime", 0)
	o.key("chunk")
	o.open()
	o.int("headChunkBytes", 0)
	o.int("headChunkLines", 0)
	o.int("decompressedBytes", st.DecompressedBytes)
	o.int("decompressedLines", st.DecompressedLines)
	o.int("compressedBytes", st.CompressedBytes)
	o.int("totalDuplicates", st.Duplicates)
	o.int("postFilterLines", st.PostFilterLines)
	o.close()
	o.close()
	o.close()
	o.key("ingester")
	o.open()
	o.key("store")
	o.open()
	o.key("chunk")
	o.open()
	o.int("headChunkBytes", st.HeadChunkBytes)
	o.int("headChunkLines", st.HeadChunkLines)
	o.close()
	o.close()
	o.close()
	o.key("logsift")
	o.open()
	o.int("chunksPruned", st.ChunksPruned)
	o.int("blocksPruned", st.BlocksPruned)
	o.int("streams", st.Streams)
	o.close()
	o.close()
	return o.b
}

// jsonObject writes nested objects without tracking commas by hand.
type jsonObject struct {
	b     []byte
	first []bool
}

func (o *jsonObject) open() {
	o.b = append(o.b, '{')
	o.first = append(o.first, true)
}

func (o *jsonObject) close() {
	o.b = append(o.b, '}')
	o.first = o.first[:len(o.first)-1]
}

func (o *jsonObject) key(k string) {
	if !o.first[len(o.first)-1] {
		o.b = append(o.b, ',')
	}
	o.first[len(o.first)-1] = false
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, `":`...)
}

func (o *jsonObject) int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *jsonObject) float(k string, v float64) {
	o.key(k)
	o.b = strconv.AppendFloat(o.b, v, 'f', -1, 64)
}
