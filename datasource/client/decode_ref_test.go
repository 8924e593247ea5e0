package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// decodeQueryStd is the reference decoder: encoding/json, reflection and
// all. The fast decoder must agree with it on every input both accept.
func decodeQueryStd(body []byte) (*Result, error) {
	var raw struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
			Stats      rawStats        `json:"stats"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("decode query answer: %w", err)
	}
	if raw.Status != "" && raw.Status != "success" {
		return nil, fmt.Errorf("query failed: %s", raw.Error)
	}
	res := &Result{Type: raw.Data.ResultType, Stats: raw.Data.Stats.stats()}
	if len(raw.Data.Result) == 0 || bytes.Equal(raw.Data.Result, []byte("null")) {
		return res, nil
	}
	var err error
	switch res.Type {
	case ResultStreams:
		res.Streams, err = decodeStreams(raw.Data.Result)
	case ResultMatrix:
		res.Series, err = decodeMatrix(raw.Data.Result)
	case ResultVector:
		res.Series, err = decodeVector(raw.Data.Result)
	case ResultScalar:
		var p Point
		if p, err = decodePoint(raw.Data.Result); err == nil {
			res.Scalar = &p
		}
	default:
		return nil, fmt.Errorf("decode query answer: unknown result type %q", res.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s result: %w", res.Type, err)
	}
	return res, nil
}

// value is one [ts, line, {metadata}] element of a stream's values.
type value struct {
	e Entry
}

func (v *value) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return err
	}
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("a stream value has %d elements, want 2 or 3", len(parts))
	}
	var ts string
	if err := json.Unmarshal(parts[0], &ts); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q is not Unix nanoseconds", ts)
	}
	v.e.Timestamp = n
	if err := json.Unmarshal(parts[1], &v.e.Line); err != nil {
		return fmt.Errorf("line: %w", err)
	}
	if len(parts) == 3 {
		var cat struct {
			StructuredMetadata map[string]string `json:"structuredMetadata"`
			Parsed             map[string]string `json:"parsed"`
		}
		if err := json.Unmarshal(parts[2], &cat); err != nil {
			return fmt.Errorf("categorized labels: %w", err)
		}
		v.e.Metadata = FromMap(cat.StructuredMetadata)
		v.e.Parsed = FromMap(cat.Parsed)
	}
	return nil
}

func decodeStreams(b []byte) ([]Stream, error) {
	var raw []struct {
		Stream map[string]string `json:"stream"`
		Values []value           `json:"values"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make([]Stream, len(raw))
	for i, s := range raw {
		out[i].Labels = FromMap(s.Stream)
		out[i].Entries = make([]Entry, len(s.Values))
		for j := range s.Values {
			out[i].Entries[j] = s.Values[j].e
		}
	}
	return out, nil
}

// sample is one [seconds, "value"] pair.
type sample Point

func (s *sample) UnmarshalJSON(b []byte) error {
	p, err := decodePoint(b)
	*s = sample(p)
	return err
}

// decodePoint reads [<seconds>, "<value>"]: seconds as a JSON number with
// up to millisecond precision, the value as Prometheus formats it.
func decodePoint(b []byte) (Point, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return Point{}, err
	}
	if len(parts) != 2 {
		return Point{}, fmt.Errorf("a sample has %d elements, want 2", len(parts))
	}
	ms, err := parseSecondsAsMillis(string(parts[0]))
	if err != nil {
		return Point{}, err
	}
	var vs string
	if err := json.Unmarshal(parts[1], &vs); err != nil {
		return Point{}, fmt.Errorf("sample value: %w", err)
	}
	v, err := parseValue(vs)
	if err != nil {
		return Point{}, err
	}
	return Point{T: ms, V: v}, nil
}

func decodeMatrix(b []byte) ([]Series, error) {
	var raw []struct {
		Metric map[string]string `json:"metric"`
		Values []sample          `json:"values"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make([]Series, len(raw))
	for i, s := range raw {
		out[i].Labels = FromMap(s.Metric)
		out[i].Points = make([]Point, len(s.Values))
		for j, p := range s.Values {
			out[i].Points[j] = Point(p)
		}
	}
	return out, nil
}

func decodeVector(b []byte) ([]Series, error) {
	var raw []struct {
		Metric map[string]string `json:"metric"`
		Value  *sample           `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make([]Series, len(raw))
	for i, s := range raw {
		if s.Value == nil {
			return nil, errors.New("a vector sample has no value")
		}
		out[i] = Series{Labels: FromMap(s.Metric), Points: []Point{Point(*s.Value)}}
	}
	return out, nil
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
