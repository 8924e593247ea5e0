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

// statNode is a key of the statistics block: an object of more keys,
// or a number that goes into a field of Stats.
type statNode struct {
	key   string
	kids  []statNode
	int   func(*Stats) *int64
	float func(*Stats) *float64
}

// statsTree is the part of the server's statistics block read, as
// encoding/json would read it into nested structs.
var statsTree = []statNode{
	{key: "summary", kids: []statNode{
		{key: "execTime", float: func(s *Stats) *float64 { return &s.ExecTime }},
		{key: "totalBytesProcessed", int: func(s *Stats) *int64 { return &s.BytesProcessed }},
		{key: "totalLinesProcessed", int: func(s *Stats) *int64 { return &s.LinesProcessed }},
		{key: "totalPostFilterLines", int: func(s *Stats) *int64 { return &s.PostFilterLines }},
		{key: "totalEntriesReturned", int: func(s *Stats) *int64 { return &s.EntriesReturned }},
	}},
	{key: "querier", kids: []statNode{{key: "store", kids: []statNode{
		{key: "totalChunksRef", int: func(s *Stats) *int64 { return &s.ChunksRef }},
		{key: "totalChunksDownloaded", int: func(s *Stats) *int64 { return &s.ChunksDownloaded }},
		{key: "chunk", kids: []statNode{
			{key: "compressedBytes", int: func(s *Stats) *int64 { return &s.CompressedBytes }},
			{key: "decompressedBytes", int: func(s *Stats) *int64 { return &s.DecompressedBytes }},
		}},
	}}}},
	{key: "ingester", kids: []statNode{{key: "store", kids: []statNode{{key: "chunk", kids: []statNode{
		{key: "headChunkBytes", int: func(s *Stats) *int64 { return &s.HeadChunkBytes }},
	}}}}}},
	{key: "logsift", kids: []statNode{
		{key: "chunksPruned", int: func(s *Stats) *int64 { return &s.ChunksPruned }},
		{key: "blocksPruned", int: func(s *Stats) *int64 { return &s.BlocksPruned }},
		{key: "streams", int: func(s *Stats) *int64 { return &s.Streams }},
	}},
}

// statKey finds a key as encoding/json matches struct fields: exactly,
// else case-insensitively.
func statKey(nodes []statNode, k string) *statNode {
	for i := range nodes {
		if nodes[i].key == k {
			return &nodes[i]
		}
	}
	for i := range nodes {
		if strings.EqualFold(nodes[i].key, k) {
			return &nodes[i]
		}
	}
	return nil
}

// stats reads (an object of) the statistics block into st. Like
// encoding/json it skips unknown keys, lets null change nothing, and
// refuses a value of the wrong type: a fraction or an exponent where a
// count belongs, a number out of range.
func (s *scanner) stats(st *Stats, nodes []statNode) bool {
	if s.null() {
		return s.err == nil
	}
	if s.peek() != '{' {
		return s.fail("statistics: want an object")
	}
	return s.object(func(k string) bool {
		n := statKey(nodes, k)
		switch {
		case n == nil:
			return s.skip()
		case n.kids != nil:
			return s.stats(st, n.kids)
		case s.null():
			return s.err == nil
		}
		if c := s.peek(); c != '-' && (c < '0' || c > '9') {
			return s.fail("statistic %s: want a number", n.key)
		}
		num, ok := s.number()
		if !ok {
			return false
		}
		if n.float != nil {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return s.fail("statistic %s: %q is out of range", n.key, num)
			}
			*n.float(st) = v
			return true
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return s.fail("statistic %s: %q is not a count", n.key, num)
		}
		*n.int(st) = v
		return true
	})
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
	var resultSpan string
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
					ok = s.stats(&res.Stats, statsTree)
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

// entryBlock is how many entries the blocks hold that the entries of
// an answer's streams are cut from.
const entryBlock = 1024

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
				from := len(s.entries)
				ok = s.array(func(int) bool {
					if len(s.entries) == cap(s.entries) {
						// A new block, with the stream's entries so far,
						// sized by what is left to read: an entry takes
						// some 64 bytes of JSON at least.
						n := len(s.entries) - from
						size := min(entryBlock, max(16, (len(s.b)-s.i)/64))
						block := make([]Entry, n, max(2*n, size))
						copy(block, s.entries[from:])
						s.entries, from = block, 0
					}
					e, ok := s.entry()
					s.entries = append(s.entries, e)
					return ok
				})
				if len(s.entries) > from {
					// Capped, so that appending to one stream cannot
					// overwrite the next.
					st.Entries = s.entries[from:len(s.entries):len(s.entries)]
				}
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
