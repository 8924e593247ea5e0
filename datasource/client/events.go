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

// EventsPath is the server's stream of domain events as server-sent
// events (docs/events.md, "Streaming endpoints").
const EventsPath = "/api/v1/events"

// ErrNoEventStream tells that the server does not offer EventsPath: a Loki
// server, or a logsift server older than it.
var ErrNoEventStream = errors.New("the server has no event stream (" + EventsPath + "): import progress needs a logsift server")

// EventsRequest opens the event stream.
type EventsRequest struct {
	// Types are event types or groups ("import.*"); none means all.
	Types []string
	// Workspace keeps only the events of that workspace (any of its
	// names); empty keeps all.
	Workspace string
	// LastEventID resumes a stream: it goes out as the Last-Event-ID
	// header, and the server replays the events after it that it still
	// holds, or starts with an EventReset when it cannot
	// (EventStream.LastEventID gives it, Resume sends it).
	LastEventID string
}

// The server's own events on the stream, besides the domain events
// (docs/events.md, "Streaming endpoints").
const (
	// EventReset: the server could not resume from the LastEventID sent
	// (it restarted, or the ID is older than the events it keeps); some
	// events may be missing, and the client should re-read the state it
	// follows. Its data decode with DecodeReset.
	EventReset = "reset"
	// EventDropped: the server moved past events the client read too
	// slowly; data {"dropped":n}, the total this connection lost.
	EventDropped = "dropped"
)

// EventStream is an open server-sent event stream.
type EventStream struct {
	c    *Client
	req  EventsRequest
	body io.ReadCloser
	sse  *SSEReader
	// lastID is the ID of the last message dispatched, read by
	// LastEventID from any goroutine while Next runs in another.
	lastID atomic.Pointer[string]
}

// Events opens the server's event stream. It returns once the server has
// answered, which it does after its subscription to the event bus is in
// place: every event published from then on is in the stream (unless the
// stream reports it dropped). The client's timeout bounds the wait for
// that answer, not the stream.
func (c *Client) Events(ctx context.Context, r EventsRequest) (*EventStream, error) {
	v := url.Values{}
	if len(r.Types) > 0 {
		v.Set("types", strings.Join(r.Types, ","))
	}
	if r.Workspace != "" {
		v.Set("workspace", r.Workspace)
	}
	// The event stream is text: no Loki encoding flags.
	header := http.Header{"X-Loki-Response-Encoding-Flags": nil, "Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	if r.LastEventID != "" {
		header.Set("Last-Event-ID", r.LastEventID)
	}
	body, err := c.openStream(ctx, EventsPath, v, "text/event-stream", header, ErrNoEventStream)
	if err != nil {
		return nil, err
	}
	s := &EventStream{c: c, req: r, body: body, sse: NewSSEReader(body)}
	s.lastID.Store(&r.LastEventID)
	s.sse.lastID = r.LastEventID
	// The ID is taken when the reader dispatches, not when Next returns:
	// the server's heartbeat frame ("id: …", ": heartbeat", empty line)
	// returns its comment before the empty line commits the ID, and Next
	// may then wait long for the next message.
	s.sse.dispatched = func(id string) { s.lastID.Store(&id) }
	return s, nil
}

// Next waits for the next message: an event, or a comment (the server's
// heartbeat), which tells that the connection is alive. The end of the
// answer is io.EOF. EventReset and EventDropped are messages too: the
// caller decides what to re-read.
func (s *EventStream) Next() (SSEMessage, error) { return s.sse.Next() }

// LastEventID is the ID of the last event the stream delivered, as the
// HTML standard defines it (the "id:" of the last dispatched message;
// the server also sets it with its heartbeats): what a reconnect sends to
// resume. It is safe to call while another goroutine runs Next.
func (s *EventStream) LastEventID() string { return *s.lastID.Load() }

// Resume opens the stream again, with the same request, from the last
// event this one delivered. The caller closes this one; the new stream
// starts with the events missed in between, or with an EventReset.
func (s *EventStream) Resume(ctx context.Context) (*EventStream, error) {
	r := s.req
	r.LastEventID = s.LastEventID()
	return s.c.Events(ctx, r)
}

// Reset is the data of an EventReset.
type Reset struct {
	// Reason is "epoch" (the server restarted, or is another one),
	// "expired" (the server no longer keeps the events after the ID),
	// "ahead" or "invalid" (an ID the server never issued).
	Reason      string `json:"reason"`
	LastEventID string `json:"last_event_id"`
	// Missed is, for "expired", at most how many events the server no
	// longer holds (of every tenant: not all were the client's).
	Missed  uint64 `json:"missed"`
	Message string `json:"message"`
}

// DecodeReset decodes the data of an EventReset.
func DecodeReset(b []byte) (Reset, error) {
	var r Reset
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode reset event: %w", err)
	}
	if r.Reason == "" {
		return r, errors.New("decode reset event: no reason")
	}
	return r, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// ImportEvent is an import.* event as the event stream carries it
// (pkg/events.Event with its Import payload).
type ImportEvent struct {
	Type   string       `json:"type"`
	Time   time.Time    `json:"time"`
	Tenant string       `json:"tenant"`
	Import ImportUpdate `json:"import"`
}

// ImportUpdate is the state of a run an import event reports.
type ImportUpdate struct {
	Workspace  string `json:"workspace"`
	RunID      string `json:"run_id"`
	Host       string `json:"host"`
	Status     string `json:"status"`
	Files      int64  `json:"files"`
	FilesDone  int64  `json:"files_done"`
	Bytes      int64  `json:"bytes"`
	BytesDone  int64  `json:"bytes_done"`
	Lines      int64  `json:"lines"`
	Chunks     int64  `json:"chunks"`
	Error      string `json:"error"`
	DurationMS int64  `json:"duration_ms"`
}

// DecodeImportEvent decodes the data of an import.* event. An event
// without a run ID, a type outside import.* or a negative counter is an
// error: the stream's consumers key runs by ID and trust the counters.
func DecodeImportEvent(b []byte) (ImportEvent, error) {
	var e ImportEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("decode import event: %w", err)
	}
	if !strings.HasPrefix(e.Type, "import.") {
		return e, fmt.Errorf("decode import event: type %q is not an import event", e.Type)
	}
	u := &e.Import
	if u.RunID == "" {
		return e, fmt.Errorf("decode import event: %s without a run ID", e.Type)
	}
	if u.Files < 0 || u.FilesDone < 0 || u.Bytes < 0 || u.BytesDone < 0 || u.Lines < 0 || u.Chunks < 0 || u.DurationMS < 0 {
		return e, fmt.Errorf("decode import event: %s of run %s has a negative counter", e.Type, u.RunID)
	}
	return e, nil
}

// ImportRun is an import run as the workspace API returns it
// (GET /api/v1/workspaces/{name}/runs, docs/workspaces.md).
type ImportRun struct {
	ID              string      `json:"id"`
	Workspace       string      `json:"workspace"`
	Host            string      `json:"host"`
	Source          string      `json:"source"`
	Status          string      `json:"status"`
	Started         time.Time   `json:"started"`
	Updated         time.Time   `json:"updated"`
	Finished        time.Time   `json:"finished"`
	CancelRequested time.Time   `json:"cancel_requested"`
	Counters        RunCounters `json:"counters"`
	Errors          []string    `json:"errors"`
	ErrorCount      int64       `json:"error_count"`
	DurationMS      int64       `json:"duration_ms"`
}

// RunCounters measure a run: absolute values, as the agent reports them.
type RunCounters struct {
	Files     int64 `json:"files"`
	FilesDone int64 `json:"files_done"`
	Bytes     int64 `json:"bytes"`
	BytesDone int64 `json:"bytes_done"`
	Lines     int64 `json:"lines"`
	Chunks    int64 `json:"chunks"`
}

// WorkspaceRuns is a workspace of the registry with what it says about
// its runs: how many, and the newest.
type WorkspaceRuns struct {
	Name     string     `json:"name"`
	RunCount int        `json:"run_count"`
	LastRun  *ImportRun `json:"last_run"`
}

// WorkspaceRunSummaries lists the tenant's workspaces with their run
// count and newest run (GET /api/v1/workspaces). A server without the
// registry (Loki) answers a StatusError with code 404.
func (c *Client) WorkspaceRunSummaries(ctx context.Context) ([]WorkspaceRuns, error) {
	body, err := c.get(ctx, "/api/v1/workspaces", nil, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Workspaces []WorkspaceRuns `json:"workspaces"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode workspaces: %w", err)
	}
	return out.Workspaces, nil
}

// ImportRuns lists a workspace's runs, newest first, at most limit (0:
// all).
func (c *Client) ImportRuns(ctx context.Context, workspace string, limit int) ([]ImportRun, error) {
	var v url.Values
	if limit > 0 {
		v = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	body, err := c.get(ctx, "/api/v1/workspaces/"+url.PathEscape(workspace)+"/runs", v, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Runs []ImportRun `json:"runs"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode import runs of %q: %w", workspace, err)
	}
	return out.Runs, nil
}

// SSEMessage is one message of a server-sent event stream: an event, or
// a comment line.
type SSEMessage struct {
	// Event is the event type ("message" when the server names none);
	// empty for a comment.
	Event string
	// Data are the event's data lines, joined by "\n".
	Data []byte
	// ID is the last event ID the stream set.
	ID string
	// Comment is the text of a comment line (": heartbeat" gives
	// "heartbeat").
	Comment string
}

// IsComment tells a comment from an event.
func (m SSEMessage) IsComment() bool { return m.Event == "" }

// maxSSELine bounds one line of an event stream, and maxSSEData the data
// of one event: an import event is well under a kilobyte.
const (
	maxSSELine = 1 << 20
	maxSSEData = 4 << 20
)

// SSEReader reads server-sent events as the WHATWG HTML standard
// ("Interpreting an event stream") defines them: lines end with CRLF, LF
// or CR; a line starting with ":" is a comment; "event", "data", "id" and
// "retry" are the fields; an empty line dispatches the event, and an
// event without data lines is none.
type SSEReader struct {
	sc      *bufio.Scanner
	event   string
	data    bytes.Buffer
	hasData bool
	// id is the standard's "last event ID buffer", set by an id field;
	// lastID its "last event ID string", set from it when a message is
	// dispatched (an empty line), even one without data. A stream cut
	// between an event's id and its empty line does not count the
	// event as delivered.
	id     string
	lastID string
	// dispatched, if set, learns each new lastID.
	dispatched func(string)
	// Retry is the reconnection time the server asked for, 0 if none.
	Retry time.Duration
	// skipLF is set after a CR that ended a line at the end of the
	// buffer: a LF right after it belongs to the same line ending.
	skipLF bool
	// scanned is how much of the pending line splitLines has searched.
	scanned int
	// started is set after the first line, whose byte order mark (if
	// any) is not part of it.
	started bool
	done    bool
}

// NewSSEReader reads an event stream from r.
func NewSSEReader(r io.Reader) *SSEReader {
	s := &SSEReader{}
	s.sc = bufio.NewScanner(r)
	s.sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	s.sc.Split(s.splitLines)
	return s
}

// splitLines cuts lines at CRLF, LF or CR, without waiting for the byte
// after a CR (a stream may stop right after one for a long time).
func (s *SSEReader) splitLines(data []byte, atEOF bool) (int, []byte, error) {
	// skip is the LF that completes the CRLF of the previous line. It is
	// consumed with the next line rather than on its own: bufio.Scanner
	// reads more input before splitting again after a call that returns
	// no token, which would wait on a live stream.
	skip := 0
	if s.skipLF && len(data) > 0 && data[0] == '\n' {
		skip = 1
	}
	line := data[skip:]
	// The bytes before s.scanned were searched by an earlier call that
	// found no line end: a line that arrives in many small reads is
	// searched once, not once per read.
	start := min(s.scanned, len(line))
	s.scanned = 0
	for i := start; i < len(line); i++ {
		switch line[i] {
		case '\n':
			s.skipLF = false
			return skip + i + 1, line[:i], nil
		case '\r':
			s.skipLF = false
			if i+1 < len(line) {
				if line[i+1] == '\n' {
					return skip + i + 2, line[:i], nil
				}
				return skip + i + 1, line[:i], nil
			}
			s.skipLF = true
			return skip + i + 1, line[:i], nil
		}
	}
	s.scanned = len(line)
	if atEOF && len(data) > 0 {
		s.skipLF, s.scanned = false, 0
		if len(line) == 0 {
			return len(data), nil, nil
		}
		return len(data), line, nil
	}
	return 0, nil, nil
}

// Next returns the next event or comment. At the end of the stream it
// returns io.EOF; an event the stream left incomplete is discarded, as
// the standard says.
func (s *SSEReader) Next() (SSEMessage, error) {
	if s.done {
		return SSEMessage{}, io.EOF
	}
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if !s.started {
			s.started = true
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		if len(line) == 0 {
			if s.lastID != s.id {
				s.lastID = s.id
				if s.dispatched != nil {
					s.dispatched(s.id)
				}
			}
			if !s.hasData {
				s.event = ""
				continue
			}
			m := SSEMessage{Event: s.event, Data: bytes.Clone(s.data.Bytes()), ID: s.id}
			if m.Event == "" {
				m.Event = "message"
			}
			s.event, s.hasData = "", false
			s.data.Reset()
			return m, nil
		}
		if line[0] == ':' {
			return SSEMessage{Comment: strings.TrimSpace(string(line[1:])), ID: s.id}, nil
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "event":
			s.event = string(value)
		case "data":
			if s.data.Len()+len(value)+1 > maxSSEData {
				s.done = true
				return SSEMessage{}, fmt.Errorf("an event of the stream has more than %d bytes of data", maxSSEData)
			}
			if s.hasData {
				s.data.WriteByte('\n')
			}
			s.data.Write(value)
			s.hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				s.id = string(value)
			}
		case "retry":
			if n, err := strconv.ParseUint(string(value), 10, 32); err == nil && isDigits(value) {
				s.Retry = time.Duration(n) * time.Millisecond
			}
		}
	}
	s.done = true
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return SSEMessage{}, fmt.Errorf("a line of the event stream is longer than %d bytes", maxSSELine)
		}
		return SSEMessage{}, err
	}
	return SSEMessage{}, io.EOF
}

// LastEventID is the ID of the last message dispatched: what a
// reconnecting client sends as Last-Event-ID.
func (s *SSEReader) LastEventID() string { return s.lastID }

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
