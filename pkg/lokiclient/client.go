// Package lokiclient is a small client for Loki's HTTP API: pushes in the
// protobuf+snappy wire format that Promtail and Alloy use, and the query
// endpoints. logsift's demo, benchmarks and tests use it, and it works
// against Loki itself or anything that speaks its API.
package lokiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// Client talks to one Loki-compatible server.
type Client struct {
	URL    string // base URL, e.g. http://127.0.0.1:3100
	Tenant string // X-Scope-OrgID; empty sends none
	Token  string // API token, sent as a bearer token; empty sends none
	HTTP   *http.Client
	// PushPath overrides the push path (VictoriaLogs takes Loki pushes at
	// /insert/loki/api/v1/push).
	PushPath string
	// Categorize asks for structured metadata and parsed labels apart from
	// the stream labels, as Grafana does (X-Loki-Response-Encoding-Flags:
	// categorize-labels); without it they are merged into the stream labels
	// and split streams.
	Categorize bool
}

// Stream is what Push sends for one label set.
type Stream struct {
	Labels  labels.Labels
	Entries []chunk.Entry
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code       int
	Body       string
	RetryAfter string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.Code, strings.TrimSpace(e.Body))
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// EncodePush builds a protobuf+snappy push body.
func EncodePush(streams []Stream) ([]byte, error) {
	req := push.PushRequest{Streams: make([]push.Stream, len(streams))}
	for i, s := range streams {
		ps := push.Stream{Labels: s.Labels.String(), Entries: make([]push.Entry, len(s.Entries))}
		for j, e := range s.Entries {
			pe := push.Entry{Timestamp: time.Unix(0, e.Timestamp).UTC(), Line: string(e.Line)}
			for _, m := range e.Metadata {
				pe.StructuredMetadata = append(pe.StructuredMetadata, push.LabelAdapter{Name: m.Name, Value: m.Value})
			}
			ps.Entries[j] = pe
		}
		req.Streams[i] = ps
	}
	raw, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode push: %w", err)
	}
	return snappy.Encode(nil, raw), nil
}

// Push sends streams as one protobuf+snappy request.
func (c *Client) Push(ctx context.Context, streams []Stream) error {
	body, err := EncodePush(streams)
	if err != nil {
		return err
	}
	return c.PushBody(ctx, body, "application/x-protobuf", "")
}

// PushBody sends a prepared body with the given content type and encoding.
func (c *Client) PushBody(ctx context.Context, body []byte, contentType, contentEncoding string) error {
	path := c.PushPath
	if path == "" {
		path = "/loki/api/v1/push"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	c.setTenant(req)
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return &StatusError{Code: resp.StatusCode, Body: string(msg), RetryAfter: resp.Header.Get("Retry-After")}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// setTenant sets the tenant and credentials of a request.
func (c *Client) setTenant(req *http.Request) {
	if c.Tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.Tenant)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

// QueryResponse is Loki's query response.
type QueryResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
		Stats      json.RawMessage `json:"stats"`
	} `json:"data"`
}

// StreamValues is one stream of a "streams" result.
type StreamValues struct {
	Stream map[string]string `json:"stream"`
	Values [][]json.RawMessage
}

// Entry is a decoded value of a streams result.
type Entry struct {
	Timestamp int64
	Line      string
	Metadata  map[string]string
}

// Streams decodes a "streams" result.
func (r *QueryResponse) Streams() ([]StreamResult, error) {
	if r.Data.ResultType != "streams" {
		return nil, fmt.Errorf("result type is %q, not streams", r.Data.ResultType)
	}
	var raw []struct {
		Stream map[string]string   `json:"stream"`
		Values [][]json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(r.Data.Result, &raw); err != nil {
		return nil, err
	}
	out := make([]StreamResult, len(raw))
	for i, s := range raw {
		out[i].Labels = s.Stream
		for _, v := range s.Values {
			if len(v) < 2 {
				return nil, fmt.Errorf("value with %d elements", len(v))
			}
			var ts, line string
			if err := json.Unmarshal(v[0], &ts); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return nil, err
			}
			n, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("timestamp %q: %w", ts, err)
			}
			e := Entry{Timestamp: n, Line: line}
			if len(v) > 2 {
				var md struct {
					StructuredMetadata map[string]string `json:"structuredMetadata"`
				}
				if err := json.Unmarshal(v[2], &md); err != nil {
					return nil, err
				}
				e.Metadata = md.StructuredMetadata
			}
			out[i].Entries = append(out[i].Entries, e)
		}
	}
	return out, nil
}

// StreamResult is a decoded stream.
type StreamResult struct {
	Labels  map[string]string
	Entries []Entry
}

// Series is one series of a "matrix" result.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Point is one sample of a series.
type Point struct {
	T     float64 // Unix seconds, as Loki writes them (fractional)
	Value string  // as Loki writes it: "12", "0.5", "NaN", "+Inf"
}

// Float returns the value as a number.
func (p Point) Float() (float64, error) { return strconv.ParseFloat(p.Value, 64) }

// Matrix decodes a "matrix" result (a range query's metric answer).
func (r *QueryResponse) Matrix() ([]Series, error) {
	if r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("result type is %q, not matrix", r.Data.ResultType)
	}
	var raw []struct {
		Metric map[string]string    `json:"metric"`
		Values [][2]json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(r.Data.Result, &raw); err != nil {
		return nil, err
	}
	out := make([]Series, len(raw))
	for i, s := range raw {
		out[i].Labels = s.Metric
		out[i].Points = make([]Point, len(s.Values))
		for k, v := range s.Values {
			var ts json.Number
			if err := json.Unmarshal(v[0], &ts); err != nil {
				return nil, fmt.Errorf("sample time %s: %w", v[0], err)
			}
			t, err := ts.Float64()
			if err != nil {
				return nil, fmt.Errorf("sample time %s: %w", ts, err)
			}
			p := Point{T: t}
			if err := json.Unmarshal(v[1], &p.Value); err != nil {
				return nil, fmt.Errorf("sample value %s: %w", v[1], err)
			}
			out[i].Points[k] = p
		}
	}
	return out, nil
}

// QueryRange runs /loki/api/v1/query_range. Extra parameters (step,
// direction, ...) go in params.
func (c *Client) QueryRange(ctx context.Context, q string, start, end time.Time, limit int, params url.Values) (*QueryResponse, error) {
	v := url.Values{}
	for k, vs := range params {
		v[k] = vs
	}
	v.Set("query", q)
	v.Set("start", strconv.FormatInt(start.UnixNano(), 10))
	v.Set("end", strconv.FormatInt(end.UnixNano(), 10))
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out QueryResponse
	if err := c.Get(ctx, "/loki/api/v1/query_range", v, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get runs a GET against path and decodes the JSON answer into out.
func (c *Client) Get(ctx context.Context, path string, params url.Values, out any) error {
	u := c.URL + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	c.setTenant(req)
	if c.Categorize {
		req.Header.Set("X-Loki-Response-Encoding-Flags", "categorize-labels")
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Code: resp.StatusCode, Body: string(body)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode %s answer: %w", path, err)
	}
	return nil
}

// Labels runs /loki/api/v1/labels.
func (c *Client) Labels(ctx context.Context, start, end time.Time) ([]string, error) {
	var out struct {
		Data []string `json:"data"`
	}
	v := url.Values{"start": {strconv.FormatInt(start.UnixNano(), 10)}, "end": {strconv.FormatInt(end.UnixNano(), 10)}}
	if err := c.Get(ctx, "/loki/api/v1/labels", v, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}
