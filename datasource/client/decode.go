package client

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Label is one name and value.
type Label struct {
	Name, Value string
}

// Labels is a label set sorted by name.
type Labels []Label

// Get returns the value of a label, "" when absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Map returns the set as a map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// String writes the set as a LogQL selector: {a="1", b="2"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// FromMap builds a sorted set from a map.
func FromMap(m map[string]string) Labels {
	if len(m) == 0 {
		return nil
	}
	ls := make(Labels, 0, len(m))
	for k, v := range m {
		ls = append(ls, Label{Name: k, Value: v})
	}
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// Entry is one log line of a streams result.
type Entry struct {
	Timestamp int64 // Unix nanoseconds
	Line      string
	// Metadata is the entry's structured metadata and Parsed the labels
	// its pipeline extracted; both only with categorized labels.
	Metadata Labels
	Parsed   Labels
}

// Stream is one label set with its entries.
type Stream struct {
	Labels  Labels
	Entries []Entry
}

// Point is one sample of a metric result.
type Point struct {
	T int64 // Unix milliseconds
	V float64
}

// Series is one label set with its samples; an instant query's vector
// gives one point per series.
type Series struct {
	Labels Labels
	Points []Point
}

// Result types, as the server names them.
const (
	ResultStreams = "streams"
	ResultMatrix  = "matrix"
	ResultVector  = "vector"
	ResultScalar  = "scalar"
)

// Result is a decoded query answer.
type Result struct {
	Type    string
	Streams []Stream // streams
	Series  []Series // matrix and vector
	Scalar  *Point   // scalar
	Stats   Stats
}

// Stats is the part of the server's statistics the plugin shows and uses
// for progress.
type Stats struct {
	ExecTime          float64 // seconds
	BytesProcessed    int64
	LinesProcessed    int64
	PostFilterLines   int64
	EntriesReturned   int64
	ChunksRef         int64
	ChunksDownloaded  int64
	CompressedBytes   int64
	DecompressedBytes int64
	HeadChunkBytes    int64
	ChunksPruned      int64
	BlocksPruned      int64
	Streams           int64
}

// Add sums the statistics of two answers.
func (s *Stats) Add(o Stats) {
	s.ExecTime += o.ExecTime
	s.BytesProcessed += o.BytesProcessed
	s.LinesProcessed += o.LinesProcessed
	s.PostFilterLines += o.PostFilterLines
	s.EntriesReturned += o.EntriesReturned
	s.ChunksRef += o.ChunksRef
	s.ChunksDownloaded += o.ChunksDownloaded
	s.CompressedBytes += o.CompressedBytes
	s.DecompressedBytes += o.DecompressedBytes
	s.HeadChunkBytes += o.HeadChunkBytes
	s.ChunksPruned += o.ChunksPruned
	s.BlocksPruned += o.BlocksPruned
	s.Streams += o.Streams
}

// rawStats mirrors the statistics block the server writes.
type rawStats struct {
	Summary struct {
		ExecTime             float64 `json:"execTime"`
		TotalBytesProcessed  int64   `json:"totalBytesProcessed"`
		TotalLinesProcessed  int64   `json:"totalLinesProcessed"`
		TotalPostFilterLines int64   `json:"totalPostFilterLines"`
		TotalEntriesReturned int64   `json:"totalEntriesReturned"`
	} `json:"summary"`
	Querier struct {
		Store struct {
			TotalChunksRef        int64 `json:"totalChunksRef"`
			TotalChunksDownloaded int64 `json:"totalChunksDownloaded"`
			Chunk                 struct {
				CompressedBytes   int64 `json:"compressedBytes"`
				DecompressedBytes int64 `json:"decompressedBytes"`
			} `json:"chunk"`
		} `json:"store"`
	} `json:"querier"`
	Ingester struct {
		Store struct {
			Chunk struct {
				HeadChunkBytes int64 `json:"headChunkBytes"`
			} `json:"chunk"`
		} `json:"store"`
	} `json:"ingester"`
	Logsift struct {
		ChunksPruned int64 `json:"chunksPruned"`
		BlocksPruned int64 `json:"blocksPruned"`
		Streams      int64 `json:"streams"`
	} `json:"logsift"`
}

func (r *rawStats) stats() Stats {
	return Stats{
		ExecTime:          r.Summary.ExecTime,
		BytesProcessed:    r.Summary.TotalBytesProcessed,
		LinesProcessed:    r.Summary.TotalLinesProcessed,
		PostFilterLines:   r.Summary.TotalPostFilterLines,
		EntriesReturned:   r.Summary.TotalEntriesReturned,
		ChunksRef:         r.Querier.Store.TotalChunksRef,
		ChunksDownloaded:  r.Querier.Store.TotalChunksDownloaded,
		CompressedBytes:   r.Querier.Store.Chunk.CompressedBytes,
		DecompressedBytes: r.Querier.Store.Chunk.DecompressedBytes,
		HeadChunkBytes:    r.Ingester.Store.Chunk.HeadChunkBytes,
		ChunksPruned:      r.Logsift.ChunksPruned,
		BlocksPruned:      r.Logsift.BlocksPruned,
		Streams:           r.Logsift.Streams,
	}
}

// DecodeQueryResponse decodes the body of query and query_range.
func DecodeQueryResponse(body []byte) (*Result, error) {
	return decodeQuery(string(body))
}

// decodeQuery decodes a query answer held in a string; the strings of
// the result share its memory.
func decodeQuery(body string) (*Result, error) {
	s := newScanner(body)
	var status, errMsg string
	var resultSpan, statsSpan string
	decoded := false // the streams were read where they stood
	res := &Result{}
	ok := s.object(func(k string) bool {
		var ok bool
		switch fold(k) {
		case "status":
			status, ok = s.str()
		case "error":
			if s.null() {
				return s.err == nil
			}
			errMsg, ok = s.str()
		case "data":
			if s.null() {
				return s.err == nil
			}
			ok = s.object(func(k string) bool {
				var ok bool
				switch fold(k) {
				case "resulttype":
					res.Type, ok = s.str()
				case "result":
					if res.Type == ResultStreams && !decoded {
						// The usual order, type first: decode in place.
						res.Streams, ok = s.streams()
						decoded = true
						return ok
					}
					resultSpan, ok = s.span()
					decoded = false
				case "stats":
					statsSpan, ok = s.span()
				default:
					ok = s.skip()
				}
				return ok
			})
		default:
			ok = s.skip()
		}
		return ok
	}) && s.end()
	if !ok {
		return nil, s.error("query answer")
	}
	if status != "" && status != "success" {
		return nil, fmt.Errorf("query failed: %s", errMsg)
	}
	if len(statsSpan) > 0 {
		var st rawStats
		if err := json.Unmarshal([]byte(statsSpan), &st); err != nil {
			return nil, fmt.Errorf("decode query statistics: %w", err)
		}
		res.Stats = st.stats()
	}
	if decoded && res.Type == ResultStreams {
		return res, nil
	}
	if len(resultSpan) == 0 || resultSpan == "null" {
		if res.Type != "" && res.Type != ResultStreams && res.Type != ResultMatrix && res.Type != ResultVector && res.Type != ResultScalar {
			return nil, fmt.Errorf("decode query answer: unknown result type %q", res.Type)
		}
		return res, nil
	}
	rs := newScanner(resultSpan)
	switch res.Type {
	case ResultStreams:
		res.Streams, ok = rs.streams()
	case ResultMatrix:
		res.Series, ok = rs.series(false)
	case ResultVector:
		res.Series, ok = rs.series(true)
	case ResultScalar:
		var p Point
		if p, ok = rs.point(); ok {
			res.Scalar = &p
		}
	default:
		return nil, fmt.Errorf("decode query answer: unknown result type %q", res.Type)
	}
	if !ok || !rs.end() {
		return nil, rs.error(res.Type + " result")
	}
	return res, nil
}

// streams reads a streams result: [{"stream":{...},"values":[...]}].
func (s *scanner) streams() ([]Stream, bool) {
	if s.null() {
		return nil, s.err == nil
	}
	out := []Stream{}
	ok := s.array(func(int) bool {
		var st Stream
		ok := s.object(func(k string) bool {
			var ok bool
			switch fold(k) {
			case "stream":
				st.Labels, ok = s.mergeLabels(st.Labels)
			case "values":
				st.Entries = nil
				if s.null() {
					return s.err == nil
				}
				ok = s.array(func(int) bool {
					e, ok := s.entry()
					st.Entries = append(st.Entries, e)
					return ok
				})
			default:
				ok = s.skip()
			}
			return ok
		})
		out = append(out, st)
		return ok
	})
	return out, ok
}

// entry reads ["<ns>", "<line>"] or ["<ns>", "<line>", {categorized}].
func (s *scanner) entry() (Entry, bool) {
	var e Entry
	var ok bool
	if !s.expect('[') {
		return e, false
	}
	if e.Timestamp, ok = s.timestamp(); !ok || !s.expect(',') {
		return e, false
	}
	if e.Line, ok = s.str(); !ok {
		return e, false
	}
	if s.peek() == ',' {
		s.i++
		if !s.null() {
			if s.err != nil {
				return e, false
			}
			ok = s.object(func(k string) bool {
				var ok bool
				switch fold(k) {
				case "structuredmetadata":
					e.Metadata, ok = s.mergeLabels(e.Metadata)
				case "parsed":
					e.Parsed, ok = s.mergeLabels(e.Parsed)
				default:
					ok = s.skip()
				}
				return ok
			})
			if !ok {
				return e, false
			}
		}
	}
	return e, s.expect(']')
}

// series reads a matrix ("values") or a vector ("value").
func (s *scanner) series(vector bool) ([]Series, bool) {
	if s.null() {
		return nil, s.err == nil
	}
	out := []Series{}
	ok := s.array(func(int) bool {
		var sr Series
		hasValue := false
		ok := s.object(func(k string) bool {
			var ok bool
			switch k = fold(k); {
			case k == "metric":
				sr.Labels, ok = s.mergeLabels(sr.Labels)
			case k == "values" && !vector:
				sr.Points = nil
				if s.null() {
					return s.err == nil
				}
				ok = s.array(func(int) bool {
					p, ok := s.point()
					sr.Points = append(sr.Points, p)
					return ok
				})
			case k == "value" && vector:
				var p Point
				p, ok = s.point()
				sr.Points, hasValue = []Point{p}, true
			default:
				ok = s.skip()
			}
			return ok
		})
		if ok && vector && !hasValue {
			return s.fail("a vector sample has no value")
		}
		if !vector && sr.Points == nil {
			sr.Points = []Point{}
		}
		out = append(out, sr)
		return ok
	})
	return out, ok
}

// point reads [<seconds>, "<value>"].
func (s *scanner) point() (Point, bool) {
	if !s.expect('[') {
		return Point{}, false
	}
	num, ok := s.number()
	if !ok || !s.expect(',') {
		return Point{}, false
	}
	ms, err := parseSecondsAsMillis(num)
	if err != nil {
		return Point{}, s.fail("%v", err)
	}
	vs, ok := s.str()
	if !ok {
		return Point{}, false
	}
	v, err := parseValue(vs)
	if err != nil {
		return Point{}, s.fail("%v", err)
	}
	return Point{T: ms, V: v}, s.expect(']')
}

// parseSecondsAsMillis reads 1700000000.123 exactly, without the rounding
// of a float64 detour.
func parseSecondsAsMillis(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 9 || strings.ContainsAny(s, "eE+") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.Abs(f) > 9e9 {
			return 0, fmt.Errorf("sample time %q is not Unix seconds", s)
		}
		ms := int64(math.Round(f * 1000))
		if neg {
			ms = -ms
		}
		return ms, nil
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec > 9e9 {
		return 0, fmt.Errorf("sample time %q is not Unix seconds", s)
	}
	var msPart int64
	for i := 0; i < 3; i++ {
		msPart *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("sample time %q is not Unix seconds", s)
			}
			msPart += int64(c - '0')
		}
	}
	ms := sec*1000 + msPart
	if neg {
		ms = -ms
	}
	return ms, nil
}

// parseValue reads a sample value, including Prometheus' NaN and infinities.
func parseValue(s string) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q is not a number", s)
	}
	return v, nil
}

// knownKeys are the object keys the decoders read, folded.
var knownKeys = []string{"status", "error", "data", "resulttype", "result", "stats", "stream", "values",
	"structuredmetadata", "parsed", "metric", "value", "streams", "dropped_entries"}

// fold is a key as encoding/json matches struct fields, case-insensitively
// (with Unicode folding): the known key it names, else itself.
func fold(k string) string {
	switch k {
	case "resultType":
		return "resulttype"
	case "structuredMetadata":
		return "structuredmetadata"
	case "status", "error", "data", "result", "stats", "stream", "values", "parsed", "metric", "value", "streams", "dropped_entries":
		return k
	}
	for _, kk := range knownKeys {
		if strings.EqualFold(k, kk) {
			return kk
		}
	}
	return k
}

// mergeLabels reads a label object into a set that may already hold
// labels from an earlier object of the same key, as decoding into a map
// keeps its entries.
func (s *scanner) mergeLabels(into Labels) (Labels, bool) {
	ls, ok := s.labels()
	if !ok || len(into) == 0 {
		return ls, ok
	}
	return normalizeLabels(append(into, ls...)), true
}

// normalizeLabels sorts a set by name; of repeated names the last wins,
// as when decoding into a map.
func normalizeLabels(ls Labels) Labels {
	slices.SortStableFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	out := ls[:0]
	for i, l := range ls {
		if i+1 < len(ls) && ls[i+1].Name == l.Name {
			continue
		}
		out = append(out, l)
	}
	return out
}

func decodeStrings(body []byte) ([]string, error) {
	var raw struct {
		Data []string `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("decode list answer: %w", err)
	}
	if raw.Data == nil {
		raw.Data = []string{}
	}
	return raw.Data, nil
}

func decodeSeries(body []byte) ([]map[string]string, error) {
	var raw struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("decode series answer: %w", err)
	}
	return raw.Data, nil
}

func decodeIndexStats(body []byte) (IndexStats, error) {
	var st IndexStats
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("decode index stats: %w", err)
	}
	return st, nil
}

func decodeFormatted(body []byte) (string, error) {
	var raw struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return "", fmt.Errorf("decode format_query answer: %w", err)
	}
	return raw.Data, nil
}

func decodeBuildInfo(body []byte) (BuildInfo, error) {
	var bi BuildInfo
	if err := json.Unmarshal(body, &bi); err != nil {
		return bi, fmt.Errorf("decode buildinfo answer: %w", err)
	}
	return bi, nil
}
