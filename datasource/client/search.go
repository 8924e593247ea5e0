package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// SearchPath is the server's streaming search endpoint (NDJSON).
const SearchPath = "/api/v1/search/stream"

// ErrNoSearchStream tells that the server does not offer SearchPath: a
// Loki server, or a logsift server older than it. The caller falls back
// to query_range.
var ErrNoSearchStream = errors.New("the server has no streaming search endpoint")

// SearchRequest is a streaming search.
type SearchRequest struct {
	Query      string
	Start, End time.Time
	Limit      int
	Direction  string // "backward" (default) or "forward"
}

// SearchProgress is the server's progress of a streaming search, as its
// "progress" lines carry it.
type SearchProgress struct {
	SourcesTotal    int     `json:"sourcesTotal"`
	SourcesDone     int     `json:"sourcesDone"`
	SourcesSkipped  int     `json:"sourcesSkipped"`
	ChunksTotal     int64   `json:"chunksTotal"`
	ChunksDone      int64   `json:"chunksDone"`
	ChunksPruned    int64   `json:"chunksPruned"`
	ChunksDecoded   int64   `json:"chunksDecoded"`
	BlocksPruned    int64   `json:"blocksPruned"`
	CompressedBytes int64   `json:"compressedBytes"`
	BytesScanned    int64   `json:"bytesScanned"`
	LinesScanned    int64   `json:"linesScanned"`
	LinesMatched    int64   `json:"linesMatched"`
	EntriesSent     int64   `json:"entriesSent"`
	Start           int64   `json:"start,string"`
	End             int64   `json:"end,string"`
	CoveredFrom     int64   `json:"coveredFrom,string"`
	CoveredTo       int64   `json:"coveredTo,string"`
	ExecTime        float64 `json:"execTime"`
	LimitReached    bool    `json:"limitReached"`
	Done            bool    `json:"done"`
}

// Stats are the progress's counts in the form of a query answer's.
func (p *SearchProgress) Stats() Stats {
	return Stats{
		ExecTime:         p.ExecTime,
		BytesProcessed:   p.BytesScanned,
		LinesProcessed:   p.LinesScanned,
		PostFilterLines:  p.LinesMatched,
		EntriesReturned:  p.EntriesSent,
		ChunksRef:        p.ChunksTotal,
		ChunksDownloaded: p.ChunksDecoded,
		CompressedBytes:  p.CompressedBytes,
		ChunksPruned:     p.ChunksPruned,
		BlocksPruned:     p.BlocksPruned,
	}
}

// SearchBatch is one batch of a streaming search: the entries it settled
// (maybe none) and the progress when it was cut.
type SearchBatch struct {
	Streams  []Stream
	Progress SearchProgress
}

// SearchStream is an open streaming search.
type SearchStream struct {
	body io.ReadCloser
	r    *bufio.Reader
	line []byte
	done bool
}

// maxSearchLine bounds one NDJSON line: a batch of 5,000 long lines fits.
const maxSearchLine = 256 << 20

// Search opens a streaming search. It returns ErrNoSearchStream when the
// server does not have the endpoint. The client's timeout bounds the wait
// for the answer's start, not the search, which the server's query
// timeout bounds.
func (c *Client) Search(ctx context.Context, r SearchRequest) (*SearchStream, error) {
	v := url.Values{
		"query": {r.Query},
		"start": {strconv.FormatInt(r.Start.UnixNano(), 10)},
		"end":   {strconv.FormatInt(r.End.UnixNano(), 10)},
	}
	if r.Limit > 0 {
		v.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.Direction != "" {
		v.Set("direction", r.Direction)
	}
	body, err := c.openStream(ctx, SearchPath, v, "application/x-ndjson", nil, ErrNoSearchStream)
	if err != nil {
		return nil, err
	}
	return &SearchStream{body: body, r: bufio.NewReaderSize(body, 64<<10)}, nil
}

// openStream starts a long-lived GET of path and returns its body once the
// server has answered with contentType; closing the body ends the request.
// The client's timeout bounds the wait for the answer, not the stream. A
// server without the endpoint (404, 405 from a router that knows the path
// for other methods only, or a 200 of another kind, such as a single-page
// app behind the same proxy) gives missing.
func (c *Client) openStream(ctx context.Context, path string, v url.Values, contentType string, header http.Header, missing error) (io.ReadCloser, error) {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(path, v), nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("build request for %s: %w", path, err)
	}
	c.setHeaders(req.Header)
	for k, vs := range header {
		if len(vs) == 0 {
			req.Header.Del(k)
			continue
		}
		req.Header[k] = vs
	}
	var timedOut atomic.Bool
	var timer *time.Timer
	if c.timeout > 0 {
		timer = time.AfterFunc(c.timeout, func() { timedOut.Store(true); cancel() })
	}
	resp, err := c.http.Do(req)
	if timer != nil && !timer.Stop() && timedOut.Load() {
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		return nil, &ConnectError{URL: c.base.String(), Err: fmt.Errorf("no answer to %s within %v: %w", path, c.timeout, context.DeadlineExceeded)}
	}
	if err != nil {
		cancel()
		if parent.Err() != nil {
			return nil, parent.Err()
		}
		return nil, &ConnectError{URL: c.base.String(), Err: err}
	}
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return nil, missing
		}
		return nil, &StatusError{Code: resp.StatusCode, Path: path, Body: string(body)}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, contentType) {
		resp.Body.Close()
		cancel()
		return nil, missing
	}
	return cancelOnClose{resp.Body, cancel}, nil

}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	c.cancel()
	return c.ReadCloser.Close()
}

// Next returns the next batch. After the batch whose progress is done it
// returns io.EOF. An answer that ends before that is an error, as is an
// error line from the server.
func (s *SearchStream) Next() (*SearchBatch, error) {
	if s.done {
		return nil, io.EOF
	}
	var b SearchBatch
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("the search answer ended before the search was done: %w", io.ErrUnexpectedEOF)
			}
			return nil, fmt.Errorf("read the search answer: %w", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		kind, streams, progress, msg, err := DecodeSearchLine(line)
		if err != nil {
			return nil, err
		}
		switch kind {
		case "streams":
			b.Streams = append(b.Streams, streams...)
		case "progress":
			b.Progress = progress
			s.done = progress.Done
			return &b, nil
		case "error":
			return nil, fmt.Errorf("search failed on the server: %s", msg)
		}
	}
}

// readLine reads one line, of at most maxSearchLine bytes.
func (s *SearchStream) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		s.line = append(s.line, frag...)
		if len(s.line) > maxSearchLine {
			return nil, fmt.Errorf("a line of the search answer is longer than %d bytes", maxSearchLine)
		}
		switch {
		case err == nil:
			return s.line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(s.line) > 0:
			return s.line, nil
		default:
			return nil, err
		}
	}
}

// Close ends the search; the server stops scanning.
func (s *SearchStream) Close() error { return s.body.Close() }

// DecodeSearchLine decodes one line of a streaming search answer: kind is
// "streams", "progress" or "error" (with the message).
func DecodeSearchLine(line []byte) (kind string, streams []Stream, progress SearchProgress, msg string, err error) {
	sc := newScanner(string(line))
	var progressSpan string
	// A line is one of the three; a line with two would lose one of them.
	is := func(k string) bool {
		if kind != "" && kind != k {
			return sc.fail("a line with both %s and %s", kind, k)
		}
		kind = k
		return true
	}
	ok := sc.object(func(k string) bool {
		var ok bool
		switch fold(k) {
		case "streams":
			ok = is("streams")
			if ok {
				streams, ok = sc.streams()
			}
		case "progress":
			ok = is("progress")
			if ok {
				progressSpan, ok = sc.span()
			}
		case "error":
			ok = is("error")
			if ok {
				msg, ok = sc.str()
			}
		default:
			ok = sc.skip()
		}
		return ok
	}) && sc.end()
	if !ok {
		return "", nil, progress, "", sc.error("search answer line")
	}
	switch kind {
	case "":
		return "", nil, progress, "", fmt.Errorf("decode search answer line: neither streams, progress nor error")
	case "progress":
		if err := json.Unmarshal([]byte(progressSpan), &progress); err != nil {
			return "", nil, progress, "", fmt.Errorf("decode search progress: %w", err)
		}
	}
	return kind, streams, progress, msg, nil
}
